/**
 * Seeded randomness and small vector helpers for the searches (lower bounds, attacks): a mulberry32
 * stream, Gaussian draws (Box–Muller), uniform points in an L2 ball, Euclidean distances.
 * Every search takes a seed, so each result is reproducible.
 */

/** A reproducible stream of uniform numbers in [0, 1) (mulberry32). */
export class Rng {
  private state: number;
  private spare: number | null = null;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  uniform(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** A standard normal draw. */
  gaussian(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    const u = 1 - this.uniform(); // (0, 1]
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

/**
 * A 32-bit seed derived from several numbers (e.g. the user's seed, ε and a method id), so that each
 * stream depends only on what it is for, not on what else was asked for in the same call.
 */
export function mixSeed(...values: number[]): number {
  const view = new DataView(new ArrayBuffer(8));
  let h = 0x811c9dc5; // FNV-1a over the float64 bytes
  for (const v of values) {
    view.setFloat64(0, v);
    for (let i = 0; i < 8; i++) {
      h ^= view.getUint8(i);
      h = Math.imul(h, 0x01000193);
    }
  }
  return h >>> 0;
}

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
