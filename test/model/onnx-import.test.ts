/**
 * ONNX import: the forward pass of imported models agrees with onnxruntime executing the same file,
 * for every supported op and attribute, constant subgraphs, folded zero Pads, graphs (residual Add,
 * Sum, Concat, branch points, dead branches) and activations (and the import's own cross-check
 * accepts each); everything else is rejected with a typed error naming the node and saying what to do.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { nominalPass } from '../../src/bounds/layer-bounds.js';
import { UnsupportedModelError } from '../../src/errors.js';
import { importOnnx, importOnnxFile, importOnnxTrace } from '../../src/model/onnx-import.js';
import { checkImport } from '../../src/model/onnx-check.js';
import { loadInputFile } from '../../src/model/input.js';
import { floatTensor, int64Tensor, modelBytes, node, valueInfo } from '../../src/model/onnx-builder.js';
import { randomWeights } from '../helpers/random-networks.js';
import { expectRefusal } from './refusal.js';
import { layerKinds } from '../helpers/layer-kinds.js';
import { CIFAR_NORM, fixture, MNIST_NORM } from '../helpers/fixtures.js';

const backend = createCpuBackend();
afterAll(() => backend.dispose());

async function ortForward(model: Uint8Array | string, input: Float32Array, dims: number[]): Promise<Float32Array> {
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model);
  const result = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', input, dims) });
  await session.release();
  return result[session.outputNames[0]].data as Float32Array;
}

async function expectSameForward(bytes: Uint8Array, dims: number[], expectedKinds?: string[]) {
  const trace = importOnnxTrace(bytes, 'test');
  const network = trace.network;
  await checkImport(trace, bytes, null, { backend });
  if (expectedKinds) expect(layerKinds(network)).toEqual(expectedKinds);
  const x = randomWeights(dims.reduce((a, b) => a * b, 1), 1);
  const ours = (await nominalPass(network, backend, x)).logits;
  const theirs = await ortForward(bytes, x, dims);
  expect(ours.length).toBe(theirs.length);
  const scale = Math.max(...Array.from(theirs, Math.abs), 1e-6);
  theirs.forEach((v, i) => expect(Math.abs(ours[i] - v)).toBeLessThan(1e-4 * scale));
  return network;
}

const w = (name: string, dims: number[], s = 0.5) => floatTensor(name, dims, randomWeights(dims.reduce((a, b) => a * b, 1), s));

describe('forward pass agrees with onnxruntime', () => {
  test.each([
    ['mnist_lenet.onnx', 'mnist_8.png', MNIST_NORM],
    ['cifar10_net.onnx', 'cifar10_dog4.png', CIFAR_NORM],
  ])('fixture %s', async (model, image, norm) => {
    const network = importOnnxFile(fixture(model));
    const x = loadInputFile(fixture(image), network, norm);
    const ours = (await nominalPass(network, backend, x)).logits;
    const theirs = await ortForward(fs.readFileSync(fixture(model)), x, [1, ...network.inputShape]);
    theirs.forEach((v, i) => expect(ours[i]).toBeCloseTo(v, 3));
  });

  test('Conv (strides, asymmetric pads, dilations, groups), MaxPool (pads, dilations, ceil_mode), Flatten, Gemm (alpha, beta, transB)', async () => {
    const bytes = modelBytes({
      nodes: [
        node('Conv', ['x', 'W1', 'b1'], ['c1'], { kernel_shape: [3, 3], strides: [2, 1], pads: [1, 0, 2, 1], dilations: [1, 2], group: 2 }, 'conv1'),
        node('Relu', ['c1'], ['r1']),
        node('MaxPool', ['r1'], ['p1'], { kernel_shape: [2, 3], strides: [2, 2], pads: [0, 1, 1, 0], dilations: [1, 1], ceil_mode: 1 }, 'pool1'),
        node('Flatten', ['p1'], ['f'], { axis: 1 }),
        node('Gemm', ['f', 'W2', 'b2'], ['g1'], { transB: 1, alpha: { float: 0.5 }, beta: { float: 2 } }, 'fc1'),
        node('Relu', ['g1'], ['r2']),
        node('Gemm', ['r2', 'W3', 'b3'], ['y'], {}, 'fc2'),
      ],
      initializers: [w('W1', [4, 1, 3, 3]), w('b1', [4]), w('W2', [7, 4 * 3 * 3]), w('b2', [7]), w('W3', [7, 3]), w('b3', [3])],
      inputs: [valueInfo('x', ['batch', 2, 9, 9])],
      outputs: [valueInfo('y', ['batch', 3])],
    });
    await expectSameForward(bytes, [1, 2, 9, 9], ['conv+relu', 'maxpool', 'flatten', 'dense+relu', 'dense']);
  });

  test('BatchNormalization folded into Conv, AveragePool both ways, zero Pad, GlobalAveragePool, Reshape, MatMul + Add, Dropout, Identity', async () => {
    const bytes = modelBytes({
      nodes: [
        node('Conv', ['x', 'W1'], ['c1'], { kernel_shape: [3, 3], auto_pad: 'SAME_UPPER' }, 'conv1'),
        node('BatchNormalization', ['c1', 'g', 'beta', 'mean', 'var'], ['bn'], { epsilon: { float: 1e-3 } }, 'bn1'),
        node('Relu', ['bn'], ['r1']),
        node('Pad', ['r1', 'zeros'], ['padded'], { mode: 'constant' }, 'pad'),
        node('AveragePool', ['padded'], ['a1'], { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], count_include_pad: 1 }, 'avg1'),
        node('AveragePool', ['a1'], ['a2'], { kernel_shape: [2, 3], strides: [2, 1], pads: [1, 0, 0, 1], count_include_pad: 0 }, 'avg2'),
        node('GlobalAveragePool', ['a2'], ['gap']),
        node('Dropout', ['gap'], ['d']),
        node('Reshape', ['d', 'shape'], ['flat']),
        node('Identity', ['flat'], ['id']),
        node('MatMul', ['id', 'W2'], ['m']),
        node('Add', ['m', 'b2'], ['y']),
      ],
      initializers: [
        w('W1', [5, 3, 3, 3]), w('g', [5], 1), w('beta', [5]), w('mean', [5]), floatTensor('var', [5], [0.5, 1, 2, 0.1, 3]),
        int64Tensor('zeros', [8], [0, 0, 0, 0, 0, 0, 0, 0]), int64Tensor('shape', [2], [1, -1]), w('W2', [5, 4]), w('b2', [4]),
      ],
      inputs: [valueInfo('x', [1, 3, 8, 7])],
      outputs: [valueInfo('y', [1, 4])],
    });
    await expectSameForward(bytes, [1, 3, 8, 7], ['conv+relu', 'avgpool', 'avgpool', 'avgpool', 'flatten', 'dense']);
  });

  test('BatchNormalization and ReLU after a max pool become a scale layer and a lone ReLU; Gemm with the activation second', async () => {
    const bytes = modelBytes({
      nodes: [
        node('Conv', ['x', 'W1', 'b1'], ['c1'], { kernel_shape: [2, 2] }),
        node('MaxPool', ['c1'], ['p1'], { kernel_shape: [2, 2], strides: [1, 1] }),
        node('Relu', ['p1'], ['r1']),
        node('BatchNormalization', ['r1', 'g', 'beta', 'mean', 'var'], ['bn']),
        node('Flatten', ['bn'], ['f']),
        node('Gemm', ['W2', 'f'], ['y'], { transA: 1, transB: 1 }, 'fc'),
      ],
      initializers: [w('W1', [2, 1, 2, 2]), w('b1', [2]), w('g', [2], 1), w('beta', [2]), w('mean', [2]), floatTensor('var', [2], [1, 2]), w('W2', [2 * 4 * 4, 3])],
      inputs: [valueInfo('x', [1, 1, 6, 6])],
      outputs: [valueInfo('y', [3, 1])],
    });
    await expectSameForward(bytes, [1, 1, 6, 6], ['conv', 'maxpool', 'relu', 'scale', 'flatten', 'dense']);
  });

  test('initializers from float_data and from an external data file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lipcert-ext-'));
    const weights = randomWeights(4 * 6, 1);
    fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.concat([Buffer.alloc(8), Buffer.from(weights.buffer)]));
    const bytes = modelBytes({
      nodes: [node('Gemm', ['x', 'W', 'b'], ['y'], { transB: 1 }, 'fc')],
      initializers: [],
      inputs: [valueInfo('x', [1, 6])],
      outputs: [valueInfo('y', [1, 4])],
    });
    // Re-encode with an external W and a float_data b.
    const { fromBinary, toBinary, create } = await import('@bufbuild/protobuf');
    const onnx = await import('onnx-buf');
    const model = fromBinary(onnx.ModelProtoSchema, bytes);
    model.graph!.initializer.push(
      create(onnx.TensorProtoSchema, {
        name: 'W', dims: [4n, 6n], dataType: onnx.TensorProto_DataType.FLOAT, dataLocation: onnx.TensorProto_DataLocation.EXTERNAL,
        externalData: [create(onnx.StringStringEntryProtoSchema, { key: 'location', value: 'weights.bin' }), create(onnx.StringStringEntryProtoSchema, { key: 'offset', value: '8' }), create(onnx.StringStringEntryProtoSchema, { key: 'length', value: String(weights.byteLength) })],
      }),
      create(onnx.TensorProtoSchema, { name: 'b', dims: [4n], dataType: onnx.TensorProto_DataType.FLOAT, floatData: [1, 2, 3, 4] }),
    );
    const file = path.join(dir, 'model.onnx');
    fs.writeFileSync(file, toBinary(onnx.ModelProtoSchema, model));
    const network = importOnnxFile(file);
    const x = randomWeights(6, 1);
    const ours = (await nominalPass(network, backend, x)).logits;
    const theirs = await ortForward(file, x, [1, 6]);
    theirs.forEach((v, i) => expect(ours[i]).toBeCloseTo(v, 4));
    // Without a directory the external file cannot be found: a clear error, not a crash.
    expect(() => importOnnx(fs.readFileSync(file))).toThrow(/external file 'weights.bin'/);
  });
});

describe('constant subgraphs are evaluated at import', () => {
  test('Identity biases (torch de-duplicating equal zero biases), a ConstantOfShape addend, a transposed MatMul weight', async () => {
    const bytes = modelBytes({
      nodes: [
        node('Identity', ['zeros4'], ['b1']),
        node('Identity', ['zeros4'], ['b2']),
        node('Conv', ['x', 'W1', 'b1'], ['c1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 'conv1'),
        node('Relu', ['c1'], ['r1']),
        node('Conv', ['r1', 'W2', 'b2'], ['c2'], { kernel_shape: [3, 3] }, 'conv2'),
        node('ConstantOfShape', ['biasShape'], ['zeroBias'], { value: { tensor: floatTensor('v', [1], [0.25]) } }),
        node('Add', ['c2', 'zeroBias'], ['a2']),
        node('Relu', ['a2'], ['r2']),
        node('Flatten', ['r2'], ['f']),
        node('Transpose', ['W3t'], ['W3'], { perm: [1, 0] }),
        node('MatMul', ['f', 'W3'], ['y'], {}, 'fc'),
      ],
      initializers: [floatTensor('zeros4', [4], [0, 0, 0, 0]), w('W1', [4, 2, 3, 3]), w('W2', [4, 4, 3, 3]), int64Tensor('biasShape', [3], [4, 1, 1]), w('W3t', [3, 4 * 3 * 3])],
      inputs: [valueInfo('x', [1, 2, 5, 5])],
      outputs: [valueInfo('y', [1, 3])],
    });
    const network = await expectSameForward(bytes, [1, 2, 5, 5], ['conv+relu', 'conv+relu', 'flatten', 'dense']);
    expect(Array.from((network.layers[1] as { bias: Float32Array }).bias)).toEqual([0.25, 0.25, 0.25, 0.25]);
  });

  test('a dynamic-batch flatten: Shape → Gather → Unsqueeze → Concat → Reshape, with a Cast', async () => {
    const bytes = modelBytes({
      nodes: [
        node('Conv', ['x', 'W1', 'b1'], ['c1'], { kernel_shape: [2, 2] }, 'conv1'),
        node('Relu', ['c1'], ['r1']),
        node('Shape', ['r1'], ['s']),
        node('Gather', ['s', 'zero'], ['batch'], { axis: 0 }),
        node('Unsqueeze', ['batch', 'axes0'], ['batch1']),
        node('Cast', ['minusOne'], ['minusOneInt'], { to: 7 }),
        node('Concat', ['batch1', 'minusOneInt'], ['target'], { axis: 0 }),
        node('Reshape', ['r1', 'target'], ['f'], {}, 'view'),
        node('Gemm', ['f', 'W2', 'b2'], ['y'], { transB: 1 }, 'fc'),
      ],
      initializers: [w('W1', [3, 1, 2, 2]), w('b1', [3]), int64Tensor('zero', [], [0]), int64Tensor('axes0', [1], [0]), floatTensor('minusOne', [1], [-1]), w('W2', [4, 3 * 3 * 3]), w('b2', [4])],
      inputs: [valueInfo('x', ['batch', 1, 4, 4])],
      outputs: [valueInfo('y', ['batch', 4])],
    });
    await expectSameForward(bytes, [1, 1, 4, 4], ['conv+relu', 'flatten', 'dense']);
  });
});

describe('a zero Pad folds into the following Conv or AveragePool', () => {
  const pad = (input: string, output: string, pads: number[], name = 'pad') => [node('Pad', [input, `${name}_pads`], [output], { mode: 'constant' }, name), int64Tensor(`${name}_pads`, [8], pads)] as const;

  test('Pad + AveragePool (nn.AvgPool2d(3, 2, padding=1)): the padded zeros are counted', async () => {
    const [padNode, pads] = pad('r1', 'p', [0, 0, 1, 1, 0, 0, 1, 1]);
    const bytes = modelBytes({
      nodes: [
        node('Conv', ['x', 'W1', 'b1'], ['c1'], { kernel_shape: [1, 1] }),
        node('Relu', ['c1'], ['r1']),
        padNode,
        node('AveragePool', ['p'], ['a'], { kernel_shape: [3, 3], strides: [2, 2] }, 'avg'),
        node('Flatten', ['a'], ['f']),
        node('Gemm', ['f', 'W2'], ['y'], { transB: 1 }),
      ],
      initializers: [w('W1', [2, 2, 1, 1]), w('b1', [2]), pads, w('W2', [3, 2 * 3 * 3])],
      inputs: [valueInfo('x', [1, 2, 6, 5])],
      outputs: [valueInfo('y', [1, 3])],
    });
    const network = await expectSameForward(bytes, [1, 2, 6, 5], ['conv+relu', 'avgpool', 'flatten', 'dense']);
    expect(network.layers[1]).toMatchObject({ inputShape: [2, 6, 5], pads: [1, 1, 1, 1], countIncludePad: true });
  });

  test('Pad (asymmetric, opset 18 axes) + AveragePool with its own counted pads; two Pads + Conv with auto_pad', async () => {
    const bytes = modelBytes({
      nodes: [
        node('Pad', ['x', 'pads1', '', 'axes'], ['p1'], {}, 'pad1'),
        node('AveragePool', ['p1'], ['a'], { kernel_shape: [2, 3], strides: [1, 2], pads: [1, 0, 0, 1], count_include_pad: 1 }, 'avg'),
        node('Pad', ['a', 'pads2', 'zero'], ['p2'], {}, 'pad2'),
        node('Pad', ['p2', 'pads3'], ['p3'], {}, 'pad3'),
        node('Conv', ['p3', 'W1', 'b1'], ['c'], { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' }, 'conv'),
        node('Relu', ['c'], ['r']),
        node('Flatten', ['r'], ['f']),
        node('Gemm', ['f', 'W2'], ['y'], { transB: 1 }),
      ],
      initializers: [
        int64Tensor('pads1', [4], [2, 0, 1, 1]), int64Tensor('axes', [2], [2, 3]), int64Tensor('pads2', [8], [0, 0, 0, 1, 0, 0, 2, 0]), floatTensor('zero', [], [0]),
        int64Tensor('pads3', [8], [0, 0, 1, 0, 0, 0, 0, 0]), w('W1', [3, 2, 3, 3]), w('b1', [3]), w('W2', [2, 3 * 6 * 3]),
      ],
      inputs: [valueInfo('x', [1, 2, 5, 7])],
      outputs: [valueInfo('y', [1, 2])],
      opset: 18,
    });
    const network = await expectSameForward(bytes, [1, 2, 5, 7], ['avgpool', 'conv+relu', 'flatten', 'dense']);
    expect(network.layers[0]).toMatchObject({ inputShape: [2, 5, 7], pads: [3, 0, 1, 2], countIncludePad: true });
  });
});

describe('graphs and activations agree with onnxruntime', () => {
  const convNode = (input: string, weight: string, out: string, name: string, o: Record<string, number[]> = {}) =>
    node('Conv', [input, weight, `${weight}_b`], [out], { kernel_shape: o.kernel ?? [3, 3], pads: o.pads ?? [1, 1, 1, 1], strides: o.strides ?? [1, 1] }, name);
  const convWeights = (name: string, dims: number[]) => [w(name, dims), w(`${name}_b`, [dims[0]])];
  const bn = (input: string, out: string, name: string, channels: number) => [
    node('BatchNormalization', [input, `${name}_g`, `${name}_beta`, `${name}_m`, `${name}_v`], [out], {}, name),
    [w(`${name}_g`, [channels], 1), w(`${name}_beta`, [channels]), w(`${name}_m`, [channels]), floatTensor(`${name}_v`, [channels], Array.from({ length: channels }, (_, i) => 0.5 + i / channels))],
  ] as const;

  test('residual blocks: identity and projection shortcuts, BatchNorm folded, ReLU after the Add', async () => {
    const [bn1, bn1w] = bn('c1', 'n1', 'bn1', 4);
    const [bn2, bn2w] = bn('c2', 'n2', 'bn2', 4);
    const [bn3, bn3w] = bn('c3', 'n3', 'bn3', 4);
    const [bn4, bn4w] = bn('c4', 'n4', 'bn4', 6);
    const [bn5, bn5w] = bn('c5', 'n5', 'bn5', 6);
    const bytes = modelBytes({
      nodes: [
        convNode('x', 'W1', 'c1', 'conv1'), bn1, node('Relu', ['n1'], ['r1']),
        convNode('r1', 'W2', 'c2', 'conv2'), bn2, node('Relu', ['n2'], ['r2']),
        convNode('r2', 'W3', 'c3', 'conv3'), bn3,
        node('Add', ['n3', 'r1'], ['s1'], {}, 'add1'), node('Relu', ['s1'], ['r3']),
        convNode('r3', 'W4', 'c4', 'conv4', { strides: [2, 2] }), bn4, node('Relu', ['n4'], ['r4']),
        convNode('r4', 'W5', 'c5', 'conv5'), bn5,
        convNode('r3', 'Wd', 'd', 'down', { kernel: [1, 1], pads: [0, 0, 0, 0], strides: [2, 2] }),
        node('Add', ['n5', 'd'], ['s2'], {}, 'add2'), node('Relu', ['s2'], ['r5']),
        node('GlobalAveragePool', ['r5'], ['g']), node('Flatten', ['g'], ['f']), node('Gemm', ['f', 'Wf', 'bf'], ['y'], { transB: 1 }, 'fc'),
      ],
      initializers: [
        ...convWeights('W1', [4, 2, 3, 3]), ...bn1w, ...convWeights('W2', [4, 4, 3, 3]), ...bn2w, ...convWeights('W3', [4, 4, 3, 3]), ...bn3w,
        ...convWeights('W4', [6, 4, 3, 3]), ...bn4w, ...convWeights('W5', [6, 6, 3, 3]), ...bn5w, ...convWeights('Wd', [6, 4, 1, 1]), w('Wf', [3, 6]), w('bf', [3]),
      ],
      inputs: [valueInfo('x', [1, 2, 6, 6])],
      outputs: [valueInfo('y', [1, 3])],
    });
    await expectSameForward(bytes, [1, 2, 6, 6], ['conv+relu', 'conv+relu', 'conv', 'add+relu<2,0', 'conv+relu', 'conv', 'conv<3', 'add+relu<5,6', 'avgpool', 'flatten', 'dense']);
  });

  test('a tensor read twice keeps its layer: a lone ReLU and a scale layer beside it, x + x', async () => {
    const [norm, normw] = bn('c', 'n', 'bn', 2);
    const bytes = modelBytes({
      nodes: [
        convNode('x', 'W1', 'c', 'conv'),
        node('Relu', ['c'], ['r'], {}, 'relu'), norm,
        node('Add', ['r', 'n'], ['s'], {}, 'add'), node('Add', ['s', 's'], ['d'], {}, 'double'),
        node('Flatten', ['d'], ['f']), node('Gemm', ['f', 'Wf'], ['y'], { transB: 1 }, 'fc'),
      ],
      initializers: [...convWeights('W1', [2, 2, 3, 3]), ...normw, w('Wf', [3, 2 * 4 * 4])],
      inputs: [valueInfo('x', [1, 2, 4, 4])],
      outputs: [valueInfo('y', [1, 3])],
    });
    await expectSameForward(bytes, [1, 2, 4, 4], ['conv', 'relu', 'scale<0', 'add<1,2', 'add<3,3', 'flatten', 'dense']);
  });

  test('Fire-module Concat (SqueezeNet), a three-way Concat with the input, Sum of three, a zero Pad read by two convolutions, a dead branch dropped', async () => {
    const bytes = modelBytes({
      nodes: [
        convNode('x', 'Ws', 's', 'squeeze', { kernel: [1, 1], pads: [0, 0, 0, 0] }), node('Relu', ['s'], ['rs']),
        convNode('rs', 'We1', 'e1', 'expand1x1', { kernel: [1, 1], pads: [0, 0, 0, 0] }), node('Relu', ['e1'], ['re1']),
        node('Pad', ['rs', 'pp'], ['ps'], {}, 'pad'),
        convNode('ps', 'We3', 'e3', 'expand3x3', { pads: [0, 0, 0, 0] }), node('Relu', ['e3'], ['re3']),
        convNode('ps', 'Wo', 'o', 'other', { pads: [0, 0, 0, 0] }),
        node('Sigmoid', ['re3'], ['unused'], {}, 'dead'),
        node('Concat', ['re1', 're3'], ['cat'], { axis: 1 }, 'fire'),
        node('Concat', ['cat', 'x', 'o'], ['cat3'], { axis: -3 }, 'cat3'),
        convNode('cat3', 'Wm', 'm', 'mix', { kernel: [1, 1], pads: [0, 0, 0, 0] }),
        node('Sum', ['m', 'x', 'm'], ['sum'], {}, 'sum3'),
        node('Flatten', ['sum'], ['f']), node('Gemm', ['f', 'Wf'], ['y'], { transB: 1 }, 'fc'),
      ],
      initializers: [
        ...convWeights('Ws', [2, 3, 1, 1]), ...convWeights('We1', [3, 2, 1, 1]), ...convWeights('We3', [4, 2, 3, 3]), ...convWeights('Wo', [1, 2, 3, 3]),
        ...convWeights('Wm', [3, 11, 1, 1]), int64Tensor('pp', [8], [0, 0, 1, 1, 0, 0, 1, 1]), w('Wf', [2, 3 * 5 * 5]),
      ],
      inputs: [valueInfo('x', [1, 3, 5, 5])],
      outputs: [valueInfo('y', [1, 2])],
    });
    const network = await expectSameForward(bytes, [1, 3, 5, 5], ['conv+relu', 'conv+relu', 'conv+relu<0', 'conv<0', 'concat<1,2', 'concat<4,-1,3', 'conv', 'add<6,-1,6', 'flatten', 'dense']);
    expect(network.layers[2]).toMatchObject({ pads: [1, 1, 1, 1] });
    expect(network.layers[3]).toMatchObject({ pads: [1, 1, 1, 1] });
  });

  test('LeakyRelu, PRelu per channel, Clip from inputs (ReLU6, HardTanh, max only), Sigmoid, a lone Tanh after a max pool', async () => {
    const bytes = modelBytes({
      nodes: [
        convNode('x', 'W1', 'c1', 'conv1'), node('LeakyRelu', ['c1'], ['l1'], { alpha: { float: 0.2 } }, 'leaky'),
        convNode('l1', 'W2', 'c2', 'conv2'), node('PRelu', ['c2', 'slope'], ['p2'], {}, 'prelu'),
        convNode('p2', 'W3', 'c3', 'conv3'), node('Clip', ['c3', 'zero', 'six'], ['r6'], {}, 'relu6'),
        node('MaxPool', ['r6'], ['mp'], { kernel_shape: [2, 2], strides: [2, 2] }), node('Tanh', ['mp'], ['t'], {}, 'tanh'),
        convNode('t', 'W4', 'c4', 'conv4'), node('Clip', ['c4', 'minusOne', 'one'], ['h'], {}, 'hardtanh'),
        convNode('h', 'W5', 'c5', 'conv5'), node('Clip', ['c5', '', 'six'], ['m5'], {}, 'maxOnly'),
        node('Flatten', ['m5'], ['f']), node('Gemm', ['f', 'Wf', 'bf'], ['g'], { transB: 1 }, 'fc1'), node('Sigmoid', ['g'], ['sg'], {}, 'sigmoid'),
        node('Gemm', ['sg', 'Wo', 'bo'], ['y'], { transB: 1 }, 'fc2'),
      ],
      initializers: [
        ...convWeights('W1', [3, 2, 3, 3]), ...convWeights('W2', [3, 3, 3, 3]), floatTensor('slope', [3, 1, 1], [0.1, 0.3, -0.2]), ...convWeights('W3', [3, 3, 3, 3]),
        floatTensor('zero', [], [0]), floatTensor('six', [], [6]), floatTensor('minusOne', [], [-1]), floatTensor('one', [], [1]),
        ...convWeights('W4', [2, 3, 3, 3]), ...convWeights('W5', [2, 2, 3, 3]), w('Wf', [5, 2 * 3 * 3]), w('bf', [5]), w('Wo', [3, 5]), w('bo', [3]),
      ],
      inputs: [valueInfo('x', [1, 2, 6, 6])],
      outputs: [valueInfo('y', [1, 3])],
    });
    await expectSameForward(bytes, [1, 2, 6, 6], ['conv+leakyrelu(0.20000000298023224)', 'conv+prelu', 'conv+clip(0,6)', 'maxpool', 'activation:tanh', 'conv+clip(-1,1)', 'conv+clip(-Infinity,6)', 'flatten', 'dense+sigmoid', 'dense']);
  });

  test('Clip with min and max attributes (opset 10); ReLU written as Clip(0, ∞) and as LeakyRelu(0)', async () => {
    const bytes = modelBytes({
      nodes: [
        convNode('x', 'W1', 'c1', 'conv1'), node('Clip', ['c1'], ['h'], { min: { float: -0.5 }, max: { float: 2 } }, 'clip'),
        convNode('h', 'W2', 'c2', 'conv2'), node('Clip', ['c2'], ['r'], { min: { float: 0 } }, 'relu'),
        convNode('r', 'W3', 'c3', 'conv3'), node('LeakyRelu', ['c3'], ['l'], { alpha: { float: 0 } }, 'leaky0'),
        node('Flatten', ['l'], ['f']), node('Gemm', ['f', 'Wf', 'bf'], ['y'], { transB: 1 }, 'fc'),
      ],
      initializers: [...convWeights('W1', [2, 2, 3, 3]), ...convWeights('W2', [2, 2, 3, 3]), ...convWeights('W3', [2, 2, 3, 3]), w('Wf', [3, 2 * 4 * 4]), w('bf', [3])],
      inputs: [valueInfo('x', [1, 2, 4, 4])],
      outputs: [valueInfo('y', [1, 3])],
      opset: 10,
    });
    await expectSameForward(bytes, [1, 2, 4, 4], ['conv+clip(-0.5,2)', 'conv+relu', 'conv+relu', 'flatten', 'dense']);
  });

  test('constant Sub, Div and Mul: input normalisation as a scale layer, folded into a convolution, c − x, a shift after a ReLU', async () => {
    const bytes = modelBytes({
      nodes: [
        node('Sub', ['x', 'mean'], ['centred'], {}, 'sub'), node('Div', ['centred', 'std'], ['normed'], {}, 'div'),
        convNode('normed', 'W1', 'c1', 'conv1'), node('Mul', ['c1', 'two'], ['m1'], {}, 'double'), node('Sub', ['m1', 'shift'], ['s1'], {}, 'shiftBias'), node('Relu', ['s1'], ['r1']),
        node('Add', ['r1', 'offset'], ['a1'], {}, 'offset'), node('Sub', ['ten', 'a1'], ['n1'], {}, 'negate'),
        node('Flatten', ['n1'], ['f']), node('Gemm', ['f', 'Wf'], ['g'], { transB: 1 }, 'fc'), node('Div', ['g', 'temperature'], ['y'], {}, 'temperature'),
      ],
      initializers: [
        floatTensor('mean', [1, 2, 1, 1], [0.4, 0.5]), floatTensor('std', [1, 2, 1, 1], [0.2, 0.3]), ...convWeights('W1', [3, 2, 3, 3]), floatTensor('two', [], [2]),
        floatTensor('shift', [3, 1, 1], [0.1, -0.2, 0.3]), floatTensor('offset', [1, 3, 1, 1], [1, 2, 3]), floatTensor('ten', [], [10]), w('Wf', [4, 3 * 4 * 4]), floatTensor('temperature', [], [1.5]),
      ],
      inputs: [valueInfo('x', [1, 2, 4, 4])],
      outputs: [valueInfo('y', [1, 4])],
    });
    const network = await expectSameForward(bytes, [1, 2, 4, 4], ['scale', 'conv+relu', 'scale', 'flatten', 'dense']);
    expect(Array.from((network.layers[0] as { scale: Float32Array }).scale)).toEqual([Math.fround(1 / 0.2), Math.fround(1 / Math.fround(0.3))].map(Math.fround));
  });
});

describe('rejections name the node and the reason', () => {
  const conv = (input: string, out: string, name: string) => node('Conv', [input, 'W', 'b'], [out], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, name);
  const base = { initializers: [w('W', [2, 2, 3, 3]), w('b', [2])], inputs: [valueInfo('x', [1, 2, 5, 5])], outputs: [valueInfo('y', [1, 2, 5, 5])] };

  test.each([
    ['an activation not supported yet (Elu)', modelBytes({ ...base, nodes: [conv('x', 'c', 'conv'), node('Elu', ['c'], ['y'], {}, 'elu')] }), /Elu is not supported yet: lipcert bounds ReLU, LeakyRelu, PRelu, Clip \(ReLU6, HardTanh\), Sigmoid and Tanh/, 'elu'],
    ['a product of two computed tensors', modelBytes({ ...base, nodes: [conv('x', 'c', 'conv'), node('Mul', ['c', 'x'], ['y'], {}, 'gate')] }), /Mul of two computed tensors .* is not supported: it is not an affine map of the input/, 'gate'],
    ['a difference of two branches', modelBytes({ ...base, nodes: [conv('x', 'c', 'conv'), node('Sub', ['c', 'x'], ['y'], {}, 'sub')] }), /Sub of two computed tensors is not supported/, 'sub'],
    ['a constant divided by a computed tensor', modelBytes({ ...base, initializers: [...base.initializers, floatTensor('one', [], [1])], nodes: [conv('x', 'c', 'conv'), node('Div', ['one', 'c'], ['y'], {}, 'inv')] }), /Div of a constant by a computed tensor is not supported/, 'inv'],
    ['an elementwise constant (not per channel)', modelBytes({ ...base, initializers: [...base.initializers, w('k', [1, 2, 5, 5])], nodes: [conv('x', 'c', 'conv'), node('Mul', ['c', 'k'], ['y'], {}, 'mask')] }), /factor of shape \[1,2,5,5\] is neither a scalar nor one value per channel/, 'mask'],
    ['an Add of tensors of different shapes (broadcasting)', modelBytes({ ...base, outputs: [valueInfo('y', [1, 2, 5, 5])], initializers: [...base.initializers, w('W1', [1, 2, 3, 3]), w('b1', [1])], nodes: [conv('x', 'c', 'conv'), node('Conv', ['x', 'W1', 'b1'], ['d'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 'narrow'), node('Add', ['c', 'd'], ['y'], {}, 'add')] }), /only tensors of one shape are supported \(no broadcasting between computed tensors\)/, 'add'],
    ['a Concat along the width', modelBytes({ ...base, outputs: [valueInfo('y', [1, 2, 5, 10])], nodes: [conv('x', 'c', 'conv'), node('Concat', ['c', 'x'], ['y'], { axis: 3 }, 'concat')] }), /Concat along axis 3 of rank-4 tensors is not supported \(only the channel axis, 1\)/, 'concat'],
    ['an op that reads two computed tensors (MaxPool is not one)', modelBytes({ ...base, nodes: [conv('x', 'c', 'conv'), node('Conv', ['x', 'c'], ['y'], { kernel_shape: [3, 3] }, 'dyn')] }), /reads 2 computed tensors .*; only Add, Sum, Concat combine computed tensors/, 'dyn'],
    ['Clip with min > max', modelBytes({ ...base, initializers: [...base.initializers, floatTensor('lo', [], [1]), floatTensor('hi', [], [0])], nodes: [conv('x', 'c', 'conv'), node('Clip', ['c', 'lo', 'hi'], ['y'], {}, 'clip')] }), /Clip with min 1 > max 0/, 'clip'],
    ['an op with nothing particular to say (Sin)', modelBytes({ ...base, nodes: [conv('x', 'c', 'conv'), node('Sin', ['c'], ['y'], {}, 'sin')] }), /unsupported op Sin \(supported: Conv, Gemm/, 'sin'],
    ['NaN weights', modelBytes({ ...base, initializers: [floatTensor('W', [2, 2, 3, 3], new Array(36).fill(0).map((_, i) => (i === 7 ? NaN : 1))), w('b', [2])], nodes: [conv('x', 'y', 'conv')] }), /non-finite value \(NaN\) at index 7/, 'conv'],
    ['Inf weights', modelBytes({ ...base, initializers: [w('W', [2, 2, 3, 3]), floatTensor('b', [2], [1, Infinity])], nodes: [conv('x', 'y', 'conv')] }), /non-finite value \(Infinity\)/, 'conv'],
    ['a missing initializer', modelBytes({ ...base, initializers: [w('b', [2])], nodes: [conv('x', 'y', 'conv')] }), /missing initializer 'W'/, 'conv'],
    ['a Reshape that is not a flatten', modelBytes({ ...base, initializers: [...base.initializers, int64Tensor('s', [3], [1, 5, 10])], nodes: [conv('x', 'c', 'conv'), node('Reshape', ['c', 's'], ['y'], {}, 'reshape')] }), /is not a flatten/, 'reshape'],
    ['a Pad read by a Concat', modelBytes({ ...base, outputs: [valueInfo('y', [1, 4, 7, 7])], initializers: [...base.initializers, int64Tensor('pp', [8], [0, 0, 1, 1, 0, 0, 1, 1])], nodes: [conv('x', 'c', 'conv'), node('Pad', ['c', 'pp'], ['p'], {}, 'pad'), node('Concat', ['p', 'p'], ['y'], { axis: 1 }, 'cat')] }), /a zero Pad folds only into a directly following Conv or AveragePool; here a Concat follows it/, 'pad'],
    ['a zero Pad before a MaxPool', modelBytes({ ...base, initializers: [...base.initializers, int64Tensor('pp', [8], [0, 0, 1, 1, 0, 0, 1, 1])], nodes: [conv('x', 'c', 'conv'), node('Pad', ['c', 'pp'], ['p'], {}, 'pad'), node('MaxPool', ['p'], ['y'], { kernel_shape: [3, 3] }, 'pool')] }), /zero padding is not max pooling's −∞ padding/, 'pad'],
    ['a reflect Pad', modelBytes({ ...base, initializers: [...base.initializers, int64Tensor('pp', [8], [0, 0, 1, 1, 0, 0, 1, 1])], nodes: [node('Pad', ['x', 'pp'], ['p'], { mode: 'reflect' }, 'pad'), conv('p', 'y', 'conv')] }), /Pad mode 'reflect' is not supported: only zero padding/, 'pad'],
    ['a Pad with value 1', modelBytes({ ...base, initializers: [...base.initializers, int64Tensor('pp', [8], [0, 0, 1, 1, 0, 0, 1, 1]), floatTensor('one', [], [1])], nodes: [node('Pad', ['x', 'pp', 'one'], ['p'], {}, 'pad'), conv('p', 'y', 'conv')] }), /Pad with value 1 is not supported/, 'pad'],
    ['a Pad before an AveragePool that does not count its own pads', modelBytes({ ...base, initializers: [...base.initializers, int64Tensor('pp', [8], [0, 0, 1, 1, 0, 0, 1, 1])], nodes: [node('Pad', ['x', 'pp'], ['p'], {}, 'pad'), node('AveragePool', ['p'], ['y'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 'avg')] }), /zero Pad 'pad' .* cannot be folded/, 'avg'],
    ['a graph ending in a Pad', modelBytes({ ...base, initializers: [...base.initializers, int64Tensor('pp', [8], [0, 0, 1, 1, 0, 0, 1, 1])], nodes: [conv('x', 'c', 'conv'), node('Pad', ['c', 'pp'], ['y'], {}, 'pad')] }), /the graph ends with a Pad/, 'pad'],
    ['an attribute the importer does not know', modelBytes({ ...base, nodes: [node('Conv', ['x', 'W', 'b'], ['y'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], future_option: 2 }, 'conv')] }), /attribute future_option of Conv is not understood by the importer \(refused rather than ignored\)/, 'conv'],
    ['AveragePool with dilations (opset 19)', modelBytes({ ...base, nodes: [conv('x', 'c', 'conv'), node('AveragePool', ['c'], ['y'], { kernel_shape: [2, 2], dilations: [2, 2] }, 'avg')] }), /AveragePool with dilations \[2,2\] \(opset 19\) is not supported yet/, 'avg'],
    ['BatchNormalization in training mode', modelBytes({ ...base, initializers: [...base.initializers, w('g', [2]), w('m', [2]), floatTensor('v', [2], [1, 1])], nodes: [conv('x', 'c', 'conv'), node('BatchNormalization', ['c', 'g', 'b', 'm', 'v'], ['y'], { training_mode: 1 }, 'bn')] }), /training mode.*export the model in eval mode \(model\.eval\(\)\)/, 'bn'],
    ['a final Softmax', modelBytes({ ...base, nodes: [conv('x', 'c', 'conv'), node('Softmax', ['c'], ['y'], { axis: 1 }, 'softmax')] }), /Softmax turns logits into probabilities.*export the model without its final Softmax and certify the logits/, 'softmax'],
    ['SiLU (x·Sigmoid(x)), refused as not monotone (not as a product)', modelBytes({ ...base, nodes: [conv('x', 'c', 'conv'), node('Sigmoid', ['c'], ['s'], {}, 'sig'), node('Mul', ['c', 's'], ['y'], {}, 'silu')] }), /SiLU\/Swish \(x·sigmoid\(x\)\) is not monotone.*refused/, 'silu'],
    ['GELU', modelBytes({ ...base, nodes: [conv('x', 'c', 'conv'), node('Gelu', ['c'], ['y'], {}, 'gelu')], opset: 20 }), /GELU is not monotone/, 'gelu'],
    ['an op on constants that cannot be evaluated', modelBytes({ ...base, nodes: [node('Conv', ['W', 'W'], ['k'], {}, 'constconv'), conv('x', 'y', 'conv')] }), /Conv reads only constants .* cannot evaluate Conv at import/, 'constconv'],
  ])('%s', async (_label, bytes, message, nodeName) => {
    await expectRefusal(() => importOnnx(bytes), message, nodeName);
  });

  test('an output shape the graph declares differently from what the layers compute', () => {
    const bytes = modelBytes({ ...base, outputs: [valueInfo('y', [1, 2, 3, 5])], nodes: [conv('x', 'y', 'conv')] });
    expect(() => importOnnx(bytes)).toThrow(/the graph declares output 'y' of shape \[1,2,3,5\], the imported layers compute \[2,5,5\]/);
  });

  test('a truncated file and a file that is not ONNX', () => {
    const bytes = fs.readFileSync(fixture('mnist_lenet.onnx'));
    for (const cut of [bytes.subarray(0, bytes.length / 2), bytes.subarray(0, 100), Buffer.from('this is not an onnx model\n'), new Uint8Array(0)]) {
      expect(() => importOnnx(cut)).toThrow(UnsupportedModelError);
    }
  });

  test('a missing model file', () => {
    expect(() => importOnnxFile('/nonexistent/model.onnx')).toThrow(/cannot read model file/);
  });
});
