/**
 * ONNX import: the forward pass of imported models agrees with onnxruntime executing the same file,
 * for every supported op and attribute; everything else is rejected with a typed error naming the node.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { nominalPass } from '../../src/bounds/layer-bounds.js';
import { UnsupportedModelError } from '../../src/errors.js';
import { importOnnx, importOnnxFile } from '../../src/model/onnx-import.js';
import { loadInputFile } from '../../src/model/input.js';
import { floatTensor, int64Tensor, modelBytes, node, valueInfo } from '../../src/model/onnx-builder.js';
import { randomWeights } from '../helpers/random-networks.js';
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
  const network = importOnnx(bytes, 'test');
  if (expectedKinds) expect(network.layers.map((l) => l.kind + ('relu' in l && l.relu ? '+relu' : ''))).toEqual(expectedKinds);
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

describe('rejections name the node and the reason', () => {
  const conv = (input: string, out: string, name: string) => node('Conv', [input, 'W', 'b'], [out], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, name);
  const base = { initializers: [w('W', [2, 2, 3, 3]), w('b', [2])], inputs: [valueInfo('x', [1, 2, 5, 5])], outputs: [valueInfo('y', [1, 2, 5, 5])] };

  test.each([
    ['a residual Add', modelBytes({ ...base, nodes: [conv('x', 'c', 'conv'), node('Relu', ['c'], ['r']), node('Add', ['r', 'x'], ['y'], {}, 'residual')] }), /'x' feeds 2 nodes \(conv, residual\).*not a chain/, 'conv'],
    ['a Concat', modelBytes({ ...base, nodes: [conv('x', 'c', 'conv'), node('Concat', ['c', 'x'], ['y'], { axis: 1 }, 'concat')] }), /'x' feeds 2 nodes \(conv, concat\)/, 'conv'],
    ['an unsupported op (Sigmoid)', modelBytes({ ...base, nodes: [conv('x', 'c', 'conv'), node('Sigmoid', ['c'], ['y'], {}, 'sig')] }), /unsupported op Sigmoid/, 'sig'],
    ['NaN weights', modelBytes({ ...base, initializers: [floatTensor('W', [2, 2, 3, 3], new Array(36).fill(0).map((_, i) => (i === 7 ? NaN : 1))), w('b', [2])], nodes: [conv('x', 'y', 'conv')] }), /non-finite value \(NaN\) at index 7/, 'conv'],
    ['Inf weights', modelBytes({ ...base, initializers: [w('W', [2, 2, 3, 3]), floatTensor('b', [2], [1, Infinity])], nodes: [conv('x', 'y', 'conv')] }), /non-finite value \(Infinity\)/, 'conv'],
    ['a missing initializer', modelBytes({ ...base, initializers: [w('b', [2])], nodes: [conv('x', 'y', 'conv')] }), /combines 2 computed tensors|missing initializer/, 'conv'],
    ['a Reshape that is not a flatten', modelBytes({ ...base, initializers: [...base.initializers, int64Tensor('s', [3], [1, 5, 10])], nodes: [conv('x', 'c', 'conv'), node('Reshape', ['c', 's'], ['y'], {}, 'reshape')] }), /is not a flatten/, 'reshape'],
    ['a branch (one tensor feeding two nodes)', modelBytes({ ...base, nodes: [conv('x', 'c', 'conv'), node('Relu', ['c'], ['r'], {}, 'relu'), node('Relu', ['c'], ['y'], {}, 'relu2')] }), /not a chain/, 'relu'],
  ])('%s', (_label, bytes, message, nodeName) => {
    let error: unknown;
    try {
      importOnnx(bytes);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UnsupportedModelError);
    expect((error as UnsupportedModelError).code).toBe('UNSUPPORTED_MODEL');
    expect((error as Error).message).toMatch(message);
    expect((error as UnsupportedModelError).node).toBe(nodeName);
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
