/**
 * Small vector helpers for the searches (lower bounds, attacks): uniform points in an L2 ball,
 * Euclidean distances. Their random draws come from the seeded stream of src/random.ts, so each
 * result is reproducible.
 */
import { Rng } from '../random.js';

export function norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

/** ||a − b||, in float64 (the difference of two float32 values is exact there). */
export function distance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    s += d * d;
  }
  return Math.sqrt(s);
}

/** A direction uniform on the unit sphere. */
export function randomDirection(n: number, rng: Rng): Float64Array {
  const v = new Float64Array(n);
  for (;;) {
    for (let i = 0; i < n; i++) v[i] = rng.gaussian();
    const r = norm(v);
    if (r > 0) {
      for (let i = 0; i < n; i++) v[i] /= r;
      return v;
    }
  }
}

/** A point uniform in the ball { x : ||x − center|| ≤ radius } (radius·U^(1/n) along a random direction). */
export function pointInBall(center: Float32Array, radius: number, rng: Rng): Float32Array {
  const n = center.length;
  const dir = randomDirection(n, rng);
  const r = radius * Math.pow(rng.uniform(), 1 / n);
  return projectToBall(center, Float64Array.from(dir, (d, i) => center[i] + r * d), radius);
}

/**
 * The point of the ball { ||x − center|| ≤ radius } nearest to x (x itself when inside), rounded to
 * float32 and pulled in until the rounded point is inside too (rounding can push it out by about
 * ulp(x)·√n, which matters for small radii).
 */
export function projectToBall(center: Float32Array, x: ArrayLike<number>, radius: number): Float32Array {
  const d = distance(x, center);
  let s = d > radius ? radius / d : 1;
  for (let attempt = 0; attempt < 30; attempt++) {
    const out = center.map((c, i) => c + s * (x[i] - c));
    if (distance(out, center) <= radius) return out;
    s *= 1 - 2 ** (attempt - 30);
  }
  return Float32Array.from(center);
}
