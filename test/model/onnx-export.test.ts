/**
 * Export to ONNX and back: the exported graph imports to the same network (weights bit for bit;
 * graphs, activations and ResNet-18/MobileNetV2 too),
 * onnxruntime running the file agrees with our forward pass, external data past the size limit reads
 * back, and `lipcert export` writes the file. Also the graphs torch.onnx.export makes of AlexNet and
 * VGG-16 (Dropout nodes, the adaptive pool as nothing, a 1×1 AveragePool, or a real one).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { nominalPass } from '../../src/bounds/layer-bounds.js';
import { exportCommand } from '../../src/cli/export.js';
import { LipcertError } from '../../src/errors.js';
import type { Network } from '../../src/model/ir.js';
import { floatTensor, modelBytes, node, valueInfo } from '../../src/model/onnx-builder.js';
import { exportOnnx, exportOnnxFile } from '../../src/model/onnx-export.js';
import { importOnnx, importOnnxFile } from '../../src/model/onnx-import.js';
import { activationOf } from '../../src/model/activations.js';
import { alexnet, buildNetwork, mobilenetV2, randomInput, resnet18, vgg16, zooModel } from '../../src/model/zoo/index.js';
import { GRAPH_NETWORKS } from '../helpers/graph-networks.js';
import type { NodeProto, TensorProto } from 'onnx-buf';

const backend = createCpuBackend();
afterAll(() => backend.dispose());
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lipcert-export-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const smallAlexNet = () => buildNetwork(alexnet({ inputSize: 63, widths: [4, 6, 6, 6, 6], hidden: 24, classes: 10, pooled: 1 }), 11);
const smallVgg = () => buildNetwork(vgg16({ inputSize: 32, config: [4, 'M', 8, 'M', 8, 8, 'M', 8, 'M'], hidden: 24, classes: 10, pooled: 1 }), 11);

function expectSameNetwork(a: Network, b: Network) {
  expect(b.inputShape).toEqual(a.inputShape);
  expect(b.outputShape).toEqual(a.outputShape);
  expect(b.layers).toHaveLength(a.layers.length);
  a.layers.forEach((l, i) => {
    const m = b.layers[i] as typeof l;
    expect(m.kind).toBe(l.kind);
    expect(m.inputShape).toEqual(l.inputShape);
    expect(m.outputShape).toEqual(l.outputShape);
    if ('relu' in l) expect((m as typeof l).relu).toBe(l.relu);
    expect(m.inputs).toEqual(l.inputs);
    expect(activationOf(m)).toEqual(activationOf(l));
    // count_include_pad only matters where there is padding (torch exports 1 for adaptive pools).
    const padded = 'pads' in l && l.pads.some((p) => p > 0);
    for (const key of ['kernel', 'strides', 'pads', 'dilations', 'group', ...(padded ? ['countIncludePad'] : [])]) {
      if (key in l) expect((m as unknown as Record<string, unknown>)[key]).toEqual((l as unknown as Record<string, unknown>)[key]);
    }
    if (l.kind === 'conv' || l.kind === 'dense') {
      const w = (m as typeof l).weight;
      expect(Buffer.from(w.buffer, w.byteOffset, w.byteLength).equals(Buffer.from(l.weight.buffer, l.weight.byteOffset, l.weight.byteLength))).toBe(true);
      expect(Array.from((m as typeof l).bias)).toEqual(Array.from(l.bias));
    }
  });
}

async function ortLogits(model: Uint8Array | string, x: Float32Array, shape: number[]): Promise<Float32Array> {
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model);
  const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [1, ...shape]) });
  await session.release();
  return out[session.outputNames[0]].data as Float32Array;
}

async function expectSameLogits(network: Network, model: Uint8Array | string) {
  const x = randomInput(network, 2);
  const ours = (await nominalPass(network, backend, x)).logits;
  const theirs = await ortLogits(model, x, network.inputShape);
  const scale = Math.max(...Array.from(theirs, Math.abs));
  theirs.forEach((v, i) => expect(Math.abs(ours[i] - v)).toBeLessThan(1e-4 * scale));
}

const smallResNet = () => buildNetwork(resnet18({ inputSize: 32, widths: [4, 8, 8, 16], classes: 10 }), 3);
const smallMobileNet = () => buildNetwork(mobilenetV2({ inputSize: 32, width: 0.25, lastChannels: 64, classes: 10 }), 3);

test.each([
  ['AlexNet', smallAlexNet],
  ['VGG-16', smallVgg],
  ['ResNet-18', smallResNet],
  ['MobileNetV2', smallMobileNet],
  ...GRAPH_NETWORKS.map(([name, build]) => [`${name} graph network`, () => build(4)] as [string, () => Network]),
])('reduced %s: export → import is the same network, and onnxruntime agrees', async (_name, build) => {
  const network = build();
  const bytes = exportOnnx(network);
  expectSameNetwork(network, importOnnx(bytes, 'x'));
  await expectSameLogits(network, bytes);
});

test('weights past the threshold go to external data, which the importer and onnxruntime read', async () => {
  const network = smallVgg();
  const file = path.join(tmp, 'vgg-external.onnx');
  const summary = exportOnnxFile(network, file, 0);
  expect(summary.externalData).toBe(`${file}.data`);
  expect(fs.statSync(file).size).toBeLessThan(10_000);
  expect(fs.statSync(`${file}.data`).size).toBeGreaterThanOrEqual(summary.parameters * 4);
  expectSameNetwork(network, importOnnxFile(file));
  await expectSameLogits(network, file);
});

test('lipcert export: writes zoo models, refuses a non-.onnx name', () => {
  const file = path.join(tmp, 'lenet.onnx');
  const summary = exportCommand('zoo:mnist-lenet', file);
  expect(summary.externalData).toBeNull();
  expect(summary.parameters).toBe(44_426);
  expectSameNetwork(zooModel('mnist-lenet'), importOnnxFile(file));
  expect(() => exportCommand('zoo:mnist-lenet', path.join(tmp, 'x.txt'))).toThrow(LipcertError);
});

/**
 * The graph torch.onnx.export (opset 13, eval mode, dropout kept) makes of a torchvision classifier:
 * Conv/Relu/MaxPool features, the adaptive pool (nothing, a 1×1 AveragePool, or a real one),
 * Flatten, then Dropout(p=0.5) nodes around Gemm(transB=1)/Relu.
 */
function torchStyleGraph(network: Network, adaptive: 'none' | 'unit-averagepool', dropoutFirst: boolean): Uint8Array {
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [floatTensor('dropout.ratio', [], [0.5])];
  let current = 'input.1';
  let counter = 0;
  const emit = (op: string, inputs: string[], attributes: Parameters<typeof node>[3] = {}) => {
    const out = `/${op}_${counter++}_output_0`;
    nodes.push(node(op, [current, ...inputs], [out], attributes, `/${op}_${counter}`));
    current = out;
  };
  let dense = 0;
  for (const [i, l] of network.layers.entries()) {
    if (l.kind === 'conv') {
      initializers.push(floatTensor(`features.${i}.weight`, [l.outputShape[0], l.inputShape[0], ...l.kernel], l.weight), floatTensor(`features.${i}.bias`, [l.outputShape[0]], l.bias));
      emit('Conv', [`features.${i}.weight`, `features.${i}.bias`], { dilations: [1, 1], group: 1, kernel_shape: l.kernel, pads: l.pads, strides: l.strides });
      if (l.relu) emit('Relu', []);
    } else if (l.kind === 'maxpool') {
      emit('MaxPool', [], { ceil_mode: 0, dilations: [1, 1], kernel_shape: l.kernel, pads: l.pads, strides: l.strides });
    } else if (l.kind === 'avgpool') {
      emit('AveragePool', [], { ceil_mode: 0, count_include_pad: 1, kernel_shape: l.kernel, pads: [0, 0, 0, 0], strides: l.strides });
    } else if (l.kind === 'flatten') {
      if (adaptive === 'unit-averagepool' && !network.layers.some((m) => m.kind === 'avgpool')) {
        emit('AveragePool', [], { ceil_mode: 0, count_include_pad: 1, kernel_shape: [1, 1], pads: [0, 0, 0, 0], strides: [1, 1] });
      }
      emit('Flatten', [], { axis: 1 });
    } else if (l.kind === 'dense') {
      if (dense === 0 && dropoutFirst) emit('Dropout', ['dropout.ratio']);
      initializers.push(floatTensor(`classifier.${i}.weight`, l.outputShape.concat(l.inputShape), l.weight), floatTensor(`classifier.${i}.bias`, l.outputShape, l.bias));
      emit('Gemm', [`classifier.${i}.weight`, `classifier.${i}.bias`], { alpha: { float: 1 }, beta: { float: 1 }, transB: 1 });
      if (l.relu) emit('Relu', []);
      if (l.relu && (dense === 0 || !dropoutFirst)) emit('Dropout', ['dropout.ratio']);
      dense++;
    }
  }
  nodes[nodes.length - 1].output[0] = 'logits';
  return modelBytes({ nodes, initializers, inputs: [valueInfo('input.1', ['batch', ...network.inputShape])], outputs: [valueInfo('logits', ['batch', ...network.outputShape])] });
}

test.each([
  ['AlexNet, adaptive pool exported as nothing', smallAlexNet, 'none', true],
  ['AlexNet, adaptive pool as a 1×1 AveragePool', smallAlexNet, 'unit-averagepool', true],
  ['VGG-16, adaptive pool as a 1×1 AveragePool', () => buildNetwork(vgg16({ inputSize: 16, config: [4, 'M', 8, 'M', 8, 8, 'M', 8, 'M'], hidden: 24, classes: 10, pooled: 1 }), 5), 'unit-averagepool', false],
  ['VGG-16 with a real adaptive pool (2×2 → 1×1 AveragePool)', () => buildNetwork(vgg16({ inputSize: 32, config: [4, 'M', 8, 'M', 8, 'M', 8, 'M'], hidden: 24, classes: 10, pooled: 1 }), 5), 'none', false],
] as const)('torch.onnx.export graph of %s imports to the zoo network', async (_name, build, adaptive, dropoutFirst) => {
  const network = build();
  const bytes = torchStyleGraph(network, adaptive, dropoutFirst);
  const imported = importOnnx(bytes, 'torch');
  expectSameNetwork(network, imported);
  await expectSameLogits(network, bytes);
});
