/**
 * The bound math against dense matrices: Lanczos vs a Jacobi eigen-solver, the max-pool overlap vs
 * brute force, and the whole local and global bounds (Algorithm 1) vs a dense re-implementation,
 * on a small network holding every layer kind.
 */
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { certify } from '../../src/bounds/certify.js';
import { PAPER_REPRODUCTION } from '../../src/bounds/defaults.js';
import { maxPoolOverlap } from '../../src/bounds/layer-bounds.js';
import { largestEigenvalue, tridiagonalEigen } from '../../src/bounds/spectral.js';
import { cpuVectors } from '../../src/backend/cpu/vectors.js';
import type { MaxPoolLayer } from '../../src/model/ir.js';
import { forwardDense, globalBoundDense, largestSymmetricEigenvalue, localBoundDense } from '../helpers/dense.js';
import { maxPoolMembership } from '../helpers/layer-definitions.js';
import { everyKindNetwork, maxpool, randomWeights } from '../helpers/random-networks.js';

const relErr = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);

test('tridiagonalEigen reproduces a known spectrum', () => {
  // tridiag(−1, 2, −1) of size n has eigenvalues 2 − 2cos(kπ/(n+1)).
  const n = 12;
  const { values, vectors } = tridiagonalEigen(new Array(n).fill(2), new Array(n - 1).fill(-1));
  const expected = Array.from({ length: n }, (_, k) => 2 - 2 * Math.cos(((k + 1) * Math.PI) / (n + 1))).sort((a, b) => a - b);
  Array.from(values).sort((a, b) => a - b).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 10));
  // Each column is a unit eigenvector: T v = λ v.
  const k = 3;
  const v = vectors[k];
  for (let i = 0; i < n; i++) {
    const tv = 2 * v[i] - (i > 0 ? v[i - 1] : 0) - (i < n - 1 ? v[i + 1] : 0);
    expect(tv).toBeCloseTo(values[k] * v[i], 10);
  }
});

test('Lanczos finds the largest eigenvalue of a clustered spectrum to the tolerance', async () => {
  const n = 60;
  // G = Q diag(s) Qᵀ with a cluster at the top (like a convolution's spectrum).
  const s = Array.from({ length: n }, (_, i) => (i < 5 ? 10 - i * 1e-3 : 9 * Math.random()));
  const q = Array.from({ length: n }, () => randomWeights(n, 1));
  // Orthonormalise q (Gram–Schmidt) to get Q.
  const Q: Float64Array[] = [];
  for (const col of q) {
    const v = Float64Array.from(col);
    for (const b of Q) {
      const d = v.reduce((acc, x, i) => acc + x * b[i], 0);
      for (let i = 0; i < n; i++) v[i] -= d * b[i];
    }
    const norm = Math.hypot(...v);
    Q.push(v.map((x) => x / norm));
  }
  const G = new Float64Array(n * n);
  for (let k = 0; k < n; k++) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) G[i * n + j] += s[k] * Q[k][i] * Q[k][j];
  const op = {
    dim: n,
    async apply(x: Float64Array, out: Float64Array) {
      for (let i = 0; i < n; i++) {
        let acc = 0;
        for (let j = 0; j < n; j++) acc += G[i * n + j] * x[j];
        out[i] = acc;
      }
    },
    dispose() {},
  };
  const result = await largestEigenvalue(op as never, cpuVectors, { tolerance: 1e-10, maxIterations: 1000, basisSize: 15 });
  expect(result.converged).toBe(true);
  expect(relErr(result.eigenvalue, 10)).toBeLessThan(1e-8);
  expect(relErr(result.eigenvalue, largestSymmetricEigenvalue(n, G))).toBeLessThan(1e-8);
  expect(result.eigenvalue).toBeLessThanOrEqual(10 * (1 + 1e-12)); // a Ritz value never exceeds λ_max
});

test.each([
  [[2, 2], [2, 2], [0, 0, 0, 0], [1, 1], 1],
  [[3, 3], [2, 2], [0, 0, 0, 0], [1, 1], 4],
  [[3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 9],
  [[2, 3], [1, 2], [1, 1, 0, 1], [2, 1], 4],
])('max pool overlap n_max: kernel %j stride %j pads %j dilation %j', (kernel, strides, pads, dilations, expected) => {
  const layer = maxpool([1, 11, 11], kernel as [number, number], strides as [number, number], pads as [number, number, number, number], dilations as [number, number]) as MaxPoolLayer;
  expect(maxPoolOverlap(layer)).toBe(maxPoolMembership(layer));
  expect(maxPoolOverlap(layer)).toBe(expected);
});

describe('bounds of a network with every layer kind vs dense matrices', () => {
  const network = everyKindNetwork();
  const x0 = randomWeights(2 * 9 * 9, 1);
  const backend = createCpuBackend();
  afterAll(() => backend.dispose());

  test('forward pass (logits) matches', async () => {
    const result = await certify(network, x0, backend, { ...PAPER_REPRODUCTION, eps: [] });
    const expected = forwardDense(network, x0);
    result.logits.forEach((v, i) => expect(relErr(v, expected[i])).toBeLessThan(1e-4));
  });

  test.each([1e-3, 0.05, 0.3, 3])('local bound at eps %p, per layer, and the global bound', async (eps) => {
    const result = await certify(network, x0, backend, { ...PAPER_REPRODUCTION, eps: [eps], global: true, tolerance: 1e-10 });
    const reference = localBoundDense(network, x0, eps);
    const local = result.local[0];
    local.layers.forEach((l, i) => {
      if (reference.layers[i] === 0) expect(l.bound).toBeLessThan(1e-6);
      else expect(relErr(l.bound, reference.layers[i])).toBeLessThan(1e-4);
    });
    expect(relErr(local.bound, reference.bound)).toBeLessThan(1e-3);
    expect(relErr(result.global!.bound, globalBoundDense(network))).toBeLessThan(1e-4);
    expect(local.bound).toBeLessThanOrEqual(result.global!.bound * (1 + 1e-6));
    // Some slopes must be fractional at the larger radii, or the test would not test Theorem 1.
    if (eps >= 0.05) expect(local.layers.some((l) => (l.lambdaPartial ?? 0) > 0)).toBe(true);
  });
});
