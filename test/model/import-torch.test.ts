/**
 * Networks as users export them (torch.onnx.export, opsets 9–17, test/model/fixtures, made by
 * scripts/make-test-models.py): the accepted ones pass the import cross-check and the engine's
 * forward pass gives onnxruntime's logits and torch's own (stored by the script) to 1e-5 relative;
 * the refused ones say why and what to do, naming the node.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { nominalPass } from '../../src/bounds/layer-bounds.js';
import { loadInputFile } from '../../src/model/input.js';
import { importOnnxFileChecked } from '../../src/model/onnx-check.js';
import { expectRefusal } from './refusal.js';

const MODELS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const file = (name: string, ext: string) => path.join(MODELS, `${name}.${ext}`);
const backend = createCpuBackend();
afterAll(() => backend.dispose());

async function onnxruntimeLogits(model: string, x: Float32Array, dims: number[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model);
  try {
    const result = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, dims) });
    return result[session.outputNames[0]].data as Float32Array;
  } finally {
    await session.release();
  }
}

function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

describe('accepted: the engine gives onnxruntime\'s and torch\'s logits', () => {
  test.each([
    ['padded_avgpool_op9', ['conv+relu', 'avgpool', 'flatten', 'dense']],
    ['padded_avgpool_op17', ['conv+relu', 'avgpool', 'flatten', 'dense']],
    ['dynamic_view_op9', ['conv+relu', 'maxpool', 'flatten', 'dense']],
    ['dynamic_view_op13', ['conv+relu', 'maxpool', 'flatten', 'dense']],
    ['small_vgg_default_init_op11', ['conv+relu', 'maxpool', 'conv+relu', 'conv+relu', 'maxpool', 'avgpool', 'flatten', 'dense+relu', 'dense+relu', 'dense']],
    ['small_vgg_default_init_op13', ['conv+relu', 'maxpool', 'conv+relu', 'conv+relu', 'maxpool', 'avgpool', 'flatten', 'dense+relu', 'dense+relu', 'dense']],
  ])('%s', async (name, kinds) => {
    const network = await importOnnxFileChecked(file(name, 'onnx'), { backend });
    expect(network.layers.map((l) => l.kind + ('relu' in l && l.relu ? '+relu' : ''))).toEqual(kinds);
    const x = loadInputFile(file(name, 'json'), network);
    const ours = (await nominalPass(network, backend, x)).logits;
    const theirs = await onnxruntimeLogits(file(name, 'onnx'), x, [1, ...network.inputShape]);
    const torch: number[] = JSON.parse(fs.readFileSync(file(name, 'json'), 'utf8')).torchLogits;
    const scale = Math.max(...Array.from(theirs, Math.abs));
    expect(scale).toBeGreaterThan(0);
    expect(maxDifference(ours, theirs)).toBeLessThanOrEqual(1e-5 * scale);
    expect(maxDifference(ours, torch)).toBeLessThanOrEqual(1e-5 * scale);
  });
});

describe('refused, saying why and what to do', () => {
  test.each([
    ['leaky_relu_mlp_op13', /LeakyRelu is not supported yet: ReLU is the only activation/, '/1/LeakyRelu'],
    ['relu6_op13', /Clip \(ReLU6 is exported as Clip\(0, 6\).*not supported yet/, '/1/Clip'],
    ['softmax_mlp_op13', /export the model without its final Softmax and certify the logits/, '/1/Softmax'],
    ['tiny_residual_op13', /feeds 2 nodes \(\/conv2\/Conv, \/Add\): residual and branching graphs .* are not supported yet/, '/conv2/Conv'],
    ['silu_op13', /SiLU\/Swish \(x·sigmoid\(x\)\) is not monotone.*refused/, '/1/Mul'],
    ['gelu_op13', /GELU \(exported as x·\(1 \+ erf\(x\/√2\)\)\/2\) is not monotone/, '/1/Erf'],
    ['dilated_avgpool_op19', /AveragePool with dilations \[2,2\] \(opset 19\) is not supported yet; export the pool with dilations 1/, 'dilated_pool'],
  ])('%s', async (name, message, node) => {
    await expectRefusal(() => importOnnxFileChecked(file(name, 'onnx'), { backend }), message, node);
  });
});
