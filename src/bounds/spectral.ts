/**
 * Spectral norms ||Λ A D|| = sqrt(λ_max(D Aᵀ Λ² A D)) by restarted Lanczos with full
 * reorthogonalisation (method.md, "Computation at scale"), run to a stated tolerance instead of the
 * paper's fixed 100 power steps. A Ritz value never exceeds λ_max, so the result is an estimate from
 * below; its relative change over the last step and its relative residual are reported with it.
 */
import { CancelledError } from '../errors.js';
import type { DeviceVector, GramOperator, VectorOps } from '../backend/backend.js';

export interface EigenOptions {
  /** Stop when the norm estimate changed by less than this, relatively, over the last `window` steps. */
  tolerance: number;
  /** Steps over which the change is measured (default 5): one step can stall right after a restart. */
  window?: number;
  /** Most operator applications. */
  maxIterations: number;
  /** Lanczos vectors kept before a restart. */
  basisSize?: number;
  /** Start vector (not consumed); a random one when absent or orthogonal to the operator's range. */
  start?: DeviceVector;
  seed?: number;
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
export function tridiagonalEigen(diagonal: number[], offDiagonal: number[]): { values: Float64Array; vectors: Float64Array[] } {
  const n = diagonal.length;
  const d = Float64Array.from(diagonal);
  const e = new Float64Array(n);
  for (let i = 0; i < n - 1; i++) e[i] = offDiagonal[i];
  const V = Array.from({ length: n }, (_, i) => {
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
          for (let k = 0; k < n; k++) {
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
  const vectors = Array.from({ length: n }, (_, j) => Float64Array.from(V, (row) => row[j]));
  return { values: d, vectors };
}

/** Deterministic pseudo-random start vector (mulberry32), uniform in [−1, 1]. */
export function randomVector(n: number, seed: number): Float64Array {
  let a = seed >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

async function normalise(vectors: VectorOps, v: DeviceVector): Promise<number> {
  const norm = Math.sqrt(await vectors.dot(v, v));
  if (norm > 0) vectors.scale(1 / norm, v);
  return norm;
}

/** Largest eigenvalue of a symmetric positive semi-definite operator G = D Aᵀ Λ² A D. */
export async function largestEigenvalue(op: GramOperator, vectors: VectorOps, options: EigenOptions): Promise<EigenResult> {
  const n = op.dim;
  const basisSize = Math.max(3, Math.min(options.basisSize ?? 30, n));
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

  const window = options.window ?? 5;
  const history: number[] = []; // sqrt(θ) after each step, across restarts
  let relativeChange = Infinity;
  let relativeResidual = Infinity;
  let theta = 0;
  const w = vectors.alloc(n);
  const work = vectors.alloc(n);
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
      // Full reorthogonalisation, classical Gram–Schmidt applied twice.
      let alpha = 0;
      for (let pass = 0; pass < 2; pass++) {
        const c = await vectors.dots(w, basis);
        alpha += c[j];
        vectors.combine(c, basis, work);
        vectors.axpy(-1, work, w);
      }
      alphas.push(alpha);
      const beta = Math.sqrt(Math.max(0, await vectors.dot(w, w)));
      const { values, vectors: eigvecs } = tridiagonalEigen(alphas, betas);
      let top = 0;
      for (let k = 1; k < values.length; k++) if (values[k] > values[top]) top = k;
      theta = Math.max(0, values[top]);
      ritz = eigvecs[top];
      const residual = beta * Math.abs(ritz[ritz.length - 1]);
      const norm = Math.sqrt(theta);
      options.onIteration?.(iterations, norm);
      history.push(norm);
      relativeResidual = theta > 0 ? residual / theta : 0;
      // Convergence: in the first cycle, the change over the last `window` steps; after a restart the
      // first steps only re-explore the old subspace, so only a whole cycle's gain counts.
      const cycleEnd = j === basisSize - 1;
      const lag = cycle === 0 ? window : j + 1;
      const past = history.length > lag ? history[history.length - 1 - lag] : NaN;
      const change = norm > 0 && past > 0 ? Math.abs(norm - past) / norm : Infinity;
      if (cycle === 0 || cycleEnd) relativeChange = change;
      const invariant = beta <= 1e-13 * Math.max(theta, 1e-300);
      const settled = (cycle === 0 || cycleEnd) && change <= tolerance;
      if (invariant || settled || relativeResidual <= tolerance || iterations >= options.maxIterations) {
        done = true;
        if (invariant) relativeChange = 0;
        break;
      }
      betas.push(beta);
      const next = vectors.alloc(n);
      vectors.copy(w, next);
      vectors.scale(1 / beta, next);
      basis.push(next);
    }
    // Restart (or finish) from the Ritz vector of the largest Ritz value.
    const y = vectors.alloc(n);
    vectors.combine(ritz!, basis.slice(0, ritz!.length), y);
    await normalise(vectors, y);
    for (const b of basis) vectors.free(b);
    v = y;
    if (done) break;
  }
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
