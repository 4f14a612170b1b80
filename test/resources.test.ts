/**
 * Resource limits decided from shapes, before work: the 272-byte models with one 1×1 convolution on
 * a declared [1,1,8000,8000] or [1,1,100000,100000] input import without allocating their
 * activations and are refused by checkResources with RESOURCE_LIMIT and the estimate; a tensor
 * declaring a huge shape over a few bytes is refused before allocation; the fixtures pass.
 */
import os from 'node:os';
import { LipcertError } from '../src/errors.js';
import { floatTensor, modelBytes, node, valueInfo } from '../src/model/onnx-builder.js';
import { importOnnx, importOnnxFile } from '../src/model/onnx-import.js';
import { checkResources, defaultResourceLimits, estimatePeakMemory, MOST_DEMANDING, PROCESS_BYTES, resourceLimitsFromEnv } from '../src/resources.js';
import { fixture } from './helpers/fixtures.js';

const GiB = 2 ** 30;

/** One 1×1 convolution on a declared [1,1,side,side] input: a few hundred bytes of ONNX. */
function oneConvolution(side: number, weightDims = [1, 1, 1, 1], weightValues = [1]): Uint8Array {
  return modelBytes({
    nodes: [node('Conv', ['x', 'w'], ['y'])],
    initializers: [floatTensor('w', weightDims, weightValues)],
    inputs: [valueInfo('x', [1, 1, side, side])],
    outputs: [valueInfo('y', [1, 1, side, side])],
  });
}

function refusal(f: () => unknown): LipcertError {
  try {
    f();
  } catch (error) {
    if (error instanceof LipcertError) return error;
    throw error;
  }
  throw new Error('expected a LipcertError');
}

describe('resource limits', () => {
  test('one convolution on a declared 8000² or 100000² input: imported cheaply, refused with RESOURCE_LIMIT', () => {
    const limits = { maxMemoryBytes: 1.5 * GiB };
    for (const side of [8000, 100000]) {
      const bytes = oneConvolution(side);
      expect(bytes.length).toBeLessThan(300);
      const rss = process.memoryUsage().rss;
      const network = importOnnx(bytes, `conv${side}`);
      expect(process.memoryUsage().rss - rss).toBeLessThan(64 * 2 ** 20);
      const error = refusal(() => checkResources(network, limits));
      expect(error.code).toBe('RESOURCE_LIMIT');
      expect(error.message).toMatch(
        new RegExp(`^analysing this model would take about [\\d.]+ GiB of memory \\(largest layer input ${side * side} values\\); the limit is 1\\.5 GiB \\(LIPCERT_MAX_MEMORY_MB\\)$`),
      );
      // Even the cheapest analysis (estimates, no certificates) is far over: activations alone.
      expect(estimatePeakMemory(network, { certificate: 'estimate', delta: 1e-3 }).bytes).toBeGreaterThan(4 * side * side * 8);
    }
    // The machine's default limit refuses the 100000² one too (it needs terabytes).
    expect(() => checkResources(importOnnx(oneConvolution(100000)), defaultResourceLimits())).toThrow(/would take about/);
  });

  test('a tensor declaring a huge shape over a few bytes is refused before allocation', () => {
    const bytes = oneConvolution(28, [100000, 100000, 1, 1], [1, 2, 3]);
    const rss = process.memoryUsage().rss;
    const error = refusal(() => importOnnx(bytes));
    expect(error.code).toBe('UNSUPPORTED_MODEL');
    expect(error.message).toBe("tensor 'w' holds 12 bytes where its shape [100000,100000,1,1] needs 40000000000");
    expect(process.memoryUsage().rss - rss).toBeLessThan(64 * 2 ** 20);
    const negative = refusal(() => importOnnx(oneConvolution(28, [-36, 1, 1, 1], [1])));
    expect(negative.message).toMatch(/tensor 'w' has an invalid shape \[-36,1,1,1\]/);
  });

  test('the fixtures pass the default limit; the estimate grows with certificates and with the input', () => {
    for (const name of ['mnist_lenet.onnx', 'cifar10_net.onnx']) {
      const network = importOnnxFile(fixture(name));
      const estimate = checkResources(network, defaultResourceLimits(8 * GiB));
      expect(estimate.bytes).toBeGreaterThan(PROCESS_BYTES);
      expect(estimate.bytes).toBeLessThan(GiB);
      expect(estimatePeakMemory(network, { certificate: 'estimate', delta: 1e-3 }).bytes).toBeLessThan(estimate.bytes);
    }
    const small = estimatePeakMemory(importOnnx(oneConvolution(100)), MOST_DEMANDING).bytes;
    const large = estimatePeakMemory(importOnnx(oneConvolution(1000)), MOST_DEMANDING).bytes;
    expect(large).toBeGreaterThan(small);
  });

  test('LIPCERT_MAX_MEMORY_MB, or a fraction of the machine', () => {
    expect(resourceLimitsFromEnv({ LIPCERT_MAX_MEMORY_MB: '1536' }).maxMemoryBytes).toBe(1.5 * GiB);
    expect(resourceLimitsFromEnv({}, 16 * GiB).maxMemoryBytes).toBe(defaultResourceLimits(16 * GiB).maxMemoryBytes);
    expect(defaultResourceLimits().maxMemoryBytes).toBeLessThan(os.totalmem());
    for (const bad of ['0', '-5', 'lots']) {
      expect(refusal(() => resourceLimitsFromEnv({ LIPCERT_MAX_MEMORY_MB: bad })).message).toMatch(/LIPCERT_MAX_MEMORY_MB=.* is not a positive number of MiB/);
    }
  });
});
