/**
 * A dense float64 reference for the ImageNet-layer tests: each affine layer's matrix written out
 * from its definition (layer-definitions.ts) as sparse rows, Algorithm 1 on those matrices, and exact
 * spectral norms from the smaller Gram matrix by Householder tridiagonalisation and Sturm-sequence
 * bisection. Shares no code with the backends or with bounds/spectral.ts.
 */
import { type AffineLayer, type Layer, type MaxPoolLayer, type Network, size } from '../../src/model/ir.js';
import { biasOf, forEachEntry, maxPoolMembership, poolWindows } from './layer-definitions.js';

export interface DenseMatrix {
  rows: number;
  cols: number;
  /** Non-zeros of each row: column indices and values. */
  index: Int32Array[];
  value: Float64Array[];
  bias: Float64Array;
}

/** A from the layer's definition (entry by entry), and b. */
export function denseMatrix(layer: AffineLayer): DenseMatrix {
  const rows = size(layer.outputShape);
  const entries: Map<number, number>[] = Array.from({ length: rows }, () => new Map());
  forEachEntry(layer, (r, c, v) => entries[r].set(c, (entries[r].get(c) ?? 0) + v));
  const index = entries.map((e) => Int32Array.from(e.keys()));
  const value = entries.map((e) => Float64Array.from(e.values()));
  return { rows, cols: size(layer.inputShape), index, value, bias: biasOf(layer) };
}

export function apply(a: DenseMatrix, x: ArrayLike<number>): Float64Array {
  const y = new Float64Array(a.rows);
  for (let r = 0; r < a.rows; r++) {
    let s = a.bias[r];
    const idx = a.index[r];
    const val = a.value[r];
    for (let k = 0; k < idx.length; k++) s += val[k] * x[idx[k]];
    y[r] = s;
  }
  return y;
}

/** Largest eigenvalue of a symmetric n×n matrix: Householder to tridiagonal, then Sturm bisection. */
export function largestEigenvalue(n: number, matrix: Float64Array): number {
  const a = Float64Array.from(matrix);
  const d = new Float64Array(n);
  const e = new Float64Array(n); // e[i] couples i and i+1
  const v = new Float64Array(n);
  const p = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    let alpha = 0;
    for (let i = k + 1; i < n; i++) alpha += a[i * n + k] ** 2;
    alpha = Math.sqrt(alpha);
    if (alpha === 0) continue;
    const x0 = a[(k + 1) * n + k];
    const sign = x0 >= 0 ? 1 : -1;
    v.fill(0);
    for (let i = k + 1; i < n; i++) v[i] = a[i * n + k];
    v[k + 1] += sign * alpha;
    let vv = 0;
    for (let i = k + 1; i < n; i++) vv += v[i] * v[i];
    if (vv === 0) continue;
    // A ← H A H with H = I − 2 v vᵀ / (vᵀ v): p = A v · 2/vv, K = vᵀ p / vv, q = p − K v, A −= v qᵀ + q vᵀ.
    for (let i = k; i < n; i++) {
      let s = 0;
      for (let j = k + 1; j < n; j++) s += a[i * n + j] * v[j];
      p[i] = (2 * s) / vv;
    }
    let K = 0;
    for (let i = k + 1; i < n; i++) K += v[i] * p[i];
    K /= vv;
    for (let i = k; i < n; i++) p[i] -= K * v[i];
    for (let i = k; i < n; i++)
      for (let j = k; j < n; j++) a[i * n + j] -= v[i] * p[j] + p[i] * v[j];
  }
  for (let i = 0; i < n; i++) d[i] = a[i * n + i];
  for (let i = 0; i < n - 1; i++) e[i] = a[(i + 1) * n + i];
  // Gershgorin bounds, then bisection on the number of eigenvalues below x.
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const r = (i > 0 ? Math.abs(e[i - 1]) : 0) + (i < n - 1 ? Math.abs(e[i]) : 0);
    lo = Math.min(lo, d[i] - r);
    hi = Math.max(hi, d[i] + r);
  }
  const below = (x: number) => {
    let count = 0;
    let q = 1;
    for (let i = 0; i < n; i++) {
      q = d[i] - x - (i > 0 ? (e[i - 1] * e[i - 1]) / q : 0);
      if (q === 0) q = 1e-300;
      if (q < 0) count++;
    }
    return count;
  };
  for (let it = 0; it < 200 && hi - lo > 1e-15 * Math.max(Math.abs(hi), Math.abs(lo), 1e-300); it++) {
    const mid = (lo + hi) / 2;
    if (below(mid) === n) hi = mid;
    else lo = mid;
  }
  return (lo + hi) / 2;
}

/** ||diag(rowScale) A diag(colMask)|| from the smaller of the two Gram matrices. */
export function spectralNorm(a: DenseMatrix, rowScale: ArrayLike<number> | null, colMask: ArrayLike<number> | null): number {
  const s = (r: number) => (rowScale ? rowScale[r] : 1);
  const m = (c: number) => (colMask ? colMask[c] : 1);
  if (a.rows <= a.cols) {
    const n = a.rows;
    const g = new Float64Array(n * n);
    const dense = new Float64Array(a.cols);
    for (let i = 0; i < n; i++) {
      dense.fill(0);
      for (let k = 0; k < a.index[i].length; k++) dense[a.index[i][k]] = a.value[i][k] * m(a.index[i][k]);
      for (let j = i; j < n; j++) {
        let sum = 0;
        for (let k = 0; k < a.index[j].length; k++) sum += dense[a.index[j][k]] * a.value[j][k];
        g[i * n + j] = g[j * n + i] = sum * s(i) * s(j);
      }
    }
    return Math.sqrt(Math.max(0, largestEigenvalue(n, g)));
  }
  const n = a.cols;
  const g = new Float64Array(n * n);
  for (let r = 0; r < a.rows; r++) {
    const idx = a.index[r];
    const val = a.value[r];
    const sr = s(r) * s(r);
    for (let p = 0; p < idx.length; p++)
      for (let q = 0; q < idx.length; q++) g[idx[p] * n + idx[q]] += sr * val[p] * m(idx[p]) * val[q] * m(idx[q]);
  }
  return Math.sqrt(Math.max(0, largestEigenvalue(n, g)));
}

/** sqrt of the most windows any input belongs to (Theorem 3). */
export function maxPoolBound(layer: MaxPoolLayer): number {
  return Math.sqrt(maxPoolMembership(layer));
}

export interface DenseBounds {
  local: number[];
  global: number[];
  logits: Float64Array;
}

/** Algorithm 1 (local, at eps) and the global bound, per layer, on dense float64 matrices. */
export function denseBounds(network: Network, x0: ArrayLike<number>, eps: number): DenseBounds {
  const local: number[] = [];
  const global: number[] = [];
  let x: Float64Array = Float64Array.from(x0);
  let mask: Float64Array | null = null;
  let epsIn = eps;
  for (const layer of network.layers as Layer[]) {
    let bound = 1;
    if (layer.kind === 'conv' || layer.kind === 'dense' || layer.kind === 'avgpool') {
      const a = denseMatrix(layer);
      const y0 = apply(a, x);
      const r = new Float64Array(a.rows);
      for (let i = 0; i < a.rows; i++) {
        let s = 0;
        for (let k = 0; k < a.index[i].length; k++) s += a.value[i][k] ** 2 * (mask ? mask[a.index[i][k]] : 1);
        r[i] = Math.sqrt(s);
      }
      global.push(spectralNorm(a, null, null));
      if (layer.relu) {
        const lambda = new Float64Array(a.rows);
        const next = new Float64Array(a.rows);
        for (let i = 0; i < a.rows; i++) {
          const yHat = y0[i] + epsIn * r[i];
          lambda[i] = yHat <= 0 || r[i] === 0 ? 0 : y0[i] <= 0 ? yHat / (yHat - y0[i]) : 1; // Theorem 1
          next[i] = yHat > 0 ? 1 : 0;
        }
        bound = spectralNorm(a, lambda, mask);
        mask = next;
        x = y0.map((v) => Math.max(0, v));
      } else {
        bound = spectralNorm(a, null, mask);
        mask = layer.kind === 'avgpool' ? r.map((v) => (v > 0 ? 1 : 0)) : null;
        x = y0;
      }
    } else if (layer.kind === 'maxpool') {
      bound = maxPoolBound(layer);
      global.push(bound);
      const windows = poolWindows(layer);
      x = Float64Array.from(windows, (win) => Math.max(...win.map((i) => x[i])));
      if (mask) {
        const inputMask: Float64Array = mask;
        mask = Float64Array.from(windows, (win): number => (win.some((i) => inputMask[i] !== 0) ? 1 : 0));
      }
    } else if (layer.kind === 'relu') {
      global.push(1);
      x = x.map((v) => Math.max(0, v));
    } else {
      global.push(1);
    }
    local.push(bound);
    epsIn *= bound;
  }
  return { local, global, logits: x };
}
