/**
 * The import cross-check (src/model/onnx-check.ts): its rounding bound holds (the engine's float32
 * layers against float64 references stay within half of it) and is not vacuous (a change of one
 * weight by 0.1 % or a bias by 1e-6 is caught), tampered imports are refused naming the first
 * layer that differs, and correct imports, external data included, pass.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { nominalPass } from '../../src/bounds/layer-bounds.js';
import type { AffineLayer, ConvLayer, DenseLayer, Layer, Network } from '../../src/model/ir.js';
import ort from 'onnxruntime-node';
import { checkImport, gamma, importOnnxChecked, roundingBound, SMOOTH_ACTIVATION_TOLERANCE } from '../../src/model/onnx-check.js';
import { importOnnxTrace, type ImportTrace } from '../../src/model/onnx-import.js';
import { externalDataEntries, floatTensor, modelBytes, node, valueInfo } from '../../src/model/onnx-builder.js';
import { applyEntries } from '../helpers/layer-definitions.js';
import { avgpool, conv, dense, randomWeights, scale } from '../helpers/random-networks.js';
import { expectRefusal } from './refusal.js';

const MODELS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const backend = createCpuBackend();
afterAll(() => backend.dispose());

function traceOf(name: string): { trace: ImportTrace; bytes: Uint8Array } {
  const bytes = fs.readFileSync(path.join(MODELS, `${name}.onnx`));
  return { trace: importOnnxTrace(bytes, name), bytes };
}

describe('the rounding bound', () => {
  test('γ_k', () => {
    expect(gamma(1)).toBe(2 ** -24 / (1 - 2 ** -24));
    expect(gamma(1000)).toBeGreaterThan(1000 * 2 ** -24);
    expect(gamma(1000)).toBeLessThan(1000.1 * 2 ** -24);
  });

  // Inputs with a large dynamic range and signs, so that sums cancel.
  const input = (n: number) => Float32Array.from(randomWeights(n, 1), (v, i) => v * (i % 7 === 0 ? 1e3 : 1));
  const layers: [string, Layer][] = [
    ['conv 3×3, 8 channels', conv([8, 7, 7], 6, [3, 3], { pads: [1, 1, 1, 1], relu: false })],
    ['grouped strided conv', conv([4, 9, 8], 4, [3, 2], { strides: [2, 1], group: 2, relu: false })],
    ['dense 600 → 40', dense(600, 40, false)],
    ['average pool counting pads', avgpool([3, 6, 6], [3, 3], [2, 2], [1, 1, 1, 1], true)],
    ['scale', scale([3, 4, 4], false)],
  ];

  test.each(layers)('holds for one float32 evaluation against float64: %s', async (_label, layer) => {
    const z = input(layer.inputShape.reduce((a, b) => a * b, 1));
    const affine = layer as AffineLayer;
    const ours = await backend.forward(affine, z);
    const exact = applyEntries(affine, z, true);
    const bound = await roundingBound(layer, z, backend);
    let relative = 0;
    for (let j = 0; j < ours.length; j++) {
      // One evaluation is within γ_{k+4}(…), half of the two-evaluation bound.
      expect(Math.abs(ours[j] - exact[j])).toBeLessThanOrEqual(bound[j] / 2);
      relative = Math.max(relative, bound[j] / Math.max(...Array.from(exact, Math.abs)));
    }
    // And it is small: far below any difference a wrong op makes.
    expect(relative).toBeLessThan(1e-3);
  });
});

describe('correct imports pass', () => {
  test.each(['padded_avgpool_op9', 'dynamic_view_op13', 'small_vgg_default_init_op13'])('%s', async (name) => {
    const { trace, bytes } = traceOf(name);
    const report = await checkImport(trace, bytes, null, { backend });
    expect(report.layers).toBe(trace.network.layers.length);
    expect(report.probes.map((p) => p.probe)).toEqual(['random:0', 'zero']);
    for (const p of report.probes) {
      expect(p.worstRatio).toBeLessThanOrEqual(1);
      expect(p.logitDifference).toBeLessThanOrEqual(1e-5 * p.logitScale);
    }
  });

  test('a model with external data, loaded from its folder', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lipcert-check-'));
    const weights = randomWeights(4 * 6, 1);
    fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.from(weights.buffer));
    const external = floatTensor('W', [4, 6], []);
    external.rawData = new Uint8Array(0);
    external.dataLocation = 1; // EXTERNAL
    external.externalData = externalDataEntries('w.bin', 0, weights.byteLength);
    const bytes = modelBytes({
      nodes: [node('Gemm', ['x', 'W'], ['h'], { transB: 1 }, 'fc'), node('Relu', ['h'], ['y'])],
      initializers: [external],
      inputs: [valueInfo('x', [1, 6])],
      outputs: [valueInfo('y', [1, 4])],
    });
    const network = await importOnnxChecked(bytes, 'external', dir, { backend });
    expect(network.layers.map((l) => l.kind)).toEqual(['dense']);
  });
});

describe('tampered imports are refused, naming the first layer that differs', () => {
  test('an average pool with the wrong divisor (count_include_pad ignored)', async () => {
    const { trace, bytes } = traceOf('padded_avgpool_op9');
    const pool = trace.network.layers[1];
    expect(pool).toMatchObject({ kind: 'avgpool', countIncludePad: true });
    (pool as { countIncludePad: boolean }).countIncludePad = false;
    await expectRefusal(
      () => checkImport(trace, bytes, null, { backend }),
      /the import differs from the ONNX graph at layer 1 \(avgpool, ONNX tensor '.+'\): output \d+ is .* where onnxruntime gives .* on the random:0 probe \(float32 rounding allows .*\); the model is refused rather than certified wrongly/,
      pool.name,
    );
  });

  test('a window attribute misread (a stride ignored, so the shape differs)', async () => {
    const { trace, bytes } = traceOf('padded_avgpool_op9');
    const pool = trace.network.layers[1] as { strides: number[]; outputShape: number[] };
    pool.strides = [1, 1];
    pool.outputShape = [4, 8, 8];
    await expectRefusal(() => checkImport(trace, bytes, null, { backend }), /at layer 1 \(avgpool, .*\): onnxruntime computes shape \[1,4,4,4\], the import \[4,8,8\]/);
  });

  test('one weight of a convolution off by 0.1 %', async () => {
    const { trace, bytes } = traceOf('small_vgg_default_init_op13');
    const layer = trace.network.layers[2] as ConvLayer;
    expect(layer.kind).toBe('conv');
    const i = layer.weight.findIndex((v) => Math.abs(v) > 0.1);
    layer.weight[i] *= 1.001;
    await expectRefusal(() => checkImport(trace, bytes, null, { backend }), /at layer 2 \(conv\+relu, /, layer.name);
  });

  test('a bias of 1e-6 where the graph has zero biases (found on the x = 0 probe if not before)', async () => {
    const { trace, bytes } = traceOf('small_vgg_default_init_op13');
    const layers = trace.network.layers;
    const last = layers[layers.length - 1] as DenseLayer;
    expect(Array.from(last.bias).every((b) => b === 0)).toBe(true);
    last.bias[3] = 1e-6;
    await expectRefusal(() => checkImport(trace, bytes, null, { backend }), new RegExp(`at layer ${layers.length - 1} \\(dense, `));
  });
});

describe('graphs and activations: the bound holds and tampering is caught', () => {
  test.each(['Sigmoid', 'Tanh'])('onnxruntime\'s %s is within half the tolerance of the exact function', async (op) => {
    const n = 200_001;
    const x = Float32Array.from({ length: n }, (_, i) => -25 + (50 * i) / (n - 1));
    const session = await ort.InferenceSession.create(modelBytes({ nodes: [node(op, ['x'], ['y'])], inputs: [valueInfo('x', [n])], outputs: [valueInfo('y', [n])] }));
    const y = (await session.run({ x: new ort.Tensor('float32', x, [n]) })).y.data as Float32Array;
    await session.release();
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(y[i] - (op === 'Sigmoid' ? 1 / (1 + Math.exp(-x[i])) : Math.tanh(x[i]))));
    expect(worst).toBeLessThan(SMOOTH_ACTIVATION_TOLERANCE / 2);
    expect(worst).toBeGreaterThan(0); // an approximation, so the tolerance is needed
  });

  test.each(['tiny_residual_op13', 'leaky_relu_mlp_op13', 'relu6_op13'])('correct import of %s passes', async (name) => {
    const { trace, bytes } = traceOf(name);
    const report = await checkImport(trace, bytes, null, { backend });
    for (const p of report.probes) expect(p.worstRatio).toBeLessThanOrEqual(1);
  });

  test('an Add reading the wrong input', async () => {
    const { trace, bytes } = traceOf('tiny_residual_op13');
    const add = trace.network.layers[3];
    expect(add).toMatchObject({ kind: 'add', inputs: [0, 2] });
    add.inputs = [2, 2];
    await expectRefusal(() => checkImport(trace, bytes, null, { backend }), /at layer 3 \(add\+relu, /, add.name);
  });

  test('a ReLU6 read as Clip(0.01, 6)', async () => {
    const { trace, bytes } = traceOf('relu6_op13');
    const conv = trace.network.layers[0] as ConvLayer;
    expect(conv.activation).toEqual({ kind: 'clip', min: 0, max: 6 });
    conv.activation = { kind: 'clip', min: 0.01, max: 6 };
    await expectRefusal(() => checkImport(trace, bytes, null, { backend }), /at layer 0 \(conv\+clip\(0\.01,6\), /, conv.name);
  });

  test('a LeakyReLU slope off by 0.1 %', async () => {
    const { trace, bytes } = traceOf('leaky_relu_mlp_op13');
    const dense = trace.network.layers[0] as DenseLayer;
    dense.activation = { kind: 'leakyrelu', alpha: 0.1 * 1.001 };
    await expectRefusal(() => checkImport(trace, bytes, null, { backend }), /at layer 0 \(dense\+leakyrelu\(0\.1001\), /, dense.name);
  });
});

test('the engine forward pass of a checked import is the one that was checked', async () => {
  const bytes = fs.readFileSync(path.join(MODELS, 'dynamic_view_op9.onnx'));
  const network: Network = await importOnnxChecked(bytes, 'view', null, { backend });
  const logits = (await nominalPass(network, backend, new Float32Array(64))).logits;
  expect(logits).toHaveLength(5);
});
