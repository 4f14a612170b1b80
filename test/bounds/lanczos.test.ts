/**
 * Thick-restart Lanczos (bounds/spectral.ts) at its edges, against dense eigenvalues: every basis
 * size down to the minimum, both reorthogonalisation modes, tiny dimensions, the zero operator, a
 * warm start orthogonal to the operator's range, and the rule that a Ritz value never exceeds λ_max.
 */
import { cpuVectors } from '../../src/backend/cpu/vectors.js';
import { largestEigenvalue, symmetricEigen } from '../../src/bounds/spectral.js';
import { Rng } from '../../src/random.js';

/** G = B Bᵀ with a spectrum clustered at the top (like a convolution's), as a Gram operator. */
function clusteredOperator(n: number, seed: number, rank = n) {
  const rng = new Rng(seed);
  const b = Float64Array.from({ length: n * rank }, () => rng.uniform() * 2 - 1);
  // Scale columns so the top singular values crowd together.
  for (let j = 0; j < rank; j++) for (let i = 0; i < n; i++) b[i * rank + j] *= j < 4 ? 3 - 0.01 * j : 1;
  const g = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) {
    let s = 0;
    for (let j = 0; j < rank; j++) s += b[i * rank + j] * b[k * rank + j];
    g[i * n + k] = s;
  }
  const op = {
    dim: n,
    applications: 0,
    async apply(x: Float64Array, out: Float64Array) {
      op.applications++;
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += g[i * n + k] * x[k];
        out[i] = s;
      }
    },
    dispose() {},
  };
  const top = Math.max(...symmetricEigen(n, g).values);
  return { op, g, top };
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

describe.each([
  [40, 3, true],
  [40, 5, true],
  [40, 8, false],
  [40, 30, true],
  [90, 12, false],
])('n = %i, basis %i, full reorthogonalisation %p', (n, basisSize, fullReorthogonalisation) => {
  test('converges to λ_max from below within the tolerance', async () => {
    const { op, top } = clusteredOperator(n, n + basisSize);
    const result = await largestEigenvalue(op as never, cpuVectors, { tolerance: 1e-9, maxIterations: 5000, basisSize, fullReorthogonalisation });
    expect(result.converged).toBe(true);
    expect(rel(result.eigenvalue, top)).toBeLessThan(1e-7);
    expect(result.eigenvalue).toBeLessThanOrEqual(top * (1 + 1e-12));
    expect(result.iterations).toBe(op.applications);
    // The returned Ritz vector is a unit vector with the reported residual.
    const y = result.vector as Float64Array;
    expect(Math.hypot(...y)).toBeCloseTo(1, 10);
  });
});

test.each([1, 2, 3])('dimension %i: exact after at most n steps', async (n) => {
  const { op, top } = clusteredOperator(n, 7 * n);
  const result = await largestEigenvalue(op as never, cpuVectors, { tolerance: 1e-12, maxIterations: 100 });
  expect(rel(result.eigenvalue, top)).toBeLessThan(1e-12);
  expect(result.iterations).toBeLessThanOrEqual(n + 1);
});

test('stopped on its residual before its 5-step window: a finite relative change is reported', async () => {
  // One eigenvalue far above the rest: the residual test passes within a step or two. (The API's
  // overflow check refused a run whose last dense layer stopped this way: relativeChange was ∞.)
  const dim = 40;
  const diagonal = Float64Array.from({ length: dim }, (_, i) => (i === 0 ? 1e8 : 1 - i / dim));
  const op = { dim, async apply(x: Float64Array, out: Float64Array) { for (let i = 0; i < dim; i++) out[i] = diagonal[i] * x[i]; }, dispose() {} };
  const result = await largestEigenvalue(op as never, cpuVectors, { tolerance: 1e-6, maxIterations: 100 });
  expect(rel(result.eigenvalue, 1e8)).toBeLessThan(1e-6);
  expect(result.iterations).toBeLessThan(5);
  expect(result.converged).toBe(true);
  expect(Number.isFinite(result.relativeChange)).toBe(true);
  expect(result.relativeChange).toBeGreaterThanOrEqual(0);
});

test('the zero operator: eigenvalue 0, converged, one application', async () => {
  const op = { dim: 20, async apply(_x: Float64Array, out: Float64Array) { out.fill(0); }, dispose() {} };
  const result = await largestEigenvalue(op as never, cpuVectors, { tolerance: 1e-6, maxIterations: 100 });
  expect(result.eigenvalue).toBe(0);
  expect(result.converged).toBe(true);
  expect(result.iterations).toBe(1);
});

test('a warm start orthogonal to the range: its random share finds the top', async () => {
  // G = e_0 e_0ᵀ·5 + e_1 e_1ᵀ·2 on R^6: a start on e_5 lies in its null space.
  const op = {
    dim: 6,
    async apply(x: Float64Array, out: Float64Array) {
      out.fill(0);
      out[0] = 5 * x[0];
      out[1] = 2 * x[1];
    },
    dispose() {},
  };
  const start = new Float64Array(6);
  start[5] = 1;
  const result = await largestEigenvalue(op as never, cpuVectors, { tolerance: 1e-10, maxIterations: 100, start });
  expect(result.eigenvalue).toBeCloseTo(5, 10);
  expect(Math.abs((result.vector as Float64Array)[0])).toBeCloseTo(1, 8);
});

test('a warm start at the top eigenvector stops within a few steps', async () => {
  const { op, top } = clusteredOperator(60, 3);
  const first = await largestEigenvalue(op as never, cpuVectors, { tolerance: 1e-10, maxIterations: 1000 });
  op.applications = 0;
  const again = await largestEigenvalue(op as never, cpuVectors, { tolerance: 1e-10, maxIterations: 1000, start: first.vector });
  expect(rel(again.eigenvalue, top)).toBeLessThan(1e-9);
  expect(again.iterations).toBeLessThan(first.iterations);
});

test('a warm start at a lower eigenvector (an invariant subspace) still finds the top', async () => {
  // G = diag(1, 81, 4, ...): the warm start e_0 is an eigenvector, so Lanczos from it alone stays
  // at 1; the random share mixed into every warm start reaches 81 (docs/soundness.md §1).
  const n = 8;
  const diagonal = [1, 81, 4, 9, 16, 0, 2, 3];
  const op = {
    dim: n,
    async apply(x: Float64Array, out: Float64Array) {
      for (let i = 0; i < n; i++) out[i] = diagonal[i] * x[i];
    },
    dispose() {},
  };
  const start = new Float64Array(n);
  start[0] = 1;
  const result = await largestEigenvalue(op as never, cpuVectors, { tolerance: 1e-10, maxIterations: 100, start });
  expect(result.eigenvalue).toBeCloseTo(81, 8);
});

test('warm start or not, the same eigenvalue to the tolerance (clustered spectra, many seeds)', async () => {
  for (let seed = 1; seed <= 6; seed++) {
    const { op, top } = clusteredOperator(50, 100 + seed);
    // Warm start: a unit vector close to the second eigenvector's neighbourhood (any fixed vector).
    const start = Float64Array.from({ length: 50 }, (_, i) => (i % 7 === seed % 7 ? 1 : 0));
    const warm = await largestEigenvalue(op as never, cpuVectors, { tolerance: 1e-9, maxIterations: 2000, start, seed });
    expect(rel(warm.eigenvalue, top)).toBeLessThan(1e-7);
  }
});
