/**
 * Networks as users export them (torch.onnx.export, opsets 9–17, test/model/fixtures, made by
 * scripts/make-test-models.py; small ResNet, MobileNetV2 and SqueezeNet from torchvision's own
 * blocks with randomised BatchNorm statistics): the accepted ones pass the import cross-check and the engine's
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
import { layerKinds } from '../helpers/layer-kinds.js';

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
    ['leaky_relu_mlp_op13', ['dense+leakyrelu(0.10000000149011612)', 'dense+leakyrelu(0.10000000149011612)', 'dense']],
    ['relu6_op13', ['conv+clip(0,6)', 'flatten', 'dense']],
    ['tiny_residual_op13', ['conv+relu', 'conv+relu', 'conv', 'add+relu<0,2', 'flatten', 'dense']],
    ['small_resnet_op13', ['conv+relu', 'maxpool', 'conv+relu', 'conv', 'add+relu<3,1', 'conv+relu', 'conv', 'add+relu<6,4', 'conv+relu', 'conv', 'conv<7', 'add+relu<9,10', 'conv+relu', 'conv', 'add+relu<13,11', 'avgpool', 'flatten', 'dense']],
    ['small_mobilenet_v2_op13', ['conv+clip(0,6)', 'conv+clip(0,6)', 'conv', 'add<0,2', 'conv+clip(0,6)', 'conv+clip(0,6)', 'conv', 'conv+clip(0,6)', 'conv+clip(0,6)', 'conv', 'add<6,9', 'conv+clip(0,6)', 'conv+clip(0,6)', 'conv', 'conv+clip(0,6)', 'conv+clip(0,6)', 'conv', 'add<13,16', 'conv+clip(0,6)', 'avgpool', 'flatten', 'dense']],
    ['small_squeezenet_op13', ['conv+relu', 'maxpool', 'conv+relu', 'conv+relu', 'conv+relu<2', 'concat<3,4', 'conv+relu', 'conv+relu', 'conv+relu<6', 'concat<7,8', 'maxpool', 'conv+relu', 'conv+relu', 'conv+relu<11', 'concat<12,13', 'conv+relu', 'avgpool', 'flatten']],
  ])('%s', async (name, kinds) => {
    const network = await importOnnxFileChecked(file(name, 'onnx'), { backend });
    expect(layerKinds(network)).toEqual(kinds);
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
    ['softmax_mlp_op13', /export the model without its final Softmax and certify the logits/, '/1/Softmax'],
    ['silu_op13', /SiLU\/Swish \(x·sigmoid\(x\)\) is not monotone.*refused/, '/1/Mul'],
    ['gelu_op13', /GELU \(exported as x·\(1 \+ erf\(x\/√2\)\)\/2\) is not monotone/, '/1/Erf'],
    ['dilated_avgpool_op19', /AveragePool with dilations \[2,2\] \(opset 19\) is not supported yet; export the pool with dilations 1/, 'dilated_pool'],
  ])('%s', async (name, message, node) => {
    await expectRefusal(() => importOnnxFileChecked(file(name, 'onnx'), { backend }), message, node);
  });
});
