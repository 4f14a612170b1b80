/**
 * Seeded pseudo-random numbers for the model zoo: mulberry32 for uniforms, Box–Muller for normals.
 * Deterministic across platforms (32-bit integer arithmetic only), so a zoo model and a random input
 * are the same everywhere for the same seed.
 */

export class SeededRandom {
  private state: number;
  private spare: number | null = null;

  constructor(seed: number) {
    // Mix the seed so that nearby seeds start far apart.
    this.state = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal. */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    const u = 1 - this.uniform(); // (0, 1]: log(u) is finite
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** out[i] ← std·N(0, 1). */
  fillNormal(out: Float32Array, std: number): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = std * this.normal();
    return out;
  }

  /** out[i] ← U(−bound, bound). */
  fillUniform(out: Float32Array, bound: number): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = bound * (2 * this.uniform() - 1);
    return out;
  }
}
