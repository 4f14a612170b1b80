/**
 * The rounding bound behind certified margins (bounds/rounding.ts) and the float64 forward pass it
 * uses (model/forward64.ts): forward64 agrees with the backend's pass to float32 noise; applied to
 * the backend's float32 pass (unit roundoff 2⁻²⁴), the bound contains the float32 − float64
 * difference on random networks of every layer kind; certifyMargins resolves a margin of 2⁻²²
 * that float32 cannot, and refuses an exact tie.
 */
import { createBackend } from '../../src/backend/select.js';
import type { Backend } from '../../src/backend/backend.js';
import { nominalPass } from '../../src/bounds/layer-bounds.js';
import { certifyMargins, FLOAT32_ROUNDOFF, gapRoundingErrors, roundingErrorBound } from '../../src/bounds/rounding.js';
import { globalBoundDense } from '../helpers/dense.js';
import { isAffine } from '../../src/model/ir.js';
import { denseOf, spectralNorm } from '../helpers/dense.js';
import { maxPoolOverlap } from '../../src/bounds/layer-bounds.js';
import { forward64 } from '../../src/model/forward64.js';
import { everyLayerNetwork, randomInput } from './small-networks.js';
import { everyKindNetwork } from '../helpers/random-networks.js';
import { torchMlp } from '../helpers/planar-networks.js';

let backend: Backend;
beforeAll(async () => {
  backend = await createBackend('cpu');
});
afterAll(async () => backend.dispose());

test.each([1, 2, 3, 4])('every-layer networks, seed %i: forward64 matches the backend; |float32 − float64| ≤ the float32 bound', async (seed) => {
  for (const network of [everyLayerNetwork(seed), everyKindNetwork()]) {
    const x = randomInput(network.inputShape.reduce((a, b) => a * b, 1), seed);
    const nominal = await nominalPass(network, backend, x);
    const exact = forward64(network, x);
    for (const [l, input] of nominal.inputs.entries()) {
      for (let i = 0; i < input.length; i++) expect(Math.abs(input[i] - exact.inputs[l][i])).toBeLessThan(1e-4 * (1 + Math.abs(exact.inputs[l][i])));
    }
    const bound = (await roundingErrorBound(network, backend, nominal, FLOAT32_ROUNDOFF)).logits;
    let scale = 0;
    for (let i = 0; i < bound.length; i++) {
      expect(Math.abs(nominal.logits[i] - exact.logits[i])).toBeLessThanOrEqual(bound[i]);
      scale = Math.max(scale, Math.abs(exact.logits[i]));
    }
    // Not vacuous on these shallow networks.
    expect(Math.max(...bound)).toBeGreaterThan(0);
    expect(Math.max(...bound)).toBeLessThan(1e-2 * scale);
  }
});

test.each([5, 6, 7])('every-layer network, seed %i: the gap errors through the layers\' norms hold for a float32 pass', async (seed) => {
  const network = everyLayerNetwork(seed);
  const x = randomInput(2 * 9 * 9, seed);
  const nominal = await nominalPass(network, backend, x);
  const exact = forward64(network, x);
  // Each layer's exact global Lipschitz bound from its dense matrix.
  const norms = network.layers.map((layer) => (isAffine(layer) ? spectralNorm(denseOf(layer)) : layer.kind === 'maxpool' ? Math.sqrt(maxPoolOverlap(layer)) : 1));
  expect(norms.reduce((a, b) => a * b, 1)).toBeCloseTo(globalBoundDense(network), 6);
  const bound = await roundingErrorBound(network, backend, nominal, FLOAT32_ROUNDOFF);
  const onlyThroughLayers = gapRoundingErrors(network, { logits: bound.logits.map(() => Infinity), local: bound.local }, 0, norms);
  for (let j = 1; j < exact.logits.length; j++) {
    const difference = Math.abs(nominal.logits[0] - nominal.logits[j] - (exact.logits[0] - exact.logits[j]));
    expect(difference).toBeLessThanOrEqual(onlyThroughLayers[j]);
    expect(onlyThroughLayers[j]).toBeLessThan(1e-2);
  }
});

test('a margin float32 cannot resolve is resolved by the float64 pass', async () => {
  // The output rows are equal but for a bias 2⁻²² lower in row 1: below float32's rounding of
  // logits near 1, far above float64's.
  const network = torchMlp([2, 8, 2], 5);
  const last = network.layers[1] as { weight: Float32Array; bias: Float32Array };
  last.weight.set(last.weight.subarray(0, 8), 8);
  last.bias[1] = last.bias[0] - 2 ** -22;
  const x = Float32Array.from([0.3, 0.4]);
  const float32Bound = (await roundingErrorBound(network, backend, await nominalPass(network, backend, x), FLOAT32_ROUNDOFF)).logits;
  expect(float32Bound[0] + float32Bound[1]).toBeGreaterThan(2 ** -22);
  const margins = await certifyMargins(network, backend, x, 0);
  expect(margins.gaps[1]).toBeGreaterThan(0);
  expect(margins.gaps[1]).toBeLessThanOrEqual(2 ** -22);
  expect(margins.gapError[1]).toBeLessThan(1e-12);
});

test('an exact tie is never resolved', async () => {
  const network = torchMlp([2, 8, 2], 6);
  const last = network.layers[1] as { weight: Float32Array; bias: Float32Array };
  last.weight.set(last.weight.subarray(0, 8), 8);
  last.bias[1] = last.bias[0];
  const margins = await certifyMargins(network, backend, Float32Array.from([0.3, 0.4]), 0);
  expect(margins.gaps[1]).toBeLessThanOrEqual(0);
});
