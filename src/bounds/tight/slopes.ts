/**
 * Per-unit quantities of the tight method's activations (docs/tightness.md §1, §3; docs/graphs.md §3
 * and §7), one unit at a time: the interval of the difference quotient (σ(y) − σ(y0))/(y − y0) over
 * the unit's pre-activation range, the largest error of the unit linearised with a fixed slope, the
 * image of the range, and whether the range crosses a kink. ReLU keeps its own closed forms (the
 * paper's case); the other activations go through activation-slopes.ts's enclosures.
 */
import { applyScalar, type ScalarActivation } from '../../model/activations.js';
import { breakpoints, constantOver, quotientRange } from '../activation-slopes.js';

/** Slope interval [lo, hi] of the ReLU difference quotient (relu(y) − relu(y0))/(y − y0) over y in [y̌, ŷ] (§1). */
export function slopeInterval(y0: number, yCheck: number, yHat: number): [number, number] {
  return [slopeLower(y0, yCheck, yHat), slopeUpper(y0, yCheck, yHat)];
}

/** slopeInterval's lower end, alone (hot loops: no tuple per unit). */
export function slopeLower(y0: number, yCheck: number, yHat: number): number {
  if (yHat <= 0) return 0;
  if (yCheck >= 0) return 1;
  return y0 > 0 ? y0 / (y0 - yCheck) : 0;
}

/** slopeInterval's upper end, alone. */
export function slopeUpper(y0: number, yCheck: number, yHat: number): number {
  if (yHat <= 0) return 0;
  if (yCheck >= 0 || y0 > 0) return 1;
  return yHat / (yHat - y0);
}

/**
 * max |relu(y) − relu(y0) − m·(y − y0)| over y in [y̌, ŷ]: the largest error of the linearised unit
 * (slope m) over the ball, in absolute terms (§3). Piecewise linear: the maximum is at an end or at 0.
 */
export function linearisationError(y0: number, yCheck: number, yHat: number, m: number): number {
  const phi = (y: number) => Math.abs(Math.max(0, y) - Math.max(0, y0) - m * (y - y0));
  return Math.max(phi(yCheck), phi(yHat), yCheck < 0 && yHat > 0 ? phi(0) : 0);
}

/**
 * [s_lo, s_hi] ⊇ every difference quotient of σ over [y̌, ŷ] ∋ y0; [0, 0] where σ is constant on the
 * range (the unit's output is known constant). ReLU: `slopeInterval`; the others: `quotientRange`.
 */
export function unitSlopeInterval(a: ScalarActivation, y0: number, yCheck: number, yHat: number): [number, number] {
  if (a.kind === 'relu') return slopeInterval(y0, yCheck, yHat);
  if (constantOver(a, yCheck, yHat)) return [0, 0];
  return quotientRange(a, y0, yCheck, yHat);
}

/**
 * max |σ(y) − σ(y0) − m·(y − y0)| over y in [y̌, ŷ], from above (§3 generalised). Piecewise linear σ:
 * σ(y) − m·y is piecewise linear, so the maximum of its distance from its value at y0 is at an end
 * or a kink. Sigmoid and tanh: σ(y) − σ(y0) = q·(y − y0) with q in [s_lo, s_hi], so the error is at
 * most max(s_hi − m, m − s_lo)·max(y0 − y̌, ŷ − y0).
 */
export function unitLinearisationError(a: ScalarActivation, y0: number, yCheck: number, yHat: number, m: number, slopes: [number, number]): number {
  if (a.kind === 'relu') return linearisationError(y0, yCheck, yHat, m);
  if (a.kind === 'sigmoid' || a.kind === 'tanh') return Math.max(slopes[1] - m, m - slopes[0], 0) * Math.max(y0 - yCheck, yHat - y0, 0);
  const s0 = applyScalar(a, y0);
  const phi = (y: number) => Math.abs(applyScalar(a, y) - s0 - m * (y - y0));
  let worst = Math.max(phi(yCheck), phi(yHat));
  for (const k of breakpoints(a)) if (k > yCheck && k < yHat) worst = Math.max(worst, phi(k));
  return worst;
}

/** Whether the range [y̌, ŷ] has a kink strictly inside (the unit may switch pieces over the set). */
export function mayBend(a: ScalarActivation, yCheck: number, yHat: number): boolean {
  return breakpoints(a).some((k) => k > yCheck && k < yHat);
}

/**
 * The image σ([y̌, ŷ]) as an interval: every activation here is monotone on each piece, so its
 * extremes are at the ends or the kinks (PReLU with a negative slope is not monotone overall).
 */
export function imageInterval(a: ScalarActivation, yCheck: number, yHat: number): [number, number] {
  let lo = Math.min(applyScalar(a, yCheck), applyScalar(a, yHat));
  let hi = Math.max(applyScalar(a, yCheck), applyScalar(a, yHat));
  for (const k of breakpoints(a)) {
    if (k > yCheck && k < yHat) {
      const v = applyScalar(a, k);
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  return [lo, hi];
}
