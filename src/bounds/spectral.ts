/**
 * Spectral norms ||Λ A D|| = sqrt(λ_max(D Aᵀ Λ² A D)) by thick-restart Lanczos with
 * reorthogonalisation (docs/method.md, "Computation at scale"), run to a stated tolerance instead of the
 * paper's fixed 100 power steps. A Ritz value never exceeds λ_max, so the result is an estimate from
 * below; its relative change over the last step and its relative residual are reported with it.
 */
import { CancelledError } from '../errors.js';
import { randomVector } from '../random.js';
import type { DeviceVector, GramOperator, VectorOps } from '../backend/backend.js';
import { ProjectedMatrix } from './projected.js';
import { requireFinite } from './norms.js';

export interface EigenOptions {
  /** Stop when the norm estimate changed by less than this, relatively, over the last `window` steps. */
  tolerance: number;
  /** Steps over which the change is measured (default 5): one step can stall right after a restart. */
  window?: number;
  /** Most operator applications. */
  maxIterations: number;
  /** Lanczos vectors kept before a restart (default 30). */
  basisSize?: number;
  /**
   * Most bytes the Lanczos basis may take (float64 vectors), default 384 MiB: for long vectors
   * (VGG-16's second convolution sees 3.2 M entries, 25 MB each) the basis shrinks to 15.
   */
  basisBytes?: number;
  /** Start vector (not consumed); a random one when absent or orthogonal to the operator's range. */
  start?: DeviceVector;
  seed?: number;
  /** Reorthogonalise against the whole basis (default: for vectors up to 2^16 entries). */
  fullReorthogonalisation?: boolean;
  signal?: AbortSignal;
  onIteration?: (iteration: number, estimate: number) => void;
}

export interface EigenResult {
  /** Largest Ritz value θ ≈ λ_max. */
  eigenvalue: number;
  /** Its Ritz vector, unit norm; owned by the caller (free it with VectorOps.free). */
  vector: DeviceVector;
  iterations: number;
  /** Relative change of sqrt(θ) over the last `window` steps. */
  relativeChange: number;
  /** ||G y − θ y|| / θ. */
  relativeResidual: number;
  converged: boolean;
}

/** Eigen-decomposition of a symmetric tridiagonal matrix (implicit QL, after JAMA's tql2). */
export function tridiagonalEigen(diagonal: number[], offDiagonal: number[], withVectors = true): { values: Float64Array; vectors: Float64Array[] } {
  const n = diagonal.length;
  const d = Float64Array.from(diagonal);
  const e = new Float64Array(n);
  for (let i = 0; i < n - 1; i++) e[i] = offDiagonal[i];
  // Without vectors the rotations skip V: O(n²) instead of O(n³).
  const V = Array.from({ length: withVectors ? n : 0 }, (_, i) => {
    const row = new Float64Array(n);
    row[i] = 1;
    return row;
  });
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n) {
      if (Math.abs(e[m]) <= eps * tst1) break;
      m++;
    }
    if (m > l) {
      let guard = 0;
      do {
        if (++guard > 200) break;
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        p = d[m];
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1];
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = Math.hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          for (let k = 0; k < V.length; k++) {
            h = V[k][i + 1];
            V[k][i + 1] = s * V[k][i] + c * h;
            V[k][i] = c * V[k][i] - s * h;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0;
  }
  // Column j of V is the eigenvector of d[j].
  const vectors = withVectors ? Array.from({ length: n }, (_, j) => Float64Array.from(V, (row) => row[j])) : [];
  return { values: d, vectors };
}

async function normalise(vectors: VectorOps, v: DeviceVector): Promise<number> {
  const norm = Math.sqrt(await vectors.dot(v, v));
  if (norm > 0) vectors.scale(1 / norm, v);
  return norm;
}

/**
 * Vectors up to this length are reorthogonalised against the whole basis at every step; longer ones
 * (ImageNet layers: 0.1–3.2 M entries) only against the kept Ritz vectors and the last two.
 */
export const FULL_REORTHOGONALISATION_MAX_LENGTH = 1 << 16;

export const DEFAULT_BASIS_SIZE = 30;
export const DEFAULT_BASIS_BYTES = 384 * 2 ** 20;

/** Lanczos vectors kept for vectors of length n: the requested count, capped by n and by memory. */
export function basisSizeFor(n: number, basisSize?: number, basisBytes = DEFAULT_BASIS_BYTES): number {
  return Math.max(3, Math.min(basisSize ?? DEFAULT_BASIS_SIZE, n, Math.floor(basisBytes / (8 * n))));
}

/** DGKS: orthogonalise again when a pass removed more than half of w's squared norm. */
const REORTHOGONALISE_BELOW = 0.5;

/** Ritz vectors kept across a thick restart (at most a quarter of the basis). */
const THICK_RESTART_KEEP = 5;

/**
 * Largest eigenvalue of a symmetric positive semi-definite operator G = D Aᵀ Λ² A D by thick-restart
 * Lanczos (Wu & Simon 2000). A restart keeps the top Ritz vectors, so the estimate never drops and
 * a cycle does not re-explore what the last one found.
 *
 * Each step: w = G v_j, the three-term recurrence with the known coefficients (w −= α v_j + β v_{j−1},
 * or the arrowhead couplings right after a restart), then one classical Gram–Schmidt pass against
 * the basis (all of it for short vectors, the kept Ritz vectors and the last two for long ones),
 * repeated when it cancelled much of w (DGKS, "twice is enough"). The Ritz value comes from the
 * projected matrix in O(basis) per step (bisection on its inertia), the Ritz vector by inverse
 * iteration (projected.ts); one dense eigen-decomposition per restart picks the vectors to keep.
 *
 * Stopping rule: the norm estimate sqrt(θ) changed by at most `tolerance`, relatively, over the last
 * `window` steps (the estimate is non-decreasing across steps and restarts), or the relative
 * residual ||G y − θ y||/θ is at most `tolerance`, or the Krylov space became invariant.
 */
export async function largestEigenvalue(op: GramOperator, vectors: VectorOps, options: EigenOptions): Promise<EigenResult> {
  const n = op.dim;
  const m = basisSizeFor(n, options.basisSize, options.basisBytes);
  const fullReorthogonalisation = options.fullReorthogonalisation ?? n <= FULL_REORTHOGONALISATION_MAX_LENGTH;
  const keep = Math.max(1, Math.min(THICK_RESTART_KEEP, Math.floor(m / 4)));
  const window = options.window ?? 5;
  const tolerance = options.tolerance;

  // Vectors are recycled through `spare`: a fresh one is 25 MB of page faults at ImageNet scale.
  const spare: DeviceVector[] = [];
  const take = () => spare.pop() ?? vectors.alloc(n);
  const start = take();
  const random = vectors.upload(randomVector(n, options.seed ?? 1));
  await normalise(vectors, random);
  // A warm start speeds convergence up but must never decide which eigenvalue is found: it is
  // mixed with an equal share of the fixed random start, so the start's component along every
  // eigenvector (the new top one included) is at least that of the random start alone, up to a
  // factor 1/√2 (docs/soundness.md §1). A warm start of zero, or none, leaves the random start.
  if (options.start) {
    vectors.copy(options.start, start);
    if ((await normalise(vectors, start)) > 0) vectors.axpy(1, random, start);
    else vectors.copy(random, start);
  } else {
    vectors.copy(random, start);
  }
  if (!((await normalise(vectors, start)) > 0)) vectors.copy(random, start); // warm = −random
  vectors.free(random);

  const H = new ProjectedMatrix();
  const history: number[] = []; // sqrt(θ) after each step, across restarts
  let basis: DeviceVector[] = [start];
  let iterations = 0;
  let relativeChange = Infinity;
  let relativeResidual = Infinity;
  let theta = 0;
  let w = take();
  let work = take();
  let result: DeviceVector | null = null;
  for (let cycle = 0; result === null; cycle++) {
    let ritz: Float64Array | null = null;
    let beta = 0;
    let done = false;
    for (let j = basis.length - 1; j < m; j++) {
      if (options.signal?.aborted) throw new CancelledError();
      await op.apply(basis[j], w);
      iterations++;
      const kept = H.kept.length;
      const t = j - kept; // index within the Lanczos part
      // The recurrence with its known coefficients.
      let alpha = await vectors.dot(basis[j], w);
      const known = [alpha];
      const knownVectors = [basis[j]];
      if (t > 0) {
        known.push(H.betas[t - 1]);
        knownVectors.push(basis[j - 1]);
      } else {
        for (let i = 0; i < kept; i++) {
          known.push(H.couplings[i]);
          knownVectors.push(basis[i]);
        }
      }
      vectors.combine([...known.map((c) => -c), 1], [...knownVectors, w], work);
      [w, work] = [work, w];
      // Gram–Schmidt against the basis (short vectors) or the kept vectors and the last two.
      const against = fullReorthogonalisation ? basis : restrictedBasis(basis, kept, j, cycle);
      let betaSquared = 0;
      for (let pass = 0; pass < 2; pass++) {
        const c = await vectors.dots(w, [...against, w]);
        const normSquared = c[against.length];
        let removed = 0;
        const combination = new Float64Array(against.length + 1);
        for (let i = 0; i < against.length; i++) {
          combination[i] = -c[i];
          removed += c[i] * c[i];
          if (against[i] === basis[j]) alpha += c[i];
        }
        combination[against.length] = 1;
        vectors.combine(combination, [...against, w], work);
        [w, work] = [work, w];
        // What is left, without another read-back: accurate once a pass removed little.
        betaSquared = Math.max(0, normSquared - removed);
        if (betaSquared >= REORTHOGONALISE_BELOW * normSquared) break;
      }
      H.alphas.push(requireFinite(alpha, 'Lanczos'));
      beta = Math.sqrt(requireFinite(betaSquared, 'Lanczos'));

      theta = Math.max(0, H.largestEigenvalue(theta));
      ritz = H.topEigenvector(theta);
      relativeResidual = theta > 0 ? (beta * Math.abs(ritz[ritz.length - 1])) / theta : 0;
      const norm = Math.sqrt(theta);
      options.onIteration?.(iterations, norm);
      history.push(norm);
      const past = history.length > window ? history[history.length - 1 - window] : NaN;
      relativeChange = norm > 0 && past > 0 ? Math.abs(norm - past) / norm : Infinity;
      const invariant = beta <= 1e-13 * Math.max(theta, 1e-300);
      if (invariant || relativeChange <= tolerance || relativeResidual <= tolerance || iterations >= options.maxIterations) {
        done = true;
        if (invariant) relativeChange = 0;
        break;
      }
      if (j < m - 1) {
        vectors.scale(1 / beta, w);
        basis.push(w);
        H.betas.push(beta);
        w = take();
      }
    }
    if (done) {
      const y = take();
      vectors.combine(ritz!, basis, y);
      await normalise(vectors, y);
      result = y;
      spare.push(...basis);
      break;
    }
    // Thick restart: the top `keep` Ritz vectors, then the residual direction w/β.
    const size = H.size;
    const { values, vectors: s } = symmetricEigen(size, H.dense());
    const order = Array.from(values.keys())
      .sort((a, b) => values[b] - values[a])
      .slice(0, Math.min(keep, size - 1));
    const ritzVectors = order.map((k) => {
      const y = take();
      vectors.combine(s[k], basis, y);
      return y;
    });
    spare.push(...basis);
    vectors.scale(1 / beta, w);
    basis = [...ritzVectors, w];
    w = take();
    H.restart(
      order.map((k) => values[k]),
      order.map((k) => beta * s[k][size - 1]),
    );
  }
  for (const b of spare) vectors.free(b);
  vectors.free(w);
  vectors.free(work);
  return {
    eigenvalue: theta,
    vector: result!,
    iterations,
    relativeChange: reportedChange(history, window, relativeChange),
    relativeResidual,
    converged: relativeChange <= tolerance || relativeResidual <= tolerance,
  };
}

/** Long vectors: the kept Ritz vectors, the last two Lanczos vectors, and in the first cycle the start. */
function restrictedBasis(basis: DeviceVector[], kept: number, j: number, cycle: number): DeviceVector[] {
  const indices = new Set<number>();
  for (let i = 0; i < kept; i++) indices.add(i);
  if (cycle === 0) indices.add(0);
  if (j - 1 >= 0) indices.add(j - 1);
  indices.add(j);
  return [...indices].sort((a, b) => a - b).map((i) => basis[i]);
}

/** Eigen-decomposition of a small dense symmetric matrix (cyclic Jacobi); columns of `vectors`. */
export function symmetricEigen(m: number, matrix: Float64Array): { values: Float64Array; vectors: Float64Array[] } {
  const a = Float64Array.from(matrix);
  const V = new Float64Array(m * m);
  for (let i = 0; i < m; i++) V[i * m + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    let scale = 0;
    for (let p = 0; p < m; p++) {
      scale += a[p * m + p] ** 2;
      for (let q = p + 1; q < m; q++) off += a[p * m + q] ** 2;
    }
    if (off <= 1e-30 * scale || off === 0) break;
    for (let p = 0; p < m; p++)
      for (let q = p + 1; q < m; q++) {
        const apq = a[p * m + q];
        if (apq === 0) continue;
        const tau = (a[q * m + q] - a[p * m + p]) / (2 * apq);
        const t = (tau >= 0 ? 1 : -1) / (Math.abs(tau) + Math.sqrt(1 + tau * tau));
        const c = 1 / Math.sqrt(1 + t * t);
        const sn = t * c;
        for (let k = 0; k < m; k++) {
          const akp = a[k * m + p];
          const akq = a[k * m + q];
          a[k * m + p] = c * akp - sn * akq;
          a[k * m + q] = sn * akp + c * akq;
        }
        for (let k = 0; k < m; k++) {
          const apk = a[p * m + k];
          const aqk = a[q * m + k];
          a[p * m + k] = c * apk - sn * aqk;
          a[q * m + k] = sn * apk + c * aqk;
          const vkp = V[k * m + p];
          const vkq = V[k * m + q];
          V[k * m + p] = c * vkp - sn * vkq;
          V[k * m + q] = sn * vkp + c * vkq;
        }
      }
  }
  const values = Float64Array.from({ length: m }, (_, i) => a[i * m + i]);
  const vectors = Array.from({ length: m }, (_, j) => Float64Array.from({ length: m }, (_, i) => V[i * m + j]));
  return { values, vectors };
}


/**
 * The relative change a finished iteration reports: over its last `window` steps, or, where it
 * stopped (on its residual, or invariant) before taking that many, over all the steps it took —
 * a finite number either way (the stopping rule itself never uses this).
 */
export function reportedChange(history: readonly number[], window: number, change: number): number {
  if (Number.isFinite(change)) return change;
  const norm = history[history.length - 1] ?? 0;
  const past = history[Math.max(0, history.length - 1 - window)] ?? norm;
  return norm > 0 ? Math.abs(norm - past) / norm : 0;
}
