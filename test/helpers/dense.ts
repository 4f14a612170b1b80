/**
 * Dense-matrix references for the tests: each affine layer's matrix A built entry by entry from its
 * definition (layer-definitions.ts), a Jacobi eigen-solver, and Algorithm 1 written directly on dense
 * matrices. Independent of the backends (no convolution or transposed convolution code is shared).
 */
import { type AffineLayer, type Layer, type MaxPoolLayer, type Network, size } from '../../src/model/ir.js';
import { biasOf, forEachEntry, maxPoolMembership, poolWindows } from './layer-definitions.js';

export interface Dense {
  rows: number;
  cols: number;
  data: Float64Array; // row-major
  bias: Float64Array;
}

export function denseOf(layer: AffineLayer): Dense {
  const rows = size(layer.outputShape);
  const cols = size(layer.inputShape);
  const data = new Float64Array(rows * cols);
  forEachEntry(layer, (row, col, value) => (data[row * cols + col] += value));
  return { rows, cols, data, bias: biasOf(layer) };
}

export function matVec(a: Dense, x: ArrayLike<number>, withBias = true): Float64Array {
  const y = new Float64Array(a.rows);
  for (let r = 0; r < a.rows; r++) {
    let s = withBias ? a.bias[r] : 0;
    for (let c = 0; c < a.cols; c++) s += a.data[r * a.cols + c] * x[c];
    y[r] = s;
  }
  return y;
}

export function matTVec(a: Dense, u: ArrayLike<number>): Float64Array {
  const x = new Float64Array(a.cols);
  for (let r = 0; r < a.rows; r++) for (let c = 0; c < a.cols; c++) x[c] += a.data[r * a.cols + c] * u[r];
  return x;
}

/** Largest eigenvalue of a symmetric matrix by cyclic Jacobi rotations. */
export function largestSymmetricEigenvalue(n: number, sym: Float64Array): number {
  const a = Float64Array.from(sym);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] ** 2;
    if (off < 1e-22 * (1 + Math.max(...Array.from({ length: n }, (_, i) => a[i * n + i] ** 2)))) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
      }
  }
  let best = -Infinity;
  for (let i = 0; i < n; i++) best = Math.max(best, a[i * n + i]);
  return best;
}

/** ||diag(rowScale) A diag(colMask)||₂ from the dense matrix (via the smaller Gram matrix). */
export function spectralNorm(a: Dense, rowScale: ArrayLike<number> | null = null, colMask: ArrayLike<number> | null = null): number {
  const m = (r: number, c: number) => a.data[r * a.cols + c] * (rowScale ? rowScale[r] : 1) * (colMask ? colMask[c] : 1);
  const n = Math.min(a.rows, a.cols);
  const gram = new Float64Array(n * n);
  if (a.cols <= a.rows) {
    for (let i = 0; i < n; i++) for (let j = i; j < n; j++) {
      let s = 0;
      for (let r = 0; r < a.rows; r++) s += m(r, i) * m(r, j);
      gram[i * n + j] = gram[j * n + i] = s;
    }
  } else {
    for (let i = 0; i < n; i++) for (let j = i; j < n; j++) {
      let s = 0;
      for (let c = 0; c < a.cols; c++) s += m(i, c) * m(j, c);
      gram[i * n + j] = gram[j * n + i] = s;
    }
  }
  return Math.sqrt(Math.max(0, largestSymmetricEigenvalue(n, gram)));
}

function maxPoolDense(layer: MaxPoolLayer, x: ArrayLike<number>, reduce: (values: number[]) => number): Float64Array {
  return Float64Array.from(poolWindows(layer), (window) => reduce(window.map((i) => x[i])));
}

/** forwardDense with each layer's dense matrix built once: for tests that evaluate many points. */
export function denseEvaluator(network: Network): (x: ArrayLike<number>) => Float64Array {
  const matrices = network.layers.map((l) => (l.kind === 'maxpool' || l.kind === 'flatten' || l.kind === 'relu' ? null : denseOf(l)));
  return (x0) => {
    let x: Float64Array<ArrayBufferLike> = Float64Array.from(x0);
    network.layers.forEach((layer, i) => {
      const a = matrices[i];
      if (!a) x = forwardLayerDense(layer, x);
      else {
        const y = matVec(a, x);
        x = (layer as { relu: boolean }).relu ? y.map((v) => Math.max(0, v)) : y;
      }
    });
    return x;
  };
}

export function forwardDense(network: Network, x0: ArrayLike<number>): Float64Array {
  let x: Float64Array = Float64Array.from(x0);
  for (const layer of network.layers) x = forwardLayerDense(layer, x);
  return x;
}

function forwardLayerDense(layer: Layer, x: Float64Array): Float64Array {
  switch (layer.kind) {
    case 'maxpool':
      return maxPoolDense(layer, x, (v) => Math.max(...v));
    case 'flatten':
      return x;
    case 'relu':
      return x.map((v) => Math.max(0, v));
    default: {
      const y = matVec(denseOf(layer), x);
      return layer.relu ? y.map((v) => Math.max(0, v)) : y;
    }
  }
}

/** Algorithm 1 on dense matrices: the reference local bound and its per-layer factors. */
export function localBoundDense(network: Network, x0: ArrayLike<number>, eps: number): { bound: number; layers: number[] } {
  let x: Float64Array = Float64Array.from(x0);
  let mask: Float64Array | null = null;
  let epsL = eps;
  const layers: number[] = [];
  for (const layer of network.layers) {
    let L: number;
    if (layer.kind === 'maxpool') {
      L = Math.sqrt(maxPoolMembership(layer));
      mask = mask ? maxPoolDense(layer, mask, (v) => (v.some((m) => m !== 0) ? 1 : 0)) : null;
      x = maxPoolDense(layer, x, (v) => Math.max(...v));
    } else if (layer.kind === 'flatten' || layer.kind === 'relu') {
      L = 1;
      x = forwardLayerDense(layer, x);
    } else {
      const a = denseOf(layer);
      const y0 = matVec(a, x);
      const r = new Float64Array(a.rows);
      for (let i = 0; i < a.rows; i++) {
        let s = 0;
        for (let j = 0; j < a.cols; j++) s += (a.data[i * a.cols + j] * (mask ? mask[j] : 1)) ** 2;
        r[i] = Math.sqrt(s);
      }
      if (layer.relu) {
        const lambda = new Float64Array(a.rows);
        const next = new Float64Array(a.rows);
        for (let i = 0; i < a.rows; i++) {
          const yHat = y0[i] + epsL * r[i];
          lambda[i] = yHat <= 0 || r[i] === 0 ? 0 : y0[i] <= 0 ? yHat / (yHat - y0[i]) : 1;
          next[i] = yHat > 0 ? 1 : 0;
        }
        L = spectralNorm(a, lambda, mask);
        mask = next;
        x = y0.map((v) => Math.max(0, v));
      } else {
        L = spectralNorm(a, null, mask);
        mask = layer.kind === 'avgpool' ? r.map((v) => (v > 0 ? 1 : 0)) : null;
        x = y0;
      }
    }
    layers.push(L);
    epsL *= L;
  }
  return { bound: layers.reduce((p, v) => p * v, 1), layers };
}

export function globalBoundDense(network: Network): number {
  let bound = 1;
  for (const layer of network.layers) {
    if (layer.kind === 'maxpool') bound *= Math.sqrt(maxPoolMembership(layer));
    else if (layer.kind !== 'flatten' && layer.kind !== 'relu') bound *= spectralNorm(denseOf(layer));
  }
  return bound;
}
