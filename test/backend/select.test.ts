/**
 * Backend choice: 'auto' keeps small networks on the CPU (a Lanczos step on a GPU waits for
 * read-backs), and counts a network's multiply-adds from its layer shapes.
 */
import { AUTO_WEBGPU_MIN_MULTIPLY_ADDS, autoPrefersCpu, createBackend } from '../../src/backend/select.js';
import { multiplyAdds, networkMultiplyAdds, type Network } from '../../src/model/ir.js';
import { importOnnxFile } from '../../src/model/onnx-import.js';
import { conv, dense } from '../helpers/random-networks.js';
import { fixture } from '../helpers/fixtures.js';

test('multiply-adds of convolutions and dense layers', () => {
  // 8 output channels × 3 input channels × 3×3 taps at 10×10 output pixels.
  expect(multiplyAdds(conv([3, 12, 12], 8, [3, 3]))).toBe(8 * 3 * 9 * 100);
  expect(multiplyAdds(dense(20, 7))).toBe(140);
  // The MNIST net: conv1 6·25·576, conv2 16·6·25·64, fc 256·120 + 120·84 + 84·10.
  const mnist = importOnnxFile(fixture('mnist_lenet.onnx'));
  expect(networkMultiplyAdds(mnist)).toBe(6 * 25 * 576 + 16 * 6 * 25 * 64 + 256 * 120 + 120 * 84 + 84 * 10);
});

test("'auto' keeps the fixture networks on the CPU and sends an ImageNet-sized one to a GPU", async () => {
  for (const name of ['mnist_lenet', 'cifar10_net']) expect(autoPrefersCpu(importOnnxFile(fixture(`${name}.onnx`)))).toBe(true);
  // One 64→64 3×3 convolution at 112×112: 462 M multiply-adds (VGG-16 has 15.5 G).
  const big = conv([64, 114, 114], 64, [3, 3]);
  const network: Network = { name: 'big', inputName: 'x', inputShape: [64, 114, 114], outputShape: big.outputShape, layers: [big] };
  expect(networkMultiplyAdds(network)).toBeGreaterThan(AUTO_WEBGPU_MIN_MULTIPLY_ADDS);
  expect(autoPrefersCpu(network)).toBe(false);
  const backend = await createBackend('auto', importOnnxFile(fixture('mnist_lenet.onnx')));
  try {
    expect(backend.name).toBe('cpu');
  } finally {
    await backend.dispose();
  }
});
