/**
 * Spectral norms ||Λ A D|| = sqrt(λ_max(D Aᵀ Λ² A D)) by restarted Lanczos with full
 * reorthogonalisation (method.md, "Computation at scale"), run to a stated tolerance instead of the
 * paper's fixed 100 power steps. A Ritz value never exceeds λ_max, so the result is an estimate from
 * below; its relative change over the last step and its relative residual are reported with it.
 */
import { CancelledError } from '../errors.js';
import { Rng } from './sampling.js';
import type { DeviceVector, GramOperator, VectorOps } from '../backend/backend.js';

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

/** Deterministic pseudo-random start vector (the searches' mulberry32 stream), uniform in [−1, 1]. */
export function randomVector(n: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  return Float64Array.from({ length: n }, () => rng.uniform() * 2 - 1);
}

async function normalise(vectors: VectorOps, v: DeviceVector): Promise<number> {
  const norm = Math.sqrt(await vectors.dot(v, v));
  if (norm > 0) vectors.scale(1 / norm, v);
  return norm;
}

/**
 * Vectors up to this length are reorthogonalised against the whole basis at every step; longer ones
 * (ImageNet layers: 0.1–3.2 M entries) only against the restart vector and the last two.
 */
export const FULL_REORTHOGONALISATION_MAX_LENGTH = 1 << 16;

export const DEFAULT_BASIS_SIZE = 30;
export const DEFAULT_BASIS_BYTES = 384 * 2 ** 20;

/** Lanczos vectors kept for vectors of length n: the requested count, capped by n and by memory. */
export function basisSizeFor(n: number, basisSize?: number, basisBytes = DEFAULT_BASIS_BYTES): number {
  return Math.max(3, Math.min(basisSize ?? DEFAULT_BASIS_SIZE, n, Math.floor(basisBytes / (8 * n))));
}

/** Steps between residual checks (each needs the Ritz vector: an O(j³) eigen-decomposition). */
const RESIDUAL_EVERY = 4;

/** DGKS: orthogonalise again when one pass removed more than half of w's squared norm. */
const REORTHOGONALISE_BELOW = 0.5;
/** Long vectors: again only when one pass removed more than 1 − 1e-4 of it (error ≤ eps·1e2). */
const LONG_REORTHOGONALISE_BELOW = 1e-4;

/** Largest eigenvalue of a symmetric positive semi-definite operator G = D Aᵀ Λ² A D. */
export async function largestEigenvalue(op: GramOperator, vectors: VectorOps, options: EigenOptions): Promise<EigenResult> {
  const n = op.dim;
  const basisSize = basisSizeFor(n, options.basisSize, options.basisBytes);
  const fullReorthogonalisation = options.fullReorthogonalisation ?? n <= FULL_REORTHOGONALISATION_MAX_LENGTH;
  const tolerance = options.tolerance;

  let v = options.start ? vectors.alloc(n) : vectors.upload(randomVector(n, options.seed ?? 1));
  if (options.start) vectors.copy(options.start, v);
  // The start must have a component in G's range; G's output is such a vector.
  const probe = vectors.alloc(n);
  await op.apply(v, probe);
  let iterations = 1;
  if ((await normalise(vectors, probe)) === 0 && options.start) {
    vectors.free(v);
    v = vectors.upload(randomVector(n, options.seed ?? 1));
    await op.apply(v, probe);
    iterations++;
    await normalise(vectors, probe);
  }
  vectors.free(v);
  v = probe;
  if ((await vectors.dot(v, v)) === 0) {
    // G is zero on everything we tried: its range is {0} (e.g. every slope is 0).
    return { eigenvalue: 0, vector: v, iterations, relativeChange: 0, relativeResidual: 0, converged: true };
  }

  if (!fullReorthogonalisation) return thickRestartLanczos(op, vectors, v, iterations, basisSize, options);

  const window = options.window ?? 5;
  const history: number[] = []; // sqrt(θ) after each step, across restarts
  let relativeChange = Infinity;
  let relativeResidual = Infinity;
  let theta = 0;
  // Vectors are recycled through `spare`: a fresh one is 25 MB of page faults at ImageNet scale.
  const spare: DeviceVector[] = [];
  const take = () => spare.pop() ?? vectors.alloc(n);
  let w = take();
  let work = take();
  for (let cycle = 0; ; cycle++) {
    const basis: DeviceVector[] = [v];
    const alphas: number[] = [];
    const betas: number[] = [];
    let ritz: Float64Array | null = null;
    let done = false;
    for (let j = 0; j < basisSize; j++) {
      if (options.signal?.aborted) throw new CancelledError();
      await op.apply(basis[j], w);
      iterations++;
      // Full reorthogonalisation by classical Gram–Schmidt, repeated when it cancelled much of w
      // (the DGKS criterion; "twice is enough"); w ← w − Σ c_k b_k is one pass over the basis.
      let alpha = 0;
      let betaSquared = 0;
      let normSquared = await vectors.dot(w, w);
      for (let pass = 0; pass < 2; pass++) {
        const c = await vectors.dots(w, basis);
        alpha += c[j];
        const coefficients = new Float64Array(basis.length + 1);
        for (let k = 0; k < basis.length; k++) coefficients[k] = -c[k];
        coefficients[basis.length] = 1;
        vectors.combine(coefficients, [...basis, w], work);
        [w, work] = [work, w];
        betaSquared = Math.max(0, await vectors.dot(w, w));
        if (betaSquared >= REORTHOGONALISE_BELOW * normSquared) break;
        normSquared = betaSquared;
      }
      alphas.push(alpha);
      const beta = Math.sqrt(betaSquared);
      // Ritz values every step (O(j²)); the Ritz vector, and with it the residual, only where it is
      // needed: every RESIDUAL_EVERY steps, at a cycle's end, and when the iteration stops.
      const { values } = tridiagonalEigen(alphas, betas, false);
      let top = 0;
      for (let k = 1; k < values.length; k++) if (values[k] > values[top]) top = k;
      theta = Math.max(0, values[top]);
      const norm = Math.sqrt(theta);
      options.onIteration?.(iterations, norm);
      history.push(norm);
      // Convergence: in the first cycle, the change over the last `window` steps; after a restart the
      // first steps only re-explore the old subspace, so only a whole cycle's gain counts.
      const cycleEnd = j === basisSize - 1;
      const lag = cycle === 0 ? window : j + 1;
      const past = history.length > lag ? history[history.length - 1 - lag] : NaN;
      const change = norm > 0 && past > 0 ? Math.abs(norm - past) / norm : Infinity;
      if (cycle === 0 || cycleEnd) relativeChange = change;
      const invariant = beta <= 1e-13 * Math.max(theta, 1e-300);
      const settled = (cycle === 0 || cycleEnd) && change <= tolerance;
      const stopping = invariant || settled || iterations >= options.maxIterations;
      if (stopping || cycleEnd || j % RESIDUAL_EVERY === RESIDUAL_EVERY - 1) {
        const full = tridiagonalEigen(alphas, betas, true);
        top = 0;
        for (let k = 1; k < full.values.length; k++) if (full.values[k] > full.values[top]) top = k;
        ritz = full.vectors[top];
        relativeResidual = theta > 0 ? (beta * Math.abs(ritz[ritz.length - 1])) / theta : 0;
      }
      if (stopping || relativeResidual <= tolerance) {
        done = true;
        if (invariant) relativeChange = 0;
        break;
      }
      betas.push(beta);
      vectors.scale(1 / beta, w);
      basis.push(w);
      w = take();
    }
    // Restart (or finish) from the Ritz vector of the largest Ritz value.
    const y = take();
    vectors.combine(ritz!, basis.slice(0, ritz!.length), y);
    await normalise(vectors, y);
    spare.push(...basis);
    v = y;
    if (done) break;
  }
  for (const b of spare) vectors.free(b);
  vectors.free(w);
  vectors.free(work);
  return {
    eigenvalue: theta,
    vector: v,
    iterations,
    relativeChange,
    relativeResidual,
    converged: relativeChange <= tolerance || relativeResidual <= tolerance,
  };
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

/** Ritz vectors kept across a thick restart. */
const THICK_RESTART_KEEP = 5;

/**
 * Long vectors (ImageNet layers): thick-restart Lanczos (Wu & Simon 2000). A restart keeps the top
 * Ritz vectors, so a cycle does not re-explore what the last one found; each step orthogonalises
 * against the kept Ritz vectors and the last two Lanczos vectors only, O(keep·n) instead of
 * O(basis·n). The projected matrix is arrowhead plus tridiagonal, held dense and solved by Jacobi.
 * Stopping rule as in `largestEigenvalue`: change over the first cycle's window, then over a cycle.
 */
async function thickRestartLanczos(
  op: GramOperator,
  vectors: VectorOps,
  start: DeviceVector,
  startIterations: number,
  basisSize: number,
  options: EigenOptions,
): Promise<EigenResult> {
  const n = op.dim;
  const m = basisSize;
  const keep = Math.max(1, Math.min(THICK_RESTART_KEEP, Math.floor(m / 4)));
  const window = options.window ?? 5;
  const history: number[] = [];
  let iterations = startIterations;
  let relativeChange = Infinity;
  let relativeResidual = Infinity;
  let theta = 0;
  const spare: DeviceVector[] = [];
  const take = () => spare.pop() ?? vectors.alloc(n);
  let w = take();
  let work = take();
  // The basis: `kept` Ritz vectors first, then Lanczos vectors. H = Vᵀ G V (dense, m×m).
  let basis: DeviceVector[] = [start];
  let kept = 0;
  let H = new Float64Array(m * m);
  let result: DeviceVector | null = null;
  for (let cycle = 0; ; cycle++) {
    let eig: { values: Float64Array; vectors: Float64Array[] } | null = null;
    let top = 0;
    let beta = 0;
    let size = 0;
    let done = false;
    const firstStep = basis.length - 1;
    for (let j = firstStep; j < m; j++) {
      if (options.signal?.aborted) throw new CancelledError();
      await op.apply(basis[j], w);
      iterations++;
      // Orthogonalise against the kept Ritz vectors (whose couplings to basis[kept] are the
      // arrowhead) and the last two; at the first step after a restart, against all of them.
      const indices = j === kept ? basis.map((_, i) => i) : [...Array.from({ length: kept }, (_, i) => i), ...(j - 1 >= kept ? [j - 1] : []), j];
      if (cycle === 0 && j >= 3) indices.splice(0, indices.length, 0, j - 1, j);
      else if (cycle === 0) indices.splice(0, indices.length, ...basis.map((_, i) => i));
      const against = indices.map((i) => basis[i]);
      const coefficient = new Float64Array(against.length);
      let betaSquared = 0;
      for (let pass = 0; pass < 2; pass++) {
        const c = await vectors.dots(w, [...against, w]);
        const normSquared = c[against.length];
        let removed = 0;
        const combination = new Float64Array(against.length + 1);
        for (let k = 0; k < against.length; k++) {
          combination[k] = -c[k];
          removed += c[k] * c[k];
          coefficient[k] += c[k];
        }
        combination[against.length] = 1;
        vectors.combine(combination, [...against, w], work);
        [w, work] = [work, w];
        betaSquared = Math.max(0, normSquared - removed);
        if (betaSquared >= LONG_REORTHOGONALISE_BELOW * normSquared) break;
      }
      // Column j of H: the diagonal from this step; the couplings to earlier vectors are known from
      // their own steps (symmetry), except right after a restart where the arrowhead is recomputed.
      H[j * m + j] = coefficient[indices.indexOf(j)];
      if (j === kept) {
        for (let i = 0; i < kept; i++) H[i * m + j] = H[j * m + i] = coefficient[i];
      }
      beta = Math.sqrt(betaSquared);
      size = j + 1;
      const block = new Float64Array(size * size);
      for (let r = 0; r < size; r++) for (let c = 0; c < size; c++) block[r * size + c] = H[r * m + c];
      eig = symmetricEigen(size, block);
      top = 0;
      for (let k = 1; k < size; k++) if (eig.values[k] > eig.values[top]) top = k;
      theta = Math.max(0, eig.values[top]);
      const norm = Math.sqrt(theta);
      options.onIteration?.(iterations, norm);
      history.push(norm);
      relativeResidual = theta > 0 ? (beta * Math.abs(eig.vectors[top][size - 1])) / theta : 0;
      const stepsThisCycle = j - firstStep + 1;
      const cycleEnd = j === m - 1;
      const lag = cycle === 0 ? window : stepsThisCycle;
      const past = history.length > lag ? history[history.length - 1 - lag] : NaN;
      const change = norm > 0 && past > 0 ? Math.abs(norm - past) / norm : Infinity;
      if (cycle === 0 || cycleEnd) relativeChange = change;
      const invariant = beta <= 1e-13 * Math.max(theta, 1e-300);
      const settled = (cycle === 0 || cycleEnd) && change <= options.tolerance;
      if (invariant || settled || relativeResidual <= options.tolerance || iterations >= options.maxIterations) {
        done = true;
        if (invariant) relativeChange = 0;
        break;
      }
      if (j < m - 1) {
        const next = w;
        vectors.scale(1 / beta, next);
        basis.push(next);
        H[j * m + j + 1] = H[(j + 1) * m + j] = beta;
        w = take();
      }
    }
    const { values, vectors: s } = eig!;
    if (done) {
      const y = take();
      vectors.combine(s[top], basis.slice(0, size), y);
      await normalise(vectors, y);
      result = y;
      spare.push(...basis);
      break;
    }
    // Thick restart: the top `keep` Ritz vectors, then the residual direction w/β.
    const order = Array.from(values.keys()).sort((a, b) => values[b] - values[a]).slice(0, Math.min(keep, size - 1));
    const ritzVectors = order.map((k) => {
      const y = take();
      vectors.combine(s[k], basis, y);
      return y;
    });
    spare.push(...basis);
    vectors.scale(1 / beta, w);
    basis = [...ritzVectors, w];
    w = take();
    kept = ritzVectors.length;
    H = new Float64Array(m * m);
    order.forEach((k, i) => {
      H[i * m + i] = values[k];
      H[i * m + kept] = H[kept * m + i] = beta * s[k][size - 1];
    });
  }
  for (const b of spare) vectors.free(b);
  vectors.free(w);
  vectors.free(work);
  return { eigenvalue: theta, vector: result!, iterations, relativeChange, relativeResidual, converged: relativeChange <= options.tolerance || relativeResidual <= options.tolerance };
}
