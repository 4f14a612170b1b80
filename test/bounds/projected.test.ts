/**
 * The projected matrix of thick-restart Lanczos (arrowhead + tridiagonal): inertia counts, the
 * largest eigenvalue by bisection and its eigenvector by inverse iteration, against the dense
 * Jacobi solver on random matrices of every shape Lanczos produces.
 */
import { ProjectedMatrix } from '../../src/bounds/projected.js';
import { symmetricEigen } from '../../src/bounds/spectral.js';
import { Rng } from '../../src/random.js';

function randomProjected(rng: Rng, kept: number, lanczos: number): ProjectedMatrix {
  const h = new ProjectedMatrix();
  const values = Array.from({ length: kept }, () => 5 + 5 * rng.uniform());
  const couplings = Array.from({ length: kept }, () => rng.uniform() - 0.5);
  h.restart(values, couplings);
  for (let t = 0; t < lanczos; t++) {
    h.alphas.push(10 * rng.uniform());
    if (t < lanczos - 1) h.betas.push(2 * rng.uniform());
  }
  return h;
}

function denseMatVec(n: number, a: Float64Array, x: Float64Array): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => x.reduce((s, v, j) => s + a[i * n + j] * v, 0));
}

describe.each([
  [0, 1],
  [0, 12],
  [3, 1],
  [5, 20],
  [1, 29],
])('%i kept Ritz values, %i Lanczos steps', (kept, lanczos) => {
  const rng = new Rng(17 + kept * 31 + lanczos);
  const h = randomProjected(rng, kept, lanczos);
  const n = h.size;
  const dense = h.dense();
  const { values } = symmetricEigen(n, dense);
  const sorted = Array.from(values).sort((a, b) => a - b);

  test('negativeCount counts the eigenvalues below a shift', () => {
    for (let i = 0; i < n; i++) {
      const below = i === 0 ? sorted[0] - 1 : 0.5 * (sorted[i - 1] + sorted[i]);
      if (i > 0 && sorted[i] - sorted[i - 1] < 1e-9) continue; // a double eigenvalue has no shift between
      expect(h.negativeCount(below)).toBe(i);
    }
    expect(h.negativeCount(sorted[n - 1] + 1)).toBe(n);
  });

  test('largestEigenvalue agrees with Jacobi, also from a lower hint', () => {
    const top = sorted[n - 1];
    expect(Math.abs(h.largestEigenvalue() - top)).toBeLessThanOrEqual(1e-12 * Math.abs(top));
    expect(Math.abs(h.largestEigenvalue(top * 0.9) - top)).toBeLessThanOrEqual(1e-12 * Math.abs(top));
  });

  test('topEigenvector is a unit eigenvector of the largest eigenvalue', () => {
    const theta = h.largestEigenvalue();
    const y = h.topEigenvector(theta);
    expect(Math.hypot(...y)).toBeCloseTo(1, 12);
    const hy = denseMatVec(n, dense, y);
    const residual = Math.hypot(...hy.map((v, i) => v - theta * y[i]));
    expect(residual).toBeLessThan(1e-9 * Math.abs(theta));
  });
});

test('a zero matrix has largest eigenvalue 0', () => {
  const h = new ProjectedMatrix();
  h.alphas.push(0);
  expect(h.largestEigenvalue()).toBe(0);
});
