/**
 * Cases for the lock-step solver tests (lanczos-block, kw-block): small layers of every kind with
 * B runs, each with its own input mask and slopes (densities from sparse to full, optionally a run
 * whose mask is all zero), the exact λ_max of each run from the dense matrix, and the single-run
 * operator of run b.
 */
import type { Backend, GramOperator } from '../../src/backend/backend.js';
import { type AffineLayer, size } from '../../src/model/ir.js';
import { denseOf, spectralNorm } from '../helpers/dense.js';
import { avgpool, conv, dense } from '../helpers/random-networks.js';
import { random, randomMask } from '../backend/webgpu-reference.js';

export const lockstepLayers: [string, AffineLayer][] = [
  ['conv padded, strided', conv([3, 8, 8], 4, [3, 3], { strides: [2, 1], pads: [1, 1, 1, 1] }) as AffineLayer],
  ['conv grouped, dilated', conv([4, 7, 7], 4, [2, 2], { group: 2, dilations: [2, 1] }) as AffineLayer],
  ['dense 40→30', dense(40, 30) as AffineLayer],
  ['dense 200→120 (onnxruntime path)', dense(200, 120) as AffineLayer],
  ['avgpool', avgpool([2, 8, 8], [3, 3], [2, 2], [1, 1, 1, 1], true) as AffineLayer],
];

export interface RunCase {
  layer: AffineLayer;
  count: number;
  n: number;
  m: number;
  /** count·n, 0/1 */
  masks: Float32Array;
  /** count·m, Λ² */
  slopeSquared: Float32Array;
  /** λ_max of each run's D Aᵀ Λ² A D, from the dense matrix. */
  exact: number[];
  /** The single-run Gram operator of run b (the caller disposes it). */
  single(backend: Backend, b: number): Promise<GramOperator>;
}

/**
 * B runs on `layer`: run b's mask has density 0.35 … 1 and its slopes lie in [0, 1] with some
 * zeros; `zeroRun` gets an all-zero mask (a zero operator).
 */
export function runCase(layer: AffineLayer, count: number, seed: number, zeroRun: number | null = null): RunCase {
  const [n, m] = [size(layer.inputShape), size(layer.outputShape)];
  const rand = random(seed);
  const masks = new Float32Array(count * n);
  const slopes = new Float32Array(count * m);
  for (let b = 0; b < count; b++) {
    if (b !== zeroRun) masks.set(randomMask(n, rand, 0.35 + (0.65 * (b + 1)) / count), b * n);
    for (let i = 0; i < m; i++) slopes[b * m + i] = Math.max(0, rand() * 0.7 + 0.5);
  }
  const a = denseOf(layer);
  const run = <T extends Float32Array>(data: T, per: number, b: number) => data.subarray(b * per, (b + 1) * per) as T;
  const exact = Array.from({ length: count }, (_, b) => spectralNorm(a, run(slopes, m, b), run(masks, n, b)) ** 2);
  const slopeSquared = slopes.map((s) => s * s);
  return {
    layer,
    count,
    n,
    m,
    masks,
    slopeSquared,
    exact,
    single: (backend, b) => backend.gramOperator(layer, run(masks, n, b), run(slopeSquared, m, b)),
  };
}

export const relativeDifference = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-300);
