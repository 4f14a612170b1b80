/**
 * The small projected matrix H = Vᵀ G V of thick-restart Lanczos (Wu & Simon 2000) and the few
 * things Lanczos asks of it at every step, each in O(size) instead of a dense eigen-decomposition:
 *
 *   H = [ diag(θ_1..θ_k)   s              ]   k kept Ritz values θ_i with couplings s_i to the first
 *       [ sᵀ               α_0  β_0        ]   new Lanczos vector (an arrowhead), then the usual
 *       [                  β_0  α_1  β_1   ]   tridiagonal of the Lanczos recurrence.
 *       [                       ...        ]
 *
 * - `negativeCount(σ)`: the inertia of H − σI from its LDLᵀ factorisation (Sylvester's law), the
 *   kept rows eliminated first: the number of eigenvalues below σ;
 * - `largestEigenvalue()`: bisection on that count, to a few ulps;
 * - `topEigenvector(θ)`: inverse iteration with the same elimination order (H − σI is negative
 *   definite for σ just above λ_max, so no pivoting is needed);
 * - `dense()`: the full matrix, for the one dense eigen-decomposition per restart.
 */

/** Pivots smaller than this (relative to the matrix's scale) are nudged off zero. */
const PIVOT_FLOOR = 2 ** -104;

export class ProjectedMatrix {
  /** Kept Ritz values θ_i. */
  readonly kept: number[] = [];
  /** Couplings s_i of the kept Ritz vectors to the first Lanczos vector. */
  readonly couplings: number[] = [];
  /** Diagonal of the Lanczos part. */
  readonly alphas: number[] = [];
  /** Off-diagonal of the Lanczos part: betas[t] couples Lanczos vectors t and t + 1. */
  readonly betas: number[] = [];

  get size(): number {
    return this.kept.length + this.alphas.length;
  }

  /** Forget the Lanczos part and keep `values` with their `couplings` (a thick restart). */
  restart(values: number[], couplings: number[]): void {
    this.kept.splice(0, this.kept.length, ...values);
    this.couplings.splice(0, this.couplings.length, ...couplings);
    this.alphas.length = 0;
    this.betas.length = 0;
  }

  /** max_i Σ_j |H_ij| (a bound on every eigenvalue's magnitude, Gershgorin). */
  private scale(): number {
    const k = this.kept.length;
    const a = this.alphas.length;
    let coupling = 0;
    let best = 0;
    for (let i = 0; i < k; i++) {
      coupling += Math.abs(this.couplings[i]);
      best = Math.max(best, Math.abs(this.kept[i]) + Math.abs(this.couplings[i]));
    }
    for (let t = 0; t < a; t++) {
      const row = Math.abs(this.alphas[t]) + (t > 0 ? Math.abs(this.betas[t - 1]) : coupling) + (t < a - 1 ? Math.abs(this.betas[t]) : 0);
      best = Math.max(best, row);
    }
    return best;
  }

  /** The number of eigenvalues of H below σ. */
  negativeCount(sigma: number, floor = PIVOT_FLOOR * Math.max(this.scale(), 1e-300)): number {
    const k = this.kept.length;
    const a = this.alphas.length;
    let count = 0;
    let arrow = 0;
    for (let i = 0; i < k; i++) {
      let p = this.kept[i] - sigma;
      if (Math.abs(p) < floor) p = -floor;
      if (p < 0) count++;
      arrow += (this.couplings[i] * this.couplings[i]) / p;
    }
    let d = 0;
    for (let t = 0; t < a; t++) {
      d = this.alphas[t] - sigma - (t === 0 ? arrow : (this.betas[t - 1] * this.betas[t - 1]) / d);
      if (Math.abs(d) < floor) d = -floor;
      if (d < 0) count++;
    }
    return count;
  }

  /**
   * λ_max(H) by bisection on the inertia, to a few ulps. `atLeast` (optional) is a value known not to
   * exceed it, such as the previous step's λ_max (eigenvalues interlace as H grows).
   */
  largestEigenvalue(atLeast?: number): number {
    const n = this.size;
    if (n === 0) return 0;
    const scale = this.scale();
    if (scale === 0) return 0;
    const floor = PIVOT_FLOOR * scale;
    let hi = scale * (1 + 4 * Number.EPSILON);
    let lo = -hi;
    if (atLeast !== undefined && atLeast > lo && atLeast < hi && this.negativeCount(atLeast, floor) < n) lo = atLeast;
    for (let iteration = 0; iteration < 2200; iteration++) {
      const mid = 0.5 * (lo + hi);
      if (mid <= lo || mid >= hi || hi - lo <= 4 * Number.EPSILON * Math.max(Math.abs(lo), Math.abs(hi))) break;
      if (this.negativeCount(mid, floor) >= n) hi = mid;
      else lo = mid;
    }
    return 0.5 * (lo + hi);
  }

  /** Solve (H − σI) y = b in the elimination order of `negativeCount`. */
  private solve(sigma: number, b: Float64Array, floor: number): Float64Array {
    const k = this.kept.length;
    const a = this.alphas.length;
    const y = new Float64Array(k + a);
    const pivots = new Float64Array(k);
    let arrow = 0;
    let rhs0 = a > 0 ? b[k] : 0;
    for (let i = 0; i < k; i++) {
      let p = this.kept[i] - sigma;
      if (Math.abs(p) < floor) p = -floor;
      pivots[i] = p;
      arrow += (this.couplings[i] * this.couplings[i]) / p;
      rhs0 -= (this.couplings[i] * b[i]) / p;
    }
    // Thomas algorithm on the Lanczos part, its first pivot carrying the eliminated arrow.
    const d = new Float64Array(a);
    const r = new Float64Array(a);
    for (let t = 0; t < a; t++) {
      let pivot: number;
      if (t === 0) {
        pivot = this.alphas[0] - sigma - arrow;
        r[0] = rhs0;
      } else {
        const f = this.betas[t - 1] / d[t - 1];
        pivot = this.alphas[t] - sigma - f * this.betas[t - 1];
        r[t] = b[k + t] - f * r[t - 1];
      }
      d[t] = Math.abs(pivot) < floor ? -floor : pivot;
    }
    for (let t = a - 1; t >= 0; t--) y[k + t] = (r[t] - (t < a - 1 ? this.betas[t] * y[k + t + 1] : 0)) / d[t];
    const first = a > 0 ? y[k] : 0;
    for (let i = 0; i < k; i++) y[i] = (b[i] - this.couplings[i] * first) / pivots[i];
    return y;
  }

  /** The unit eigenvector of the eigenvalue θ = λ_max(H), by two steps of inverse iteration. */
  topEigenvector(theta: number): Float64Array {
    const n = this.size;
    const scale = Math.max(this.scale(), 1e-300);
    const floor = PIVOT_FLOOR * scale;
    // Just above λ_max, H − σI is negative definite: each step multiplies the top component's
    // share by (λ_max − λ_2)/(σ − λ_max) ≥ 10¹² relative to the rest unless they are that close.
    const sigma = theta + 1e-12 * scale;
    let y: Float64Array = new Float64Array(n).fill(1 / Math.sqrt(n));
    for (let step = 0; step < 2; step++) {
      y = this.solve(sigma, y, floor);
      let norm = 0;
      for (let i = 0; i < n; i++) norm += y[i] * y[i];
      norm = Math.sqrt(norm);
      if (!(norm > 0) || !Number.isFinite(norm)) break;
      for (let i = 0; i < n; i++) y[i] /= norm;
    }
    return y;
  }

  /** H as a dense row-major size × size matrix. */
  dense(): Float64Array {
    const k = this.kept.length;
    const a = this.alphas.length;
    const n = k + a;
    const h = new Float64Array(n * n);
    for (let i = 0; i < k; i++) {
      h[i * n + i] = this.kept[i];
      if (a > 0) h[i * n + k] = h[k * n + i] = this.couplings[i];
    }
    for (let t = 0; t < a; t++) {
      h[(k + t) * n + k + t] = this.alphas[t];
      if (t < a - 1) h[(k + t) * n + k + t + 1] = h[(k + t + 1) * n + k + t] = this.betas[t];
    }
    return h;
  }
}
