/**
 * The one seeded random generator of lipcert: a mulberry32 stream of uniform numbers, standard
 * normal draws by Box–Muller, seeds mixed from several numbers, and the uniform start vectors of
 * the eigen-solvers. 32-bit integer arithmetic only, so every stream is the same on every platform:
 * zoo weights, random inputs, Lanczos starts, Gaussian certificate starts and the searches' draws
 * are reproducible from their seeds.
 */

/** A reproducible stream: uniform numbers in [0, 1) (mulberry32) and standard normal draws. */
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

/** A vector of n entries uniform in [−1, 1] (the eigen-solvers' random start). */
export function randomVector(n: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  return Float64Array.from({ length: n }, () => rng.uniform() * 2 - 1);
}
