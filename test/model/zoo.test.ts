/**
 * The model zoo: architectures (the fixture networks' shapes, torchvision's parameter counts and
 * graphs), seeded He initialisation, ResNet-18 and MobileNetV2 exported and run by onnxruntime,
 * `resolveModel` specs and seeded random inputs.
 */
import { BadInputError } from '../../src/errors.js';
import { type Layer, parameterCount, size } from '../../src/model/ir.js';
import { importOnnxFile } from '../../src/model/onnx-import.js';
import ort from 'onnxruntime-node';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { nominalPass } from '../../src/bounds/nominal.js';
import { exportOnnx } from '../../src/model/onnx-export.js';
import { alexnet, buildNetwork, mobilenetV2, randomInput, randomInputSeed, resnet18, resolveModel, vgg16, zooModel } from '../../src/model/zoo/index.js';
import { fixture } from '../helpers/fixtures.js';

const sameBits = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** Everything about a layer but its weights. */
function geometry(l: Layer) {
  const { name: _name, ...rest } = l as Layer & Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rest)) if (!(v instanceof Float32Array)) out[k] = v;
  return out;
}

test.each([
  ['zoo:mnist-lenet', 'mnist_lenet.onnx'],
  ['zoo:cifar10-net', 'cifar10_net.onnx'],
])('%s has the architecture of fixtures/%s', (spec, file) => {
  const zoo = resolveModel(spec);
  const imported = importOnnxFile(fixture(file));
  expect(zoo.inputShape).toEqual(imported.inputShape);
  expect(zoo.layers.map(geometry)).toEqual(imported.layers.map(geometry));
});

test('full-size AlexNet and VGG-16 have torchvision’s shapes and parameter counts', () => {
  const a = buildNetwork(alexnet(), 0, { initialise: false });
  expect(parameterCount(a)).toBe(61_100_840);
  expect(a.layers.map((l) => l.outputShape.join('×'))).toEqual([
    '64×55×55', '64×27×27', '192×27×27', '192×13×13', '384×13×13', '256×13×13', '256×13×13', '256×6×6', '9216', '4096', '4096', '1000',
  ]);
  const v = buildNetwork(vgg16(), 0, { initialise: false });
  expect(parameterCount(v)).toBe(138_357_544);
  expect(v.layers.filter((l) => l.kind === 'conv')).toHaveLength(13);
  expect(v.layers.filter((l) => l.kind === 'maxpool')).toHaveLength(5);
  // At 224×224 the adaptive pool is the identity and leaves nothing; at 448 it is a 2×2 average pool.
  expect(v.layers.some((l) => l.kind === 'avgpool')).toBe(false);
  const big = buildNetwork(vgg16({ inputSize: 448 }), 0, { initialise: false });
  const pool = big.layers.find((l) => l.kind === 'avgpool');
  expect(pool && pool.kind === 'avgpool' && [pool.kernel, pool.strides, pool.outputShape]).toEqual([[2, 2], [2, 2], [512, 7, 7]]);
});

test('ResNet-18 and MobileNetV2 have torchvision’s graphs and parameter counts (less one per BatchNorm channel, folded into a bias)', () => {
  // torchvision: resnet18 11 689 512 parameters with 4 800 BatchNorm channels (2 each); mobilenet_v2
  // 3 504 872 with 17 056 (scripts/compare-zoo-torch.py prints them).
  const r = buildNetwork(resnet18(), 0, { initialise: false });
  expect(parameterCount(r)).toBe(11_689_512 - 4_800);
  expect(r.layers.filter((l) => l.kind === 'conv')).toHaveLength(20);
  expect(r.layers.filter((l) => l.kind === 'add').map((l) => [l.outputShape.join('×'), 'relu' in l && l.relu])).toEqual([
    ['64×56×56', true], ['64×56×56', true], ['128×28×28', true], ['128×28×28', true], ['256×14×14', true], ['256×14×14', true], ['512×7×7', true], ['512×7×7', true],
  ]);
  // Three projection shortcuts (1×1, stride 2) read the block input, not the previous layer.
  expect(r.layers.flatMap((l) => (l.kind === 'conv' && l.kernel[0] === 1 ? [l.inputs !== undefined && l.strides[0]] : []))).toEqual([2, 2, 2]);
  expect(r.outputShape).toEqual([1000]);
  const m = buildNetwork(mobilenetV2(), 0, { initialise: false });
  expect(parameterCount(m)).toBe(3_504_872 - 17_056);
  expect(m.layers.filter((l) => l.kind === 'conv')).toHaveLength(52);
  expect(m.layers.filter((l) => l.kind === 'add')).toHaveLength(10);
  expect(m.layers.filter((l) => l.kind === 'conv' && l.group > 1)).toHaveLength(17); // depthwise
  expect(m.layers.filter((l) => 'activation' in l && l.activation?.kind === 'clip')).toHaveLength(35); // ReLU6
});

test.each(['resnet18', 'mobilenet_v2'])('zoo:%s exported to ONNX: onnxruntime running the file gives the engine’s logits (1e-4 relative)', async (name) => {
  const network = zooModel(name, 1);
  const bytes = exportOnnx(network);
  const x = randomInput(network, 3);
  const backend = createCpuBackend();
  try {
    const ours = (await nominalPass(network, backend, x)).logits;
    const session = await ort.InferenceSession.create(bytes);
    const theirs = (await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [1, ...network.inputShape]) }))[session.outputNames[0]].data as Float32Array;
    await session.release();
    const scale = Math.max(...Array.from(theirs, Math.abs));
    expect(scale).toBeGreaterThan(0);
    for (let i = 0; i < ours.length; i++) expect(Math.abs(ours[i] - theirs[i])).toBeLessThanOrEqual(1e-4 * scale);
  } finally {
    await backend.dispose();
  }
}, 120_000);

test('weights are He-initialised and depend only on the seed', () => {
  const a = zooModel('cifar10-net', 0);
  const b = zooModel('cifar10-net', 0);
  const c = resolveModel('zoo:cifar10-net:1');
  a.layers.forEach((l, i) => {
    if (l.kind !== 'conv' && l.kind !== 'dense') return;
    const other = b.layers[i] as typeof l;
    expect(sameBits(other.weight, l.weight)).toBe(true);
    expect(sameBits((c.layers[i] as typeof l).weight, l.weight)).toBe(false);
    const fanIn = l.weight.length / l.outputShape[0];
    const variance = l.weight.reduce((s, w) => s + w * w, 0) / l.weight.length;
    expect(Math.abs(variance / (2 / fanIn) - 1)).toBeLessThan(0.15);
    expect(Math.max(...Array.from(l.bias, Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(fanIn));
  });
});

test('model specs: unknown names and malformed seeds are the user’s mistakes', () => {
  expect(() => resolveModel('zoo:resnet50')).toThrow(BadInputError);
  expect(() => resolveModel('zoo:vgg16:x')).toThrow(BadInputError);
  expect(() => resolveModel('zoo:vgg16:1:2')).toThrow(BadInputError);
  expect(resolveModel(fixture('mnist_lenet.onnx')).name).toBe('mnist_lenet');
});

test('random inputs: the model’s shape, seeded, about N(0, 1)', () => {
  const net = zooModel('mnist-lenet');
  const x = randomInput(net, 5);
  expect(x).toHaveLength(size(net.inputShape));
  expect(randomInput(net, 5)).toEqual(x);
  expect(randomInput(net, 6)).not.toEqual(x);
  const mean = x.reduce((a, b) => a + b, 0) / x.length;
  const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length;
  expect(Math.abs(mean)).toBeLessThan(0.1);
  expect(Math.abs(variance - 1)).toBeLessThan(0.1);
  expect(randomInputSeed('random')).toBe(0);
  expect(randomInputSeed('random:42')).toBe(42);
  expect(randomInputSeed('x.png')).toBeNull();
  expect(() => randomInputSeed('random:-1')).toThrow(BadInputError);
});
