/**
 * Dense-matrix references for the tests: each affine layer's matrix A built entry by entry from its
 * definition (layer-definitions.ts), a Jacobi eigen-solver, and Algorithm 1 written directly on dense
 * matrices. Independent of the backends (no convolution or transposed convolution code is shared).
 */
import { type AffineLayer, type Layer, type MaxPoolLayer, type Network, size, stack } from '../../src/model/ir.js';
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

// ---- Activations, written out independently of src/model/activations.ts ----

type Unit = (y: number) => number;

const sigmoid = (y: number) => 1 / (1 + Math.exp(-y));

/** σ of unit `i` of a layer's output (null: no activation). */
function unitFunction(layer: Layer, i: number): Unit | null {
  const act = layer.kind === 'relu' ? { kind: 'relu' as const } : layer.kind === 'activation' ? layer.activation : 'relu' in layer && layer.relu ? { kind: 'relu' as const } : 'activation' in layer ? layer.activation : undefined;
  if (!act) return null;
  const perChannel = size(layer.outputShape) / layer.outputShape[0];
  switch (act.kind) {
    case 'relu':
      return (y) => Math.max(0, y);
    case 'leakyrelu':
      return (y) => (y >= 0 ? y : act.alpha * y);
    case 'prelu': {
      const a = act.alpha[act.alpha.length === 1 ? 0 : Math.floor(i / perChannel)];
      return (y) => (y >= 0 ? y : a * y);
    }
    case 'clip':
      return (y) => Math.min(act.max, Math.max(act.min, y));
    case 'sigmoid':
      return sigmoid;
    case 'tanh':
      return Math.tanh;
  }
}

/**
 * Reference λ of one unit over [lo, hi] ∋ y0 by case analysis (α in [0, 1] for LeakyReLU/PReLU), and
 * whether the unit is constant there: the rules of docs/graphs.md §3 written per activation.
 */
export function referenceSlope(layer: Layer, i: number, y0: number, lo: number, hi: number): { lambda: number; constant: boolean } {
  const act = layer.kind === 'relu' ? { kind: 'relu' as const } : layer.kind === 'activation' ? layer.activation : 'relu' in layer && layer.relu ? { kind: 'relu' as const } : 'activation' in layer ? layer.activation! : null;
  if (!act) throw new Error('no activation');
  if (lo === hi) return { lambda: 0, constant: true };
  const perChannel = size(layer.outputShape) / layer.outputShape[0];
  const leaky = (a: number) => {
    if (hi <= 0 && a === 0) return { lambda: 0, constant: true };
    if (lo >= 0 || y0 > 0) return { lambda: 1, constant: false };
    if (hi <= 0) return { lambda: a, constant: false };
    if (y0 === 0) return { lambda: 1, constant: false };
    return { lambda: Math.max(a, (hi - a * y0) / (hi - y0)), constant: false }; // y0 < 0 < hi
  };
  switch (act.kind) {
    case 'relu':
      return leaky(0);
    case 'leakyrelu':
      return leaky(act.alpha);
    case 'prelu':
      return leaky(act.alpha[act.alpha.length === 1 ? 0 : Math.floor(i / perChannel)]);
    case 'clip': {
      const { min: a, max: b } = act;
      if (hi <= a || lo >= b) return { lambda: 0, constant: true };
      if (y0 > a && y0 < b) return { lambda: 1, constant: false };
      if (y0 <= a) {
        const top = Math.min(hi, b);
        return { lambda: (top - a) / (top - y0), constant: false };
      }
      const bottom = Math.max(lo, a);
      return { lambda: (b - bottom) / (y0 - bottom), constant: false };
    }
    case 'sigmoid': {
      const t = lo > 0 ? lo : hi < 0 ? hi : 0;
      return { lambda: sigmoid(t) * (1 - sigmoid(t)), constant: false };
    }
    case 'tanh': {
      const t = lo > 0 ? lo : hi < 0 ? hi : 0;
      return { lambda: 1 - Math.tanh(t) ** 2, constant: false };
    }
  }
}

function activateDense(layer: Layer, y: Float64Array): Float64Array {
  return y.map((v, i) => {
    const f = unitFunction(layer, i);
    return f ? f(v) : v;
  });
}

const inputsOfLayer = (network: Network, i: number) => network.layers[i].inputs ?? [i - 1];

const stackDense = (parts: Float64Array[]) => stack(parts, (n) => new Float64Array(n));

/** The pre-activation of one layer from the values it reads (dense matrices for affine layers). */
function preActivationDense(layer: Layer, read: Float64Array[], matrix: Dense | null): Float64Array {
  switch (layer.kind) {
    case 'maxpool':
      return maxPoolDense(layer, read[0], (v) => Math.max(...v));
    case 'add':
      return read[0].map((v, i) => read.reduce((a, r) => a + r[i], 0));
    case 'concat':
      return stackDense(read);
    case 'flatten':
    case 'relu':
    case 'activation':
      return read[0];
    default:
      return matVec(matrix ?? denseOf(layer), read[0]);
  }
}

/** forwardDense with each layer's dense matrix built once: for tests that evaluate many points. */
export function denseEvaluator(network: Network): (x: ArrayLike<number>) => Float64Array {
  const matrices = network.layers.map((l) => (l.kind === 'conv' || l.kind === 'dense' || l.kind === 'avgpool' || l.kind === 'scale' ? denseOf(l) : null));
  return (x0) => {
    const input = Float64Array.from(x0);
    const outputs: Float64Array[] = [];
    network.layers.forEach((layer, i) => {
      const read = inputsOfLayer(network, i).map((j) => (j < 0 ? input : outputs[j]));
      outputs.push(activateDense(layer, preActivationDense(layer, read, matrices[i])));
    });
    return outputs[outputs.length - 1];
  };
}

export function forwardDense(network: Network, x0: ArrayLike<number>): Float64Array {
  return denseEvaluator(network)(x0);
}

/** g_i = L_i · (input g; Σ for Add; root-sum-of-squares for Concat), g_input = 1: the network's bound at the last layer. */
function gainDense(network: Network, factors: number[]): number {
  const g: number[] = [];
  network.layers.forEach((layer, i) => {
    const incoming = inputsOfLayer(network, i).map((j) => (j < 0 ? 1 : g[j]));
    const combined = layer.kind === 'add' ? incoming.reduce((a, b) => a + b, 0) : layer.kind === 'concat' ? Math.sqrt(incoming.reduce((a, b) => a + b * b, 0)) : incoming[0];
    g.push(factors[i] * combined);
  });
  return g[g.length - 1];
}

/**
 * The paper's local bound at eps from certify() against localBoundDense: every layer's factor to 1e-4
 * (below 1e-6 where the reference is 0), the total to 1e-3, and below the global bound. Returns the bound.
 */
export function expectLocalBoundMatchesDense(network: Network, x0: ArrayLike<number>, eps: number, local: { bound: number; layers: { bound: number }[] }, global: number): number {
  const reference = localBoundDense(network, x0, eps);
  const relErr = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);
  local.layers.forEach((l, i) => {
    if (reference.layers[i] === 0) expect(l.bound).toBeLessThan(1e-6);
    else expect(relErr(l.bound, reference.layers[i])).toBeLessThan(1e-4);
  });
  expect(relErr(local.bound, reference.bound)).toBeLessThan(1e-3);
  expect(local.bound).toBeLessThanOrEqual(global * (1 + 1e-6));
  return local.bound;
}

/**
 * Algorithm 1 on dense matrices, over the DAG (docs/graphs.md): the reference local bound and its
 * per-layer factors. Masks mark entries known constant (null: none).
 */
export function localBoundDense(network: Network, x0: ArrayLike<number>, eps: number): { bound: number; layers: number[] } {
  const input = Float64Array.from(x0);
  const outputs: Float64Array[] = [];
  const masks: (Float64Array | null)[] = [];
  const radii: number[] = [];
  const layers: number[] = [];
  network.layers.forEach((layer, index) => {
    const from = inputsOfLayer(network, index);
    const read = from.map((j) => (j < 0 ? input : outputs[j]));
    const readMasks = from.map((j) => (j < 0 ? null : masks[j]));
    const readRadii = from.map((j) => (j < 0 ? eps : radii[j]));
    const epsIn = layer.kind === 'add' ? readRadii.reduce((a, b) => a + b, 0) : layer.kind === 'concat' ? Math.sqrt(readRadii.reduce((a, b) => a + b * b, 0)) : readRadii[0];
    let mask: Float64Array | null;
    if (layer.kind === 'concat') mask = readMasks.every((m) => !m) ? null : stackDense(readMasks.map((m, k) => m ?? new Float64Array(read[k].length).fill(1)));
    else if (layer.kind === 'add') mask = readMasks.some((m) => !m) ? null : readMasks[0]!.map((_, i) => (readMasks.some((m) => m![i] !== 0) ? 1 : 0));
    else mask = readMasks[0];
    let L: number;
    let next: Float64Array | null;
    const y0 = preActivationDense(layer, read, null);
    const hasActivation = unitFunction(layer, 0) !== null;
    if (layer.kind === 'maxpool') {
      L = Math.sqrt(maxPoolMembership(layer));
      next = mask ? maxPoolDense(layer, mask, (v) => (v.some((m) => m !== 0) ? 1 : 0)) : null;
    } else if (layer.kind === 'conv' || layer.kind === 'dense' || layer.kind === 'avgpool' || layer.kind === 'scale') {
      const a = denseOf(layer);
      const r = new Float64Array(a.rows);
      for (let i = 0; i < a.rows; i++) {
        let s = 0;
        for (let j = 0; j < a.cols; j++) s += (a.data[i * a.cols + j] * (mask ? mask[j] : 1)) ** 2;
        r[i] = Math.sqrt(s);
      }
      if (layer.relu) {
        // The paper's rule, as written in the paper.
        const lambda = new Float64Array(a.rows);
        next = new Float64Array(a.rows);
        for (let i = 0; i < a.rows; i++) {
          const yHat = y0[i] + epsIn * r[i];
          lambda[i] = yHat <= 0 || r[i] === 0 ? 0 : y0[i] <= 0 ? yHat / (yHat - y0[i]) : 1;
          next[i] = yHat > 0 ? 1 : 0;
        }
        L = spectralNorm(a, lambda, mask);
      } else if (hasActivation) {
        const lambda = new Float64Array(a.rows);
        next = new Float64Array(a.rows);
        for (let i = 0; i < a.rows; i++) {
          const s = referenceSlope(layer, i, y0[i], y0[i] - epsIn * r[i], y0[i] + epsIn * r[i]);
          lambda[i] = s.lambda;
          next[i] = s.constant ? 0 : 1;
        }
        L = spectralNorm(a, lambda, mask);
      } else {
        L = spectralNorm(a, null, mask);
        next = layer.kind === 'avgpool' ? r.map((v) => (v > 0 ? 1 : 0)) : null;
      }
    } else if ((layer.kind === 'add' && hasActivation) || layer.kind === 'activation') {
      next = new Float64Array(y0.length);
      L = 0;
      for (let i = 0; i < y0.length; i++) {
        const rho = layer.kind === 'add' ? readRadii.reduce((acc, e, k) => acc + (readMasks[k] && readMasks[k]![i] === 0 ? 0 : e), 0) : mask && mask[i] === 0 ? 0 : epsIn;
        const s = referenceSlope(layer, i, y0[i], y0[i] - rho, y0[i] + rho);
        L = Math.max(L, s.lambda);
        next[i] = s.constant ? 0 : 1;
      }
    } else {
      L = 1; // flatten, lone ReLU, Concat, Add without activation
      next = mask;
    }
    outputs.push(activateDense(layer, y0));
    masks.push(next);
    radii.push(epsIn * L);
    layers.push(L);
  });
  return { bound: gainDense(network, layers), layers };
}

const globalSlopeDense = (layer: Layer): number => {
  const act = layer.kind === 'activation' ? layer.activation : 'activation' in layer ? layer.activation : undefined;
  if (!act) return 1;
  if (act.kind === 'sigmoid') return 0.25;
  if (act.kind === 'leakyrelu') return Math.max(1, Math.abs(act.alpha));
  if (act.kind === 'prelu') return Math.max(1, ...Array.from(act.alpha, Math.abs));
  return 1;
};

export function globalBoundDense(network: Network): number {
  return gainDense(
    network,
    network.layers.map((layer) => {
      if (layer.kind === 'maxpool') return Math.sqrt(maxPoolMembership(layer));
      if (layer.kind === 'conv' || layer.kind === 'dense' || layer.kind === 'avgpool' || layer.kind === 'scale') return spectralNorm(denseOf(layer)) * globalSlopeDense(layer);
      return globalSlopeDense(layer);
    }),
  );
}
