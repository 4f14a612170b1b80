/**
 * Certified spectral norms ||Λ A D||: upper bounds that hold deterministically or with a stated
 * probability, in place of Lanczos estimates from below (docs/tightness.md, "Certified layer norms").
 * - deterministic:gram — Gram iteration on the explicit matrix of a small dense layer
 *   (Delattre, Barthélemy, Araujo, Allauzen, ICML 2023): ||M||² = λ_max(G) ≤ ||G^(2^t)||_F^(2^−t).
 * - deterministic:collatz-wielandt — ||M|| ≤ || |M| || and, for the nonnegative B = |M|ᵀ|M| and any
 *   p > 0, ρ(B) ≤ max_j (Bp)_j / p_j (Collatz–Wielandt); |M| = Λ|A|D is applied with |W| convolutions.
 *   Its first step (p = 1) is never above sqrt(||M||_1·||M||_∞).
 * - probabilistic:kw — Lanczos from a Gaussian start, without restarts (Kuczyński & Woźniakowski,
 *   SIAM J. Matrix Anal. Appl. 13(4), 1992, Thm 4.2): P(θ_k < (1−ε)λ_max) ≤ 1.648·sqrt(n)·e^(−(2k−1)·sqrt(ε)),
 *   so λ_max ≤ θ_k/(1−ε) with probability ≥ 1 − δ.
 * All certificates hold in exact arithmetic for the operator as the backend evaluates it (float32).
 */
import type { AffineLayer } from '../model/ir.js';
import { size } from '../model/ir.js';
import type { Backend, DeviceVector, GramOperator, VectorOps } from '../backend/backend.js';
import { CancelledError } from '../errors.js';
import { Rng } from '../random.js';
import { DEFAULT_DELTA } from './defaults.js';
import type { SpectralSettings } from './layer-bounds.js';
import { type NormPrecision, type NormSolver, requireFinite } from './norms.js';
import { tridiagonalEigen } from './spectral.js';
import type { SpectralNormReport } from './types.js';

/** Which spectral norms may enter a reported bound. */
export type CertificateMode = 'deterministic' | 'probabilistic' | 'estimate';
/** KW inflation 1/(1−ε) aimed at: the Lanczos step count is chosen for it. */
export const DEFAULT_KW_EPSILON = 4e-3;
/**
 * ... for 'coarse' norms, whose few percent change the reported numbers little (the global bound's
 * factors, the tight method's correction spreads): 1/(1 − ε) = 1.042 on λ_max, 2.1% on the norm,
 * in about a third of the steps (and a ninth of the reorthogonalisation).
 */
export const COARSE_KW_EPSILON = 4e-2;

export interface CertificateSettings {
  mode: CertificateMode;
  /** Failure probability of each probabilistic certificate. */
  delta: number;
  /** Seed of the Gaussian start vectors; a fresh random one per solver when absent. */
  seed?: number;
}

/** Parse `deterministic`, `probabilistic`, `probabilistic:1e-4` or `estimate`. */
export function parseCertificate(text: string): { mode: CertificateMode; delta: number } | null {
  const [mode, arg] = text.split(':');
  if (mode === 'deterministic' || mode === 'estimate') return arg === undefined ? { mode, delta: 0 } : null;
  if (mode !== 'probabilistic') return null;
  const delta = arg === undefined ? DEFAULT_DELTA : Number(arg);
  return delta > 0 && delta < 1 ? { mode, delta } : null;
}

// ---------------------------------------------------------------------------------------------
// |A|: the same layer with nonnegative weights, so the backend's own ops apply |A| and |A|ᵀ.

const absLayers = new WeakMap<AffineLayer, AffineLayer>();

/** The layer with every entry of A replaced by its absolute value (bias zero); cached per layer. */
export function absoluteLayer(layer: AffineLayer): AffineLayer {
  let abs = absLayers.get(layer);
  if (abs) return abs;
  switch (layer.kind) {
    case 'conv':
    case 'dense':
      abs = { ...layer, name: `|${layer.name}|`, weight: layer.weight.map(Math.abs), bias: new Float32Array(layer.bias.length) };
      break;
    case 'scale':
      abs = { ...layer, name: `|${layer.name}|`, scale: layer.scale.map(Math.abs), shift: new Float32Array(layer.shift.length) };
      break;
    case 'avgpool':
      abs = layer; // already nonnegative
      break;
  }
  absLayers.set(layer, abs);
  return abs;
}

// ---------------------------------------------------------------------------------------------
// Deterministic certificates.

/**
 * sqrt(ρ(|M|ᵀ|M|)) ≥ ||M|| for M = Λ A D, bounded above by Collatz–Wielandt ratios along power steps
 * of |M|ᵀ|M| from p = d; the smallest ratio seen is returned.
 */
export async function collatzWielandtNorm(
  backend: Backend,
  layer: AffineLayer,
  mask: Float32Array | null,
  slopeSquared: Float32Array | null,
  steps = 30,
): Promise<number> {
  const abs = absoluteLayer(layer);
  const n = size(layer.inputShape);
  const m = size(layer.outputShape);
  const slope = slopeSquared ? Float32Array.from(slopeSquared, Math.sqrt) : null;
  let p: Float32Array<ArrayBufferLike> = new Float32Array(n);
  for (let j = 0; j < n; j++) p[j] = mask ? mask[j] : 1;
  let best = Infinity;
  for (let step = 0; step < steps; step++) {
    // q = D |A|ᵀ Λ |Λ|A| D p| = |M|ᵀ |M| p
    const u = await backend.applyA(abs, p);
    for (let i = 0; i < m; i++) u[i] *= slope ? slope[i] * slope[i] : 1;
    const q = await backend.applyAT(abs, u);
    let ratio = 0;
    let norm = 0;
    for (let j = 0; j < n; j++) {
      if (mask && mask[j] === 0) q[j] = 0;
      requireFinite(q[j], 'Collatz–Wielandt');
      if (q[j] > 0) ratio = Math.max(ratio, p[j] > 0 ? q[j] / p[j] : Infinity);
      norm = Math.max(norm, q[j]);
    }
    best = Math.min(best, ratio);
    if (norm === 0) return 0;
    // Next p: q, normalised; entries where q vanished keep a trace of p so the ratio stays finite.
    for (let j = 0; j < n; j++) q[j] = q[j] / norm + (p[j] > 0 ? 1e-12 : 0);
    p = q;
  }
  return Math.sqrt(best);
}

/** Symmetric matrix square C = A·A (row-major, n×n, float64). */
function symmetricSquare(a: Float64Array, n: number): Float64Array {
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k];
      if (aik === 0) continue;
      const rowK = k * n;
      const rowI = i * n;
      for (let j = i; j < n; j++) c[rowI + j] += aik * a[rowK + j];
    }
    for (let j = 0; j < i; j++) c[i * n + j] = c[j * n + i];
  }
  return c;
}

/**
 * Gram iteration stops early once a square lowers its bound by less than this fraction: the bound
 * has then settled (see gramIterationBound).
 */
export const GRAM_SETTLED = 1e-12;

/**
 * λ_max(G) ≤ ||G^(2^t)||_F^(2^−t) for a symmetric positive semi-definite G (Gram iteration), with
 * each square rescaled to unit Frobenius norm and the scale kept in logarithms. At most `iterations`
 * squares; fewer once one lowers the bound by less than GRAM_SETTLED. Every iterate is an upper
 * bound, so stopping anywhere is sound; the early stop only skips squares that could not change the
 * bound. With r_i = λ_i/λ_max, p = 2^(t+1) and x = Σ_{i≥2} r_i^p, b_t = λ_max·(1 + x)^(1/p); a
 * square lowers ln b by at least x(1 − x)/p, and by at least ln(1.5)/(2p) (2.5e-5 at t = 12) while
 * x ≥ 1/2 (a repeated or clustered top eigenvalue), so it stops early only with x < 2p·GRAM_SETTLED,
 * where all later squares together could lower ln b by at most x²/(2p) < 2p·GRAM_SETTLED² (about
 * 1e-20 at t = 12): the bound is the full count's to rounding (docs/tightness.md §0).
 */
export function gramIterationBound(gram: Float64Array, n: number, iterations: number): number {
  let g = gram;
  let logScale = 0; // log ||G_t||_F, G_t = G^(2^t)
  let best = Infinity;
  for (let t = 0; ; t++) {
    let fro = 0;
    for (let i = 0; i < g.length; i++) fro += g[i] * g[i];
    fro = Math.sqrt(requireFinite(fro, 'Gram iteration'));
    if (fro === 0) return 0;
    logScale += Math.log(fro);
    const before = best;
    best = Math.min(best, Math.exp(logScale / 2 ** t));
    if (t === iterations || before - best <= GRAM_SETTLED * best) return best;
    for (let i = 0; i < g.length; i++) g[i] /= fro;
    g = symmetricSquare(g, n);
    logScale *= 2;
  }
}

/**
 * G = R Rᵀ of a block of `count` rows of length `width` (row-major), in float64. Row b meets four
 * rows a at a time (one pass over it for four products; each product still sums in index order,
 * so every entry is the plain loop's to the bit).
 */
export function rowGram(rows: ArrayLike<number>, count: number, width: number): Float64Array {
  const gram = new Float64Array(count * count);
  const set = (a: number, b: number, s: number) => (gram[a * count + b] = gram[b * count + a] = s);
  for (let b = 0; b < count; b++) {
    const rb = b * width;
    let a = 0;
    for (; a + 3 <= b; a += 4) {
      const r0 = a * width;
      const r1 = r0 + width;
      const r2 = r1 + width;
      const r3 = r2 + width;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let i = 0; i < width; i++) {
        const v = rows[rb + i];
        s0 += rows[r0 + i] * v;
        s1 += rows[r1 + i] * v;
        s2 += rows[r2 + i] * v;
        s3 += rows[r3 + i] * v;
      }
      set(a, b, s0);
      set(a + 1, b, s1);
      set(a + 2, b, s2);
      set(a + 3, b, s3);
    }
    for (; a <= b; a++) {
      let s = 0;
      const ra = a * width;
      for (let i = 0; i < width; i++) s += rows[ra + i] * rows[rb + i];
      set(a, b, s);
    }
  }
  return gram;
}

/** The smaller Gram matrix of M = Λ W D for a dense layer: M Mᵀ (m ≤ n) or Mᵀ M. */
function denseGram(layer: AffineLayer & { kind: 'dense' }, mask: Float32Array | null, slopeSquared: Float32Array | null): { gram: Float64Array; dim: number } {
  const m = layer.outputShape[0];
  const n = layer.inputShape[0];
  const w = layer.weight;
  const rows: number[] = [];
  for (let i = 0; i < m; i++) if (!slopeSquared || slopeSquared[i] > 0) rows.push(i);
  const cols: number[] = [];
  for (let j = 0; j < n; j++) if (!mask || mask[j] !== 0) cols.push(j);
  const rowScale = rows.map((i) => (slopeSquared ? Math.sqrt(slopeSquared[i]) : 1));
  if (rows.length <= cols.length) {
    // The rows of M, restricted to D's columns and scaled by Λ.
    const block = new Float64Array(rows.length * cols.length);
    rows.forEach((i, a) => cols.forEach((j, c) => (block[a * cols.length + c] = w[i * n + j] * rowScale[a])));
    return { gram: rowGram(block, rows.length, cols.length), dim: rows.length };
  }
  const p = cols.length;
  const gram = new Float64Array(p * p);
  for (let r = 0; r < rows.length; r++) {
    const base = rows[r] * n;
    const s2 = rowScale[r] * rowScale[r];
    for (let a = 0; a < p; a++) {
      const wa = w[base + cols[a]] * s2;
      if (wa === 0) continue;
      for (let b = a; b < p; b++) gram[a * p + b] += wa * w[base + cols[b]];
    }
  }
  for (let a = 0; a < p; a++) for (let b = 0; b < a; b++) gram[a * p + b] = gram[b * p + a];
  return { gram, dim: p };
}

/** Dense layers whose smaller Gram matrix is at most this size get the Gram-iteration certificate. */
export const GRAM_MAX_DIM = 600;
/** ... in probabilistic mode, where KW is the alternative (12 squarings of 128² cost about one KW run). */
export const GRAM_MAX_DIM_PROBABILISTIC = 128;

/** Gram iteration on ||Λ W D|| of a dense layer (null when the layer is too large). */
export function denseGramNorm(layer: AffineLayer, mask: Float32Array | null, slopeSquared: Float32Array | null, iterations = 12, maxDim = GRAM_MAX_DIM): number | null {
  if (layer.kind !== 'dense') return null;
  if (Math.min(layer.inputShape[0], layer.outputShape[0]) > maxDim) return null;
  const { gram, dim } = denseGram(layer, mask, slopeSquared);
  if (dim === 0) return 0;
  return Math.sqrt(gramIterationBound(gram, dim, iterations));
}

// ---------------------------------------------------------------------------------------------
// Probabilistic certificate.

/** ε with 1.648·sqrt(n)·exp(−(2k−1)·sqrt(ε)) = δ (Kuczyński–Woźniakowski). */
export function kwEpsilon(n: number, k: number, delta: number): number {
  const root = Math.log((1.648 * Math.sqrt(n)) / delta) / (2 * k - 1);
  return Math.max(0, root) ** 2;
}

export interface KwResult {
  /** Upper bound of λ_max, valid with probability ≥ 1 − delta. */
  bound: number;
  /** Largest Ritz value (from below). */
  ritz: number;
  steps: number;
  epsilon: number;
  /** Steps whose vector was reorthogonalised against the whole basis (every step without `partial`). */
  reorthogonalised?: number;
  /** A partially reorthogonalised run failed its consistency check and was run again with full reorthogonalisation. */
  fellBack?: boolean;
  /** With `topVector`: the top Ritz vector (the operator's dimension, unit length; the caller frees it). */
  vector?: DeviceVector;
}

/** Lanczos steps k after which the KW inflation ε is at most `target`, for dimension n and δ. */
export function kwSteps(n: number, delta: number, target: number): number {
  return Math.ceil((Math.log((1.648 * Math.sqrt(n)) / delta) / Math.sqrt(target) + 1) / 2);
}

/**
 * λ_max of a PSD operator by plain Lanczos from a Gaussian start (full reorthogonalisation, no
 * restart) for a number of steps fixed in advance, kwSteps(n, δ, targetEpsilon), then certified by
 * KW: λ_max ≤ θ_k/(1−ε) with probability ≥ 1 − δ. An invariant Krylov space (β = 0) stays the same
 * for every larger k, so KW then holds with k = n. `support` (0/1) restricts the start to the
 * subspace the operator acts on (n = its dimension); the operator's outputs must vanish off it (a
 * Gram operator D Aᵀ Λ² A D with D = support), which lets the run keep only the support's entries.
 */
export async function kwLargestEigenvalue(
  op: GramOperator,
  vectors: VectorOps,
  options: {
    delta: number;
    seed: number;
    support?: Float32Array | null;
    targetEpsilon?: number;
    signal?: AbortSignal;
    /**
     * Partial reorthogonalisation (Simon's ω-recurrence, OrthogonalityEstimate): reorthogonalise only
     * where the estimated loss of orthogonality passes √u, u the relative error of one operator
     * application (float32 convolutions: 2^−23); for double-precision vectors (the CPU's). Absent:
     * every step is reorthogonalised against the whole basis.
     */
    partial?: { unit: number };
    /**
     * Also return the top Ritz vector (a warm start for the estimates of nearby operators; the
     * certificate does not depend on it).
     */
    topVector?: boolean;
  },
): Promise<KwResult> {
  const support = options.support ?? null;
  let dim = op.dim;
  if (support) dim = support.reduce((a, v) => a + (v !== 0 ? 1 : 0), 0);
  if (dim === 0) return { bound: 0, ritz: 0, steps: 0, epsilon: 0 };
  // Off the support every Lanczos vector is zero (the start is, and the operator ends with D), so
  // where the backend can gather and scatter, the basis holds the support's entries only: the same
  // numbers (the dropped entries only ever added ±0 to a sum), a quarter less reorthogonalisation and
  // cache on the Fashion-MNIST CNN's second convolution.
  const onSupport = support && dim < op.dim && vectors.gather && vectors.scatter ? compressedOperator(op, vectors, support, dim) : null;
  const operator = onSupport ?? op;
  const n = operator.dim;
  const steps = Math.min(kwSteps(dim, options.delta, options.targetEpsilon ?? DEFAULT_KW_EPSILON), dim);
  const rng = new Rng(options.seed);
  const start = new Float64Array(n);
  for (let i = 0; i < n; i++) start[i] = onSupport || !support || support[i] !== 0 ? rng.gaussian() : 0;
  const v0 = vectors.upload(start);
  vectors.scale(1 / Math.sqrt(await vectors.dot(v0, v0)), v0);

  const basis: DeviceVector[] = [v0];
  const alphas: number[] = [];
  const betas: number[] = [];
  const w = vectors.alloc(n);
  const work = vectors.alloc(n);
  let invariant = false;
  let scale = 0;
  let consistent = true;
  let top: DeviceVector | undefined;
  const orthogonality = options.partial ? new OrthogonalityEstimate(steps, n, options.partial.unit) : null;
  try {
    for (let j = 0; j < steps; j++) {
      if (options.signal?.aborted) throw new CancelledError();
      await operator.apply(basis[j], w);
      // Three-term recurrence, then classical Gram–Schmidt against the whole basis, repeated when a
      // pass removed more than half of w (DGKS, "twice is enough"): in float32 (WebGPU) one pass
      // loses orthogonality once a low-rank operator's range is used up. With `partial`, the
      // Gram–Schmidt passes run only where the estimate asks for them.
      if (j > 0) vectors.axpy(-betas[j - 1], basis[j - 1], w);
      let alpha = await vectors.dot(w, basis[j]);
      vectors.axpy(-alpha, basis[j], w);
      let betaSquared = requireFinite(await vectors.dot(w, w), 'Kuczyński–Woźniakowski Lanczos');
      const reorthogonalise = !orthogonality || orthogonality.next(alphas, alpha, betas, Math.sqrt(Math.max(0, betaSquared)), Math.max(scale, Math.abs(alpha)));
      if (reorthogonalise) orthogonality?.reorthogonalised();
      for (let pass = 0; reorthogonalise && pass < 2; pass++) {
        const c = await vectors.dots(w, [...basis, w]);
        const before = c[basis.length]; // ||w||² before this pass
        alpha += c[j];
        vectors.combine(c.subarray(0, basis.length), basis, work);
        vectors.axpy(-1, work, w);
        betaSquared = requireFinite(await vectors.dot(w, w), 'Kuczyński–Woźniakowski Lanczos');
        if (betaSquared >= 0.5 * before) break;
      }
      alphas.push(requireFinite(alpha, 'Kuczyński–Woźniakowski Lanczos'));
      const beta = Math.sqrt(Math.max(0, betaSquared));
      scale = Math.max(scale, Math.abs(alpha), beta);
      if (beta <= 1e-12 * scale) {
        invariant = true;
        break;
      }
      if (j === steps - 1) break;
      betas.push(beta);
      const next = vectors.alloc(n);
      vectors.copy(w, next);
      vectors.scale(1 / beta, next);
      basis.push(next);
    }
    if (orthogonality || options.topVector) {
      const ritz = topRitzVector(vectors, basis, alphas, betas, n);
      try {
        if (orthogonality) consistent = await ritzConsistent(operator, vectors, ritz.theta, ritz.y, n);
        if (consistent && options.topVector) {
          top = vectors.alloc(op.dim);
          if (onSupport) onSupport.expand(ritz.y, top);
          else vectors.copy(ritz.y, top);
        }
      } finally {
        vectors.free(ritz.y);
      }
    }
  } finally {
    for (const b of basis) vectors.free(b);
    vectors.free(w);
    vectors.free(work);
    onSupport?.dispose();
  }
  // A run whose tridiagonal does not describe its basis (the estimate let orthogonality go): the
  // same run with full reorthogonalisation instead.
  if (!consistent) return { ...(await kwLargestEigenvalue(op, vectors, { ...options, partial: undefined })), fellBack: true };
  const { values } = tridiagonalEigen(alphas, betas, false); // values only: O(k²)
  const ritz = Math.max(0, ...values);
  const epsilon = kwEpsilon(dim, invariant ? dim : alphas.length, options.delta);
  return { bound: epsilon < 1 ? ritz / (1 - epsilon) : Infinity, ritz, steps: alphas.length, epsilon, reorthogonalised: orthogonality?.count ?? alphas.length, vector: top };
}

/**
 * How far a partially reorthogonalised run's top Ritz value may lie from its Ritz vector's Rayleigh
 * quotient (relative). Measured on CIFAR-10's certified norms: within 2e-8 where the estimate keeps
 * the basis semiorthogonal; 2e-3 to 0.95 where it does not (an estimate with u = 1e-16, below the
 * float32 operator's error), so 1e-5 separates them with room on both sides.
 */
export const RITZ_CONSISTENCY = 1e-5;

/**
 * The relative error u of one Gram operator application that the orthogonality estimate assumes on
 * the CPU (onnxruntime's float32 convolutions and products, sums of hundreds of terms: about
 * √K·2^−24 for K terms, under 1e-6 for K ≤ 3500). Larger u only reorthogonalises more often.
 */
export const CPU_OPERATOR_UNIT = 1e-6;

/**
 * The check of a partially reorthogonalised run (docs/tightness.md §0): the top Ritz pair (θ, s) of
 * its tridiagonal, the vector y = Q s it stands for, and y's own Rayleigh quotient ρ = yᵀAy/yᵀy with
 * one more operator application. With a semiorthogonal basis, T is the projection of A onto it to
 * O(u‖A‖) and ρ = θ up to the basis' small departure from orthonormality; a tridiagonal that no
 * longer describes its basis (orthogonality lost unnoticed) shows as ρ far from θ.
 */
async function ritzConsistent(operator: GramOperator, vectors: VectorOps, theta: number, y: DeviceVector, n: number): Promise<boolean> {
  const image = vectors.alloc(n);
  try {
    await operator.apply(y, image);
    const rho = (await vectors.dot(y, image)) / (await vectors.dot(y, y));
    return Math.abs(rho - theta) <= RITZ_CONSISTENCY * Math.abs(theta);
  } finally {
    vectors.free(image);
  }
}

/** The top Ritz pair (θ, y = Q s) of a run's tridiagonal and basis; y is the caller's to free. */
function topRitzVector(vectors: VectorOps, basis: DeviceVector[], alphas: number[], betas: number[], n: number): { theta: number; y: DeviceVector } {
  const { values, vectors: ritzVectors } = tridiagonalEigen(alphas, betas, true);
  let top = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[top]) top = i;
  const y = vectors.alloc(n);
  vectors.combine(ritzVectors[top], basis, y); // one basis vector per α: the last step adds none
  return { theta: values[top], y };
}

/**
 * Simon's estimate of the Lanczos vectors' loss of orthogonality (H. D. Simon, "The Lanczos algorithm
 * with partial reorthogonalization", Math. Comp. 42, 1984): ω_{j,k} ≈ q_jᵀq_k follows
 *   β_j ω_{j+1,k} = β_k ω_{j,k+1} + (α_k − α_j) ω_{j,k} + β_{k−1} ω_{j,k−1} − β_{j−1} ω_{j−1,k} ± 2u‖A‖,
 * ω_{j+1,j} = u·√n·‖A‖/β_j, ω_{k,k} = 1, with u the relative error of a step (here the operator's:
 * float32 convolutions). While every |ω| ≤ √u the basis is semiorthogonal, and then the computed
 * tridiagonal is, to O(u‖A‖), the projection of A onto the span of the computed basis (Simon's
 * Theorem 4), as with full reorthogonalisation. Where the estimate passes √u, the new vector is
 * reorthogonalised against the whole basis, and so is the next one (its recurrence still carries
 * the old error); the estimates drop to u.
 */
class OrthogonalityEstimate {
  private previous: Float64Array;
  private current: Float64Array;
  private following = false;
  private newest = 0;
  /** Steps reorthogonalised so far. */
  count = 0;

  constructor(
    steps: number,
    private readonly n: number,
    private readonly unit: number,
  ) {
    this.previous = new Float64Array(steps + 1);
    this.current = new Float64Array(steps + 1);
    this.current[0] = 1;
  }

  /** With α_0..α_{j−1}, this step's α_j, β_0..β_{j−1} and β_j: whether q_{j+1} is to be reorthogonalised. */
  next(alphas: number[], alpha: number, betas: number[], beta: number, norm: number): boolean {
    const j = alphas.length;
    const u = this.unit;
    const next = new Float64Array(this.current.length);
    let worst = beta > 0 ? 0 : Infinity;
    if (beta > 0) {
      for (let k = 0; k < j; k++) {
        const recurrence = betas[k] * this.current[k + 1] + (alphas[k] - alpha) * this.current[k] + (k > 0 ? betas[k - 1] * this.current[k - 1] : 0) - betas[j - 1] * this.previous[k];
        next[k] = (recurrence + (recurrence < 0 ? -2 : 2) * u * norm) / beta;
        worst = Math.max(worst, Math.abs(next[k]));
      }
      next[j] = (u * Math.sqrt(this.n) * norm) / beta;
      worst = Math.max(worst, next[j]);
    }
    next[j + 1] = 1;
    this.newest = j + 1;
    this.previous = this.current;
    this.current = next;
    const due = this.following || !(worst <= Math.sqrt(u));
    this.following = due && !this.following;
    return due;
  }

  /** The newest vector was reorthogonalised against the whole basis: its estimates drop to u. */
  reorthogonalised() {
    this.count++;
    for (let k = 0; k < this.newest; k++) this.current[k] = this.unit;
  }
}

/**
 * `op` on the entries of `support` only (dimension `dim`, its nonzero count): x ↦ P op(Pᵀx) with P
 * the gather onto the support. Equals `op` on vectors that vanish off the support when `op`'s
 * outputs do too (a Gram operator D Aᵀ Λ² A D with D = the support). Does not own `op`.
 */
function compressedOperator(op: GramOperator, vectors: VectorOps, support: Float32Array, dim: number): GramOperator & { expand(x: DeviceVector, out: DeviceVector): void } {
  const indices = new Int32Array(dim);
  for (let i = 0, k = 0; i < support.length; i++) if (support[i] !== 0) indices[k++] = i;
  const full = vectors.alloc(op.dim);
  const fullOut = vectors.alloc(op.dim);
  return {
    dim,
    async apply(x, out) {
      vectors.scatter!(x, indices, full);
      await op.apply(full, fullOut);
      vectors.gather!(fullOut, indices, out);
    },
    /** x on the support ↦ the full vector (zero off the support). */
    expand(x, out) {
      vectors.scatter!(x, indices, out);
    },
    dispose() {
      vectors.free(full);
      vectors.free(fullOut);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The solver that certifies every norm it returns.

/**
 * The solver whose norms are certified upper bounds: the smallest of the deterministic certificates
 * (and, in probabilistic mode, the KW certificate) that apply to the layer. No warm starts: KW needs
 * a Gaussian start independent of the operator; each call draws the next seed of its stream.
 */
export class CertifiedSolver implements NormSolver {
  private seed: number;

  /**
   * @param topVectors receives each KW run's top Ritz vector with the norm's key (and owns it): a
   *   warm start for the estimates of the same norm at a nearby ε (certify.ts hands them to the
   *   radius search's estimator). The certificates do not depend on it.
   */
  constructor(
    private readonly certBackend: Backend,
    private readonly certSettings: SpectralSettings,
    readonly certificate: CertificateSettings,
    private readonly topVectors?: (key: string, vector: DeviceVector) => void,
  ) {
    this.seed = certificate.seed ?? Math.floor(Math.random() * 2 ** 31);
  }

  get tolerance(): number {
    return this.certSettings.tolerance;
  }

  dispose(): void {}

  async norm(key: string, layerIndex: number, layer: AffineLayer, domainMask: Float32Array | null, slopeSquared: Float32Array | null, precision: NormPrecision = 'full'): Promise<SpectralNormReport> {
    const probabilistic = this.certificate.mode === 'probabilistic';
    const candidates: { value: number; certificate: string; failure: number; iterations: number }[] = [];
    // Gram iteration costs 12 squarings of its matrix: in probabilistic mode only where that is
    // cheaper than KW's Lanczos run; deterministic mode has nothing better for dense layers.
    const gram = denseGramNorm(layer, domainMask, slopeSquared, 12, probabilistic ? GRAM_MAX_DIM_PROBABILISTIC : GRAM_MAX_DIM);
    if (gram !== null) candidates.push({ value: gram, certificate: 'deterministic:gram', failure: 0, iterations: 0 });
    else if (!probabilistic) candidates.push({ value: await collatzWielandtNorm(this.certBackend, layer, domainMask, slopeSquared), certificate: 'deterministic:collatz-wielandt', failure: 0, iterations: 30 });
    if (probabilistic && gram === null) {
      // Collatz–Wielandt bounds || |M| ||, about 3× the norm of a convolution: it is not computed
      // where the KW certificate is (measured on both fixtures and the Fashion-MNIST CNN, three ε
      // and the radius: it was smaller on 4 of 120 norms, by 2% once and by under 1e-4 otherwise).
      const op = await this.certBackend.gramOperator(layer, domainMask, slopeSquared);
      try {
        const seed = this.seed++;
        const targetEpsilon = precision === 'full' ? DEFAULT_KW_EPSILON : COARSE_KW_EPSILON;
        // Partial reorthogonalisation where the Lanczos vectors are double precision (the CPU's).
        const partial = this.certBackend.name === 'cpu' ? { unit: CPU_OPERATOR_UNIT } : undefined;
        const kw = await kwLargestEigenvalue(op, this.certBackend.vectors, { delta: this.certificate.delta, seed, support: domainMask, signal: this.certSettings.signal, targetEpsilon, partial, topVector: this.topVectors !== undefined });
        if (kw.vector) this.topVectors!(key, kw.vector);
        this.certSettings.onIteration?.(layerIndex, kw.steps);
        if (Number.isFinite(kw.bound)) {
          candidates.push({ value: Math.sqrt(kw.bound), certificate: `probabilistic:kw(delta=${this.certificate.delta})`, failure: this.certificate.delta, iterations: kw.steps });
        }
      } finally {
        op.dispose();
      }
    }
    if (candidates.length === 0) {
      // KW's inflation reached 1 (tiny step budgets only): fall back on the deterministic bound.
      candidates.push({ value: await collatzWielandtNorm(this.certBackend, layer, domainMask, slopeSquared), certificate: 'deterministic:collatz-wielandt', failure: 0, iterations: 30 });
    }
    const best = candidates.reduce((a, b) => (b.value < a.value ? b : a));
    return {
      value: best.value,
      quality: 'upper',
      certificate: best.certificate,
      failureProbability: best.failure,
      iterations: best.iterations,
      relativeChange: 0,
      relativeResidual: 0,
      converged: true,
    };
  }
}
