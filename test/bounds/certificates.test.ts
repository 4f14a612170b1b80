/**
 * Certified spectral norms against dense matrices: every certificate is at or above the exact
 * ||Λ A D|| (Jacobi on the dense Gram matrix), the Collatz–Wielandt bound is below sqrt(||M||_1·||M||_∞),
 * and the Gram-iteration and KW certificates are close to the exact norm.
 */
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { collatzWielandtNorm, CPU_OPERATOR_UNIT, denseGramNorm, gramIterationBound, kwEpsilon, kwLargestEigenvalue, kwSteps, parseCertificate, rowGram } from '../../src/bounds/certificates.js';
import { SpectralSolver } from '../../src/bounds/layer-bounds.js';
import { importOnnxFile } from '../../src/model/onnx-import.js';
import { fixture } from '../helpers/fixtures.js';
import type { AffineLayer, Network } from '../../src/model/ir.js';
import { denseOf, largestSymmetricEigenvalue, spectralNorm } from '../helpers/dense.js';
import { conv, dense, randomWeights } from '../helpers/random-networks.js';

const backend = createCpuBackend();
afterAll(() => backend.dispose());

/** A 0/1 mask and slopes in [0, 1] with some zeros, from a seeded stream. */
function maskAndSlopes(n: number, m: number) {
  const u = randomWeights(n + m, 1);
  const mask = Float32Array.from({ length: n }, (_, i) => (u[i] > -0.4 ? 1 : 0));
  const slopes = Float32Array.from({ length: m }, (_, i) => Math.max(0, u[n + i]));
  return { mask, slopes, slopeSquared: slopes.map((s) => s * s) };
}

/** sqrt(||M||_1·||M||_∞) of M = Λ A D from the dense matrix. */
function sqrtL1Linf(layer: AffineLayer, slopes: Float32Array, mask: Float32Array): number {
  const a = denseOf(layer);
  const rowSums = new Float64Array(a.rows);
  const colSums = new Float64Array(a.cols);
  for (let r = 0; r < a.rows; r++)
    for (let c = 0; c < a.cols; c++) {
      const v = Math.abs(a.data[r * a.cols + c] * slopes[r] * mask[c]);
      rowSums[r] += v;
      colSums[c] += v;
    }
  return Math.sqrt(Math.max(...rowSums) * Math.max(...colSums));
}

const layers: [string, AffineLayer][] = [
  ['conv 3×3 stride 2, padded', conv([3, 8, 8], 5, [3, 3], { strides: [2, 2], pads: [1, 1, 1, 1] }) as AffineLayer],
  ['grouped dilated conv', conv([4, 9, 9], 4, [2, 2], { group: 2, dilations: [2, 1] }) as AffineLayer],
  ['dense 40→30', dense(40, 30) as AffineLayer],
  ['dense 12→50', dense(12, 50) as AffineLayer],
];

describe.each(layers)('%s', (_name, layer) => {
  const n = layer.inputShape.reduce((a, b) => a * b, 1);
  const m = layer.outputShape.reduce((a, b) => a * b, 1);
  const { mask, slopes, slopeSquared } = maskAndSlopes(n, m);
  const exact = spectralNorm(denseOf(layer), slopes, mask);

  test('Collatz–Wielandt: above the exact norm, below sqrt(||M||_1·||M||_∞)', async () => {
    const cw = await collatzWielandtNorm(backend, layer, mask, slopeSquared);
    expect(cw).toBeGreaterThanOrEqual(exact * (1 - 1e-6));
    expect(cw).toBeLessThanOrEqual(sqrtL1Linf(layer, slopes, mask) * (1 + 1e-6));
  });

  test('KW Lanczos: above the exact norm and within its inflation', async () => {
    const op = await backend.gramOperator(layer, mask, slopeSquared);
    const kw = await kwLargestEigenvalue(op, backend.vectors, { delta: 1e-3, seed: 11, support: mask });
    expect(Math.sqrt(kw.bound)).toBeGreaterThanOrEqual(exact * (1 - 1e-6));
    expect(Math.sqrt(kw.bound)).toBeLessThanOrEqual(exact * Math.sqrt(1 / (1 - kw.epsilon)) * (1 + 1e-5));
  });

  test('KW Lanczos on the support only (gather and scatter) gives the full-length run\'s numbers to the bit', async () => {
    expect(mask.some((v) => v === 0)).toBe(true);
    const op = await backend.gramOperator(layer, mask, slopeSquared);
    const { gather: _gather, scatter: _scatter, ...withoutGather } = backend.vectors;
    const compressed = await kwLargestEigenvalue(op, backend.vectors, { delta: 1e-3, seed: 11, support: mask });
    const full = await kwLargestEigenvalue(op, withoutGather, { delta: 1e-3, seed: 11, support: mask });
    expect(compressed).toEqual(full);
    expect(compressed.steps).toBeGreaterThan(1);
  });

  test('KW Lanczos\'s top Ritz vector (topVector): unit length, zero off the support, its Rayleigh quotient the Ritz value; the bound unchanged; as a warm start, the estimate converges as soon or sooner, to the same norm', async () => {
    const op = await backend.gramOperator(layer, mask, slopeSquared);
    const vectors = backend.vectors;
    for (const gathering of [true, false]) {
      const { gather: _gather, scatter: _scatter, ...withoutGather } = vectors;
      const ops = gathering ? vectors : withoutGather;
      for (const partial of [undefined, { unit: CPU_OPERATOR_UNIT }]) {
        const plain = await kwLargestEigenvalue(op, ops, { delta: 1e-3, seed: 11, support: mask, partial });
        const kw = await kwLargestEigenvalue(op, ops, { delta: 1e-3, seed: 11, support: mask, partial, topVector: true });
        expect(plain.vector).toBeUndefined();
        const { vector, ...numbers } = kw;
        expect(numbers).toEqual({ ...plain, vector: undefined });
        const y = await vectors.download(vector!);
        expect(y.length).toBe(n);
        expect(y.every((v, i) => mask[i] !== 0 || v === 0)).toBe(true);
        const image = vectors.alloc(n);
        await op.apply(vector!, image);
        const rho = await vectors.dot(vector!, image);
        vectors.free(image);
        expect(Math.abs((await vectors.dot(vector!, vector!)) - 1)).toBeLessThan(1e-6);
        expect(Math.abs(rho - kw.ritz)).toBeLessThan(1e-5 * kw.ritz);
        vectors.free(vector!);
      }
    }
    // Seeded with it, SpectralSolver's estimate of the same norm converges as soon or sooner (these
    // layers are small; on CIFAR-10's, below, sooner), to the same value.
    const settings = { tolerance: 1e-8, maxIterations: 300 };
    const cold = new SpectralSolver(backend, settings);
    const seeded = new SpectralSolver(backend, settings);
    const kw = await kwLargestEigenvalue(op, vectors, { delta: 1e-3, seed: 11, support: mask, topVector: true });
    seeded.seed('k', kw.vector!);
    const fromCold = await cold.norm('k', 0, layer, mask, slopeSquared);
    const fromSeed = await seeded.norm('k', 0, layer, mask, slopeSquared);
    expect(fromSeed.iterations).toBeLessThanOrEqual(fromCold.iterations);
    expect(Math.abs(fromSeed.value - fromCold.value)).toBeLessThanOrEqual(1e-6 * fromCold.value);
    expect(fromSeed.value).toBeCloseTo(exact, 5);
    cold.dispose();
    seeded.dispose();
  });

  test('KW Lanczos with partial reorthogonalisation: the fully reorthogonalised run\'s bound, above the exact norm', async () => {
    const op = await backend.gramOperator(layer, mask, slopeSquared);
    const full = await kwLargestEigenvalue(op, backend.vectors, { delta: 1e-3, seed: 11, support: mask });
    const partial = await kwLargestEigenvalue(op, backend.vectors, { delta: 1e-3, seed: 11, support: mask, partial: { unit: CPU_OPERATOR_UNIT } });
    // Rounding-level differences (the float32 operator): far inside KW's inflation of 0.2–0.4%.
    expect(Math.abs(partial.bound - full.bound)).toBeLessThanOrEqual(1e-6 * full.bound);
    expect(Math.sqrt(partial.bound)).toBeGreaterThanOrEqual(exact * (1 - 1e-6));
    expect(partial.epsilon).toBe(full.epsilon);
  });

  if (layer.kind === 'dense') {
    test('Gram iteration: above the exact norm, within 1%', () => {
      const g = denseGramNorm(layer, mask, slopeSquared)!;
      expect(g).toBeGreaterThanOrEqual(exact * (1 - 1e-9));
      expect(g).toBeLessThanOrEqual(exact * 1.01);
    });
  }
});

test('rowGram: every entry is the plain row-by-row dot product, to the bit (blocks of four rows and the rest)', () => {
  for (const count of [1, 3, 4, 5, 9]) {
    const width = 37;
    const rows = randomWeights(count * width, count);
    const gram = rowGram(rows, count, width);
    for (let a = 0; a < count; a++)
      for (let b = 0; b < count; b++) {
        let s = 0;
        for (let i = 0; i < width; i++) s += rows[a * width + i] * rows[b * width + i];
        expect(Object.is(gram[a * count + b], s)).toBe(true);
      }
  }
});

test('gramIterationBound bounds λ_max of a PSD matrix from above and converges', () => {
  const n = 20;
  const b = randomWeights(n * n, 1);
  const g = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) g[i * n + j] += b[k * n + i] * b[k * n + j];
  const exact = largestSymmetricEigenvalue(n, g);
  const coarse = gramIterationBound(Float64Array.from(g), n, 2);
  const fine = gramIterationBound(Float64Array.from(g), n, 30);
  expect(coarse).toBeGreaterThanOrEqual(fine);
  expect(fine).toBeGreaterThanOrEqual(exact * (1 - 1e-12));
  expect(fine / exact - 1).toBeLessThan(1e-6);
});

/** Q diag(λ) Qᵀ for a random orthogonal Q (Gram–Schmidt on seeded Gaussian columns), float64. */
function withSpectrum(lambda: number[], seed: number): Float64Array {
  const n = lambda.length;
  const raw = randomWeights(n * n, seed);
  const q: Float64Array[] = [];
  for (let c = 0; c < n; c++) {
    const v = Float64Array.from({ length: n }, (_, i) => raw[c * n + i]);
    for (const u of q) {
      let d = 0;
      for (let i = 0; i < n; i++) d += u[i] * v[i];
      for (let i = 0; i < n; i++) v[i] -= d * u[i];
    }
    const norm = Math.hypot(...v);
    q.push(v.map((x) => x / norm));
  }
  const g = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) g[i * n + j] += q[k][i] * lambda[k] * q[k][j];
  return g;
}

/** Gram iteration with exactly `iterations` squares (no early stop): the reference for GRAM_SETTLED. */
function gramAllSquares(gram: Float64Array, n: number, iterations: number): number {
  let g = Float64Array.from(gram);
  let logScale = 0;
  let best = Infinity;
  for (let t = 0; ; t++) {
    const fro = Math.sqrt(g.reduce((a, x) => a + x * x, 0));
    logScale += Math.log(fro);
    best = Math.min(best, Math.exp(logScale / 2 ** t));
    if (t === iterations) return best;
    const c = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) for (let j = 0; j < n; j++) c[i * n + j] += (g[i * n + k] / fro) * (g[k * n + j] / fro);
    g = c;
    logScale *= 2;
  }
}

test('Gram iteration stops early only where the remaining squares could not lower the bound', () => {
  const n = 24;
  const tail = (top: number[]) => [...top, ...Array.from({ length: n - top.length }, (_, i) => 0.8 * 0.9 ** i)];
  // Separated, clustered (r_2 = 1 − 1e-3, 1 − 1e-6) and repeated top eigenvalues.
  for (const [k, top] of [[1], [1, 0.999], [1, 1 - 1e-6], [1, 1], [1, 1, 1]].entries()) {
    const g = withSpectrum(tail(top), 10 + k);
    const early = gramIterationBound(Float64Array.from(g), n, 12);
    const full = gramAllSquares(g, n, 12);
    expect(Math.abs(early / full - 1)).toBeLessThan(1e-13);
    expect(early).toBeGreaterThanOrEqual(1 - 1e-12);
  }
  // A repeated top eigenvalue keeps every square: the twelfth iterate is 2^(1/8192) above it, the
  // sixth (what a stop there would return) 2^(1/128).
  const repeated = gramIterationBound(withSpectrum(tail([1, 1]), 11), n, 12);
  expect(Math.abs(repeated / 2 ** (1 / 8192) - 1)).toBeLessThan(1e-10);
});

test('KW step count and inflation satisfy 1.648·sqrt(n)·exp(−(2k−1)·sqrt(ε)) ≤ δ', () => {
  for (const [n, delta] of [[784, 1e-3], [32768, 1e-6], [10, 0.1]]) {
    const k = kwSteps(n, delta, 4e-3);
    const eps = kwEpsilon(n, k, delta);
    expect(eps).toBeLessThanOrEqual(4e-3);
    expect(1.648 * Math.sqrt(n) * Math.exp(-(2 * k - 1) * Math.sqrt(eps))).toBeCloseTo(delta, 12);
  }
});

test('parseCertificate', () => {
  expect(parseCertificate('probabilistic')).toEqual({ mode: 'probabilistic', delta: 1e-3 });
  expect(parseCertificate('probabilistic:1e-6')).toEqual({ mode: 'probabilistic', delta: 1e-6 });
  expect(parseCertificate('deterministic')).toEqual({ mode: 'deterministic', delta: 0 });
  expect(parseCertificate('probabilistic:0')).toBeNull();
  expect(parseCertificate('deterministic:1')).toBeNull();
  expect(parseCertificate('guess')).toBeNull();
});

/** A CIFAR-10 fixture layer with a mask (about 60% of inputs) and slopes in [0, 1) drawn from `seed`. */
function cifarOperands(net: Network, index: number, seed: number) {
  const layer = net.layers[index] as AffineLayer;
  const n = layer.inputShape.reduce((a, b) => a * b, 1);
  const m = layer.outputShape.reduce((a, b) => a * b, 1);
  const u = randomWeights(n + m, seed);
  const mask = Float32Array.from({ length: n }, (_, i) => (u[i] > -0.2 ? 1 : 0));
  const slopeSquared = Float32Array.from({ length: m }, (_, i) => (u[n + i] > 0 ? u[n + i] ** 2 : 0));
  return { layer, mask, slopeSquared };
}

test('a KW certificate\'s top Ritz vector as the warm start of the same norm\'s estimate on CIFAR-10\'s convolutions (masks and slopes drawn at random): the cold estimate\'s value in fewer steps', async () => {
  const net = importOnnxFile(fixture('cifar10_net.onnx'));
  for (const index of [1, 4]) {
    const { layer, mask, slopeSquared } = cifarOperands(net, index, 2);
    const op = await backend.gramOperator(layer, mask, slopeSquared);
    const kw = await kwLargestEigenvalue(op, backend.vectors, { delta: 1e-3, seed: 5, support: mask, partial: { unit: CPU_OPERATOR_UNIT }, topVector: true });
    op.dispose();
    const settings = { tolerance: 1e-6, maxIterations: 300 };
    const cold = new SpectralSolver(backend, settings);
    const seeded = new SpectralSolver(backend, settings);
    seeded.seed('k', kw.vector!);
    const fromCold = await cold.norm('k', index, layer, mask, slopeSquared);
    const fromSeed = await seeded.norm('k', index, layer, mask, slopeSquared);
    expect(fromSeed.iterations).toBeLessThan(fromCold.iterations);
    expect(Math.abs(fromSeed.value - fromCold.value)).toBeLessThanOrEqual(1e-5 * fromCold.value);
    cold.dispose();
    seeded.dispose();
  }
});

test('partial reorthogonalisation on the CIFAR-10 fixture\'s convolutions (masks and slopes drawn at random): the full run\'s bound to 1e-7 with at most half the steps reorthogonalised; an estimate blind to the float32 operator\'s error is caught and run again in full', async () => {
  const net = importOnnxFile(fixture('cifar10_net.onnx'));
  let caught = 0;
  for (const index of [1, 3, 4]) {
    const { layer, mask, slopeSquared } = cifarOperands(net, index, 1);
    const op = await backend.gramOperator(layer, mask, slopeSquared);
    try {
      const full = await kwLargestEigenvalue(op, backend.vectors, { delta: 1e-3, seed: 5, support: mask });
      const partial = await kwLargestEigenvalue(op, backend.vectors, { delta: 1e-3, seed: 5, support: mask, partial: { unit: CPU_OPERATOR_UNIT } });
      expect(partial.fellBack).toBeUndefined();
      expect(Math.abs(partial.bound - full.bound)).toBeLessThanOrEqual(1e-7 * full.bound);
      expect(partial.steps).toBe(full.steps);
      expect(partial.reorthogonalised!).toBeLessThanOrEqual(full.steps / 2);
      // u = 1e-16 assumes double-precision operators: the basis may lose orthogonality unnoticed, and
      // then the tridiagonal's top Ritz value leaves its vector's Rayleigh quotient (measured: by 2e-3
      // to 0.95) and the run is made again in full. Either way the bound is the full run's.
      const blind = await kwLargestEigenvalue(op, backend.vectors, { delta: 1e-3, seed: 5, support: mask, partial: { unit: 1e-16 } });
      if (blind.fellBack) {
        caught++;
        expect(blind.bound).toBe(full.bound);
      } else {
        expect(Math.abs(blind.bound - full.bound)).toBeLessThanOrEqual(1e-6 * full.bound);
      }
    } finally {
      op.dispose();
    }
  }
  expect(caught).toBeGreaterThan(0); // the check did catch such runs here
}, 120_000);
