/**
 * The ReLU's difference quotient over a pre-activation interval (docs/tightness.md §1) and the
 * largest error of the unit linearised with a fixed slope (§3). Scalar functions, one unit at a time.
 */

/** Slope interval [lo, hi] of the ReLU difference quotient (relu(y) − relu(y0))/(y − y0) over y in [y̌, ŷ] (§1). */
export function slopeInterval(y0: number, yCheck: number, yHat: number): [number, number] {
  if (yHat <= 0) return [0, 0];
  if (yCheck >= 0) return [1, 1];
  if (y0 > 0) return [y0 / (y0 - yCheck), 1];
  return [0, yHat / (yHat - y0)];
}

/**
 * max |relu(y) − relu(y0) − m·(y − y0)| over y in [y̌, ŷ]: the largest error of the linearised unit
 * (slope m) over the ball, in absolute terms (§3). Piecewise linear: the maximum is at an end or at 0.
 */
export function linearisationError(y0: number, yCheck: number, yHat: number, m: number): number {
  const phi = (y: number) => Math.abs(Math.max(0, y) - Math.max(0, y0) - m * (y - y0));
  return Math.max(phi(yCheck), phi(yHat), yCheck < 0 && yHat > 0 ? phi(0) : 0);
}
