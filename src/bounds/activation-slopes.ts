/**
 * Theorem 1 generalised (docs/graphs.md §3): for a unit with activation σ whose pre-activation ranges
 * over [y̌, ŷ] ∋ y0, every difference quotient q(y) = (σ(y) − σ(y0))/(y − y0), y ≠ y0 in the range,
 * lies in [q_lo, q_hi] (`quotientRange`), so |σ(y) − σ(y0)| ≤ λ·|y − y0| with λ = max(|q_lo|, |q_hi|)
 * (`slopeBound`), and Theorem 2's ||Λ A D|| bounds the layer with these λ.
 * - Piecewise linear σ (ReLU, LeakyReLU/PReLU, Clip): on each piece between consecutive points of
 *   {y̌, breakpoints, y0, ŷ}, σ is affine, so q(y) = c₁ + c₂/(y − y0) is monotone there (its pole y0
 *   is not inside the piece): q's extremes over the range are among q at y̌, ŷ and the breakpoints
 *   inside, and its one-sided limits at y0, the one-sided derivatives σ'(y0±).
 * - Sigmoid and tanh: q(y) is the mean of σ' over the segment between y0 and y (σ is smooth), so
 *   it lies between the smallest and largest σ' on [y̌, ŷ]; σ' is even and decreasing in |t|, so its
 *   largest value there is at the point nearest 0 and its smallest at the end farthest from 0.
 * `constantOver` says when σ is constant on the whole range (the unit's output is known constant:
 * its entry of the next mask D is 0): ReLU-like units below 0 and Clip outside [min, max]; LeakyReLU
 * with α ≠ 0, sigmoid and tanh never are (on a range of positive width).
 */
import { applyScalar, derivativeScalar, type ScalarActivation } from '../model/activations.js';

/** Relative widening of the smooth activations' derivative bounds, for Math.exp's rounding (a few ulp). */
const SMOOTH_ROUNDING = 8 * 2 ** -52;

/** The kinks of a piecewise linear activation (none for sigmoid and tanh). */
export function breakpoints(a: ScalarActivation): number[] {
  if (a.kind === 'relu' || a.kind === 'leakyrelu') return [0];
  if (a.kind === 'clip') return [a.min, a.max].filter(Number.isFinite);
  return [];
}

/** σ'(y+) and σ'(y−) of a piecewise linear σ. */
function oneSided(a: ScalarActivation, y: number): [number, number] {
  switch (a.kind) {
    case 'relu':
      return [y >= 0 ? 1 : 0, y > 0 ? 1 : 0];
    case 'leakyrelu':
      return [y >= 0 ? 1 : a.alpha, y > 0 ? 1 : a.alpha];
    case 'clip':
      return [y >= a.min && y < a.max ? 1 : 0, y > a.min && y <= a.max ? 1 : 0];
    default:
      throw new Error(`lipcert internal error: ${a.kind} is not piecewise linear`);
  }
}

/**
 * [q_lo, q_hi] ⊇ every (σ(y) − σ(y0))/(y − y0) with y ∈ [lo, hi], y ≠ y0 (lo ≤ y0 ≤ hi). The unit
 * must not be constant over the set for the one-sided derivatives to be limits of quotients; they
 * are included either way (a wider interval is still an enclosure).
 */
export function quotientRange(a: ScalarActivation, y0: number, lo: number, hi: number): [number, number] {
  if (a.kind === 'sigmoid' || a.kind === 'tanh') {
    const nearest = lo > 0 ? lo : hi < 0 ? hi : 0;
    const farthest = Math.abs(lo) > Math.abs(hi) ? lo : hi;
    const top = Math.min(a.kind === 'sigmoid' ? 0.25 : 1, derivativeScalar(a, nearest) * (1 + SMOOTH_ROUNDING));
    const bottom = Math.max(0, derivativeScalar(a, farthest) * (1 - SMOOTH_ROUNDING));
    return [bottom, top];
  }
  const [right, left] = oneSided(a, y0);
  let qLo = Math.min(right, left);
  let qHi = Math.max(right, left);
  const s0 = applyScalar(a, y0);
  const consider = (y: number) => {
    if (y === y0) return;
    const q = (applyScalar(a, y) - s0) / (y - y0);
    if (q < qLo) qLo = q;
    if (q > qHi) qHi = q;
  };
  consider(lo);
  consider(hi);
  for (const b of breakpoints(a)) if (b > lo && b < hi) consider(b);
  return [qLo, qHi];
}

/** λ of Theorem 1 generalised: the largest |difference quotient| over [lo, hi] ∋ y0. */
export function slopeBound(a: ScalarActivation, y0: number, lo: number, hi: number): number {
  const [qLo, qHi] = quotientRange(a, y0, lo, hi);
  return Math.max(Math.abs(qLo), Math.abs(qHi));
}

/** Whether σ is constant on [lo, hi]: then the unit's output is the same for every input of the set. */
export function constantOver(a: ScalarActivation, lo: number, hi: number): boolean {
  switch (a.kind) {
    case 'relu':
      return hi <= 0;
    case 'leakyrelu':
      return a.alpha === 0 && hi <= 0;
    case 'clip':
      return hi <= a.min || lo >= a.max;
    default:
      return false;
  }
}
