/**
 * Seeded pseudo-random numbers for the model zoo: lipcert's one mulberry32 stream (src/random.ts)
 * with a mixed seed. Deterministic across platforms (32-bit integer arithmetic only), so a zoo model
 * and a random input are the same everywhere for the same seed.
 */
import { Rng } from '../../random.js';

export class SeededRandom extends Rng {
  constructor(seed: number) {
    // Mix the seed so that nearby seeds start far apart.
    super(Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) >>> 0);
  }

  /** Standard normal. */
  normal(): number {
    return this.gaussian();
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
