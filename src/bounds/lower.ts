/**
 * Lower bounds on the local Lipschitz constant L(x0, ε) = sup_{||x − x0|| ≤ ε} ||f(x) − f(x0)|| / ||x − x0||
 * (docs/method.md, "Setting"), found by search as in Avant & Morgansen, TNNLS 2023, Sec. IX-A and Fig. 7
 * (gradient ascent and random sampling): every ratio at an actual point of the ball is a lower
 * bound, so these are labelled `kind: 'lower'` and sit below the certified bounds of certify().
 * - 'random': the best ratio over points drawn uniformly in the ball;
 * - 'gradient': projected gradient ascent on the ratio, with restarts: the first from a random point
 *   close to x0 (within min(ε, LOCAL_START)), where the ratio is near the norm of the Jacobian at x0
 *   and the ascent can grow outwards; the others from random points of the whole ball.
 *
 * Gradient of the ratio R(x) = ||e|| / ||Δ||, e = f(x) − f(x0), Δ = x − x0, J = ∂f/∂x:
 *   ∇R = Jᵀ(e/||e||) / ||Δ|| − R·Δ / ||Δ||²      (Jᵀ(·) is one vector–Jacobian product, backprop.ts)
 * Steps are normalised, x ← Π_ε(x + η ∇R/||∇R||), with Π_ε the projection onto the ball; a step is
 * kept only if R grows (η grows ×1.5 on success, halves on failure), so each restart climbs.
 * The search runs in float32 on the backend; the reported ratio is the best point's, evaluated again
 * in float64 (forward64.ts): at small ε, float32 rounding of f(x) − f(x0) moves a ratio by up to
 * about 1e-7·|f|/(ε·R) relative, enough to put a "lower bound" above the network's true constant
 * where a certified bound is nearly exact.
 */
import type { Backend } from '../backend/backend.js';
import { BadInputError, CancelledError } from '../errors.js';
import { forward64 } from '../model/forward64.js';
import { type Network, size } from '../model/ir.js';
import { evaluate, type ForwardTrace, forwardTrace, vjp } from './backprop.js';
import { validateEps } from './certify.js';
import { mixSeed, Rng } from '../random.js';
import { distance, norm, pointInBall, projectToBall } from './sampling.js';

export type LowerMethod = 'gradient' | 'random';
export const LOWER_METHODS: LowerMethod[] = ['gradient', 'random'];

export const DEFAULT_SAMPLES = 500;
export const DEFAULT_RESTARTS = 5;
export const DEFAULT_STEPS = 50;
export const DEFAULT_SEED = 1;
/** Radius of the first restart's start ball (large enough that x0 + Δ is not lost to float32 rounding). */
export const LOCAL_START = 1e-3;

export interface LowerBoundOptions {
  eps: number[];
  /** Default both, gradient first. */
  methods?: LowerMethod[];
  /** Points drawn by 'random' (default 500). */
  samples?: number;
  /** Restarts of 'gradient' (default 5). */
  restarts?: number;
  /** Ascent steps per restart (default 50). */
  steps?: number;
  /** Seed of every random draw (default 1). */
  seed?: number;
  signal?: AbortSignal;
}

export interface LowerBoundEntry {
  eps: number;
  method: LowerMethod;
  /** Always 'lower': a ratio attained at a point of the ball, so L(x0, ε) ≥ bound. */
  kind: 'lower';
  /** The best ratio ||f(x) − f(x0)|| / ||x − x0|| found. */
  bound: number;
  /** ||x − x0|| of the point that attained it. */
  distance: number;
  /** Forward passes spent (each gradient also costs one backward pass). */
  evaluations: number;
  seconds: number;
}

export interface LowerBoundsResult {
  /** Top-1 class at x0. */
  class: number;
  lower: LowerBoundEntry[];
  seed: number;
  backend: string;
  seconds: number;
}

function positiveInteger(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 1) throw new BadInputError(`${what} must be a positive integer, got ${value}`);
  return value;
}

function checkAbort(signal?: AbortSignal) {
  if (signal?.aborted) throw new CancelledError();
}

interface Best {
  bound: number;
  distance: number;
  /** The point that attained it (null: none yet). */
  point?: Float32Array | null;
}

/** R(x) = ||e||/||Δ||, with ||Δ|| and e = f(x) − f(x0). */
export interface Ratio {
  value: number;
  dist: number;
  diff: Float64Array;
}

/** The ratio at x, or null when x coincides with x0 (where it is undefined). */
export function ratio(fx: ArrayLike<number>, f0: ArrayLike<number>, x: Float32Array, x0: Float32Array): Ratio | null {
  const dist = distance(x, x0);
  if (!(dist > 0)) return null;
  const diff = Float64Array.from(fx, (v, i) => v - f0[i]);
  return { value: norm(diff) / dist, dist, diff };
}

async function randomSearch(network: Network, backend: Backend, x0: Float32Array, f0: Float32Array, eps: number, samples: number, rng: Rng, signal?: AbortSignal): Promise<Best & { evaluations: number }> {
  const best: Best = { bound: 0, distance: 0 };
  for (let s = 0; s < samples; s++) {
    if (s % 32 === 0) checkAbort(signal);
    const x = pointInBall(x0, eps, rng);
    const r = ratio(await evaluate(network, backend, x), f0, x, x0);
    if (r && r.value > best.bound) Object.assign(best, { bound: r.value, distance: r.dist, point: x });
  }
  return { ...best, evaluations: samples };
}

/** ∇R = Jᵀ(e/||e||)/||Δ|| − R·Δ/||Δ||² at the traced point x (see the header); null where e = 0. */
export async function ratioGradient(network: Network, backend: Backend, trace: ForwardTrace, x: Float32Array, x0: Float32Array, r: Ratio): Promise<Float64Array | null> {
  const eNorm = norm(r.diff);
  if (!(eNorm > 0)) return null;
  const jt = await vjp(network, backend, trace, Float32Array.from(r.diff, (v) => v / eNorm));
  return Float64Array.from(jt, (g, i) => g / r.dist - (r.value * (x[i] - x0[i])) / (r.dist * r.dist));
}

/** One ascent: R and ∇R at the current point, normalised steps kept only when R grows. */
async function gradientAscent(network: Network, backend: Backend, x0: Float32Array, f0: Float32Array, eps: number, start: Float32Array, steps: number, signal?: AbortSignal): Promise<Best & { evaluations: number }> {
  let evaluations = 0;
  const at = async (x: Float32Array) => {
    evaluations++;
    const trace = await forwardTrace(network, backend, x);
    return { x, trace, r: ratio(trace.logits, f0, x, x0) };
  };
  let current = await at(start);
  if (!current.r) return { bound: 0, distance: 0, evaluations };
  let step = 0.5 * current.r.dist;
  let gradient: Float64Array | null = null;
  for (let k = 0; k < steps && step > 1e-6 * eps; k++) {
    checkAbort(signal);
    const r = current.r!;
    if (!gradient) {
      gradient = await ratioGradient(network, backend, current.trace, current.x, x0, r);
      if (!gradient) break; // f is constant here: the ratio has no ascent direction
    }
    const gNorm = norm(gradient);
    if (!(gNorm > 0)) break;
    const g = gradient;
    const trial = await at(projectToBall(x0, Float64Array.from(current.x, (v, i) => v + (step * g[i]) / gNorm), eps));
    if (trial.r && trial.r.value > r.value) {
      current = trial;
      gradient = null;
      step = Math.min(1.5 * step, 2 * eps);
    } else {
      step /= 2;
    }
  }
  return { bound: current.r!.value, distance: current.r!.dist, point: current.x, evaluations };
}

/** Lower bounds on L(x0, ε) for each ε and method, found by search (reproducible from `seed`). */
export async function lowerBounds(network: Network, x0: Float32Array, backend: Backend, options: LowerBoundOptions): Promise<LowerBoundsResult> {
  const started = performance.now();
  validateEps(options.eps);
  if (options.eps.length === 0) throw new BadInputError('give at least one eps');
  if (x0.length !== size(network.inputShape)) {
    throw new BadInputError(`input has ${x0.length} values, the model expects ${size(network.inputShape)} ([${network.inputShape}])`);
  }
  const methods = options.methods ?? LOWER_METHODS;
  for (const m of methods) if (!LOWER_METHODS.includes(m)) throw new BadInputError(`unknown lower-bound method '${m}' (expected ${LOWER_METHODS.join(', ')})`);
  const samples = positiveInteger(options.samples ?? DEFAULT_SAMPLES, 'samples');
  const restarts = positiveInteger(options.restarts ?? DEFAULT_RESTARTS, 'restarts');
  const steps = positiveInteger(options.steps ?? DEFAULT_STEPS, 'steps');
  const seed = options.seed ?? DEFAULT_SEED;
  if (!Number.isInteger(seed)) throw new BadInputError(`seed must be an integer, got ${seed}`);

  await backend.prepare(network);
  const f0 = await evaluate(network, backend, x0);
  let cls = 0;
  for (let i = 1; i < f0.length; i++) if (f0[i] > f0[cls]) cls = i;

  const lower: LowerBoundEntry[] = [];
  let f64: Float64Array | undefined;
  for (const eps of options.eps) {
    for (const method of methods) {
      const t0 = performance.now();
      // One stream per (seed, ε, method): a result does not depend on which others were asked for.
      const rng = new Rng(mixSeed(seed, eps, LOWER_METHODS.indexOf(method)));
      let best: Best & { evaluations: number };
      if (method === 'random') {
        best = await randomSearch(network, backend, x0, f0, eps, samples, rng, options.signal);
      } else {
        best = { bound: 0, distance: 0, evaluations: 0 };
        for (let r = 0; r < restarts; r++) {
          const start = pointInBall(x0, r === 0 ? Math.min(eps, LOCAL_START) : eps, rng);
          const run = await gradientAscent(network, backend, x0, f0, eps, start, steps, options.signal);
          best.evaluations += run.evaluations;
          if (run.bound > best.bound) Object.assign(best, { bound: run.bound, distance: run.distance, point: run.point });
        }
      }
      // The best point's ratio in float64: what the network's function attains there.
      f64 ??= forward64(network, x0).logits;
      const bound = best.point ? (ratio(forward64(network, best.point).logits, f64, best.point, x0)?.value ?? 0) : 0;
      lower.push({ eps, method, kind: 'lower', bound, distance: best.distance, evaluations: best.evaluations, seconds: (performance.now() - t0) / 1000 });
    }
  }
  return { class: cls, lower, seed, backend: backend.name, seconds: (performance.now() - started) / 1000 };
}
