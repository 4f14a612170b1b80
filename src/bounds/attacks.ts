/**
 * Adversarial attacks: upper bounds on the smallest L2 perturbation that changes the top-1 class,
 * to set beside the certified radius of Proposition 6 (which bounds it from below).
 * Every attack descends the margin m(x) = f_c(x) − max_{j≠c} f_j(x) of the nominal class c (its
 * gradient is one vector–Jacobian product with cotangent e_c − e_j, backprop.ts):
 * - 'fgsm' (Goodfellow et al. 2015): the line x0 + t·s/||s||, s = −sign ∇m(x0);
 * - 'ifgsm' (Kurakin et al. 2017): sign steps of size 2τ/K clipped to the L∞ ball of radius τ;
 * - 'pgd' (Madry et al. 2018, L2): normalised steps of size 2.5r/K projected onto the L2 ball of radius r.
 * The size parameter (t, τ or r) is searched: start from the linearised estimate m/||∇m||_*, double
 * or halve to bracket the change of class, then bisect to a relative width. A point counts only if a
 * forward pass there gives another top-1 class; the result is the smallest ||x − x0|| among such points.
 * Inputs are not clipped to a pixel range: the attacks live in the same (normalised, unbounded)
 * input space as the certified radius.
 */
import type { Backend } from '../backend/backend.js';
import { BadInputError, CancelledError, invariant } from '../errors.js';
import { type Network, size } from '../model/ir.js';
import { evaluate, forwardTrace, vjp } from './backprop.js';
import { topTwo } from './certify.js';
import { distance, norm, projectToBall } from './sampling.js';

export type AttackMethod = 'fgsm' | 'ifgsm' | 'pgd';
export const ATTACK_METHODS: AttackMethod[] = ['fgsm', 'ifgsm', 'pgd'];

export const DEFAULT_ATTACK_STEPS = 20;
export const DEFAULT_SEARCH_TOLERANCE = 0.01;
export const DEFAULT_MAX_RUNS = 60;

export interface AttackOptions {
  /** Default all three. */
  methods?: AttackMethod[];
  /** Iterations K of 'ifgsm' and 'pgd' at each size (default 20). */
  steps?: number;
  /** Relative width at which the size search stops (default 0.01). */
  tolerance?: number;
  /** Most attack runs (one size each) per method in the search (default 60). */
  maxRuns?: number;
  signal?: AbortSignal;
}

export interface AttackEntry {
  method: AttackMethod;
  /** Always 'upper': a perturbation of this norm changes the class, so the minimal one is no larger. */
  kind: 'upper';
  /** ||x_adv − x0|| of the smallest adversarial point found (confirmed by a forward pass), or null. */
  perturbation: number | null;
  /** Top-1 class at that point, or null. */
  adversarialClass: number | null;
  /** Its L∞ norm, or null. */
  perturbationLinf: number | null;
  /** Attack runs (one size each) in the search, and forward passes in all (a gradient adds one backward pass). */
  runs: number;
  evaluations: number;
  seconds: number;
}

export interface AttacksResult {
  class: number;
  /** δ: top-1 minus top-2 logit at x0. */
  margin: number;
  attacks: AttackEntry[];
  backend: string;
  seconds: number;
}

/** The outcome of one attack at one size. */
export interface AttackRun {
  /** The first point reached with another top-1 class, or null. */
  adversarial: Float32Array | null;
  adversarialClass: number | null;
  evaluations: number;
}

interface Context {
  network: Network;
  backend: Backend;
  x0: Float32Array;
  cls: number;
  steps: number;
  signal?: AbortSignal;
}

/** Forward pass at x, its class, and (on request) ∇m(x) for the nominal class. */
async function marginGradient(ctx: Context, x: Float32Array): Promise<{ cls: number; margin: number; gradient: Float32Array }> {
  const trace = await forwardTrace(ctx.network, ctx.backend, x);
  const f = trace.logits;
  let rival = -1;
  for (let j = 0; j < f.length; j++) if (j !== ctx.cls && (rival < 0 || f[j] > f[rival])) rival = j;
  const cotangent = new Float32Array(f.length);
  cotangent[ctx.cls] = 1;
  cotangent[rival] = -1;
  return { cls: topTwo(f).cls, margin: f[ctx.cls] - f[rival], gradient: await vjp(ctx.network, ctx.backend, trace, cotangent) };
}

function sign(v: ArrayLike<number>): Float64Array {
  return Float64Array.from(v as ArrayLike<number>, (g) => (g > 0 ? 1 : g < 0 ? -1 : 0));
}

/** ŝ = −sign(∇m)/||sign(∇m)||: the unit FGSM direction. */
function fgsmDirection(gradient: Float32Array): Float64Array {
  const s = sign(gradient);
  const sn = norm(s);
  return s.map((v) => (sn > 0 ? -v / sn : 0));
}

/** FGSM at L2 size t: one forward pass at x0 + t·s/||s||. */
async function fgsmAt(ctx: Context, direction: Float64Array, t: number): Promise<AttackRun> {
  const x = projectToBall(ctx.x0, Float64Array.from(ctx.x0, (v, i) => v + t * direction[i]), t);
  const cls = topTwo(await evaluate(ctx.network, ctx.backend, x)).cls;
  return cls !== ctx.cls ? { adversarial: x, adversarialClass: cls, evaluations: 1 } : { adversarial: null, adversarialClass: null, evaluations: 1 };
}

/** Iterative FGSM in the L∞ ball of radius τ: K sign steps of 2τ/K, stopping at the first change of class. */
async function ifgsmAt(ctx: Context, tau: number): Promise<AttackRun> {
  const { x0 } = ctx;
  const alpha = (2 * tau) / ctx.steps;
  let x: Float32Array = Float32Array.from(x0);
  for (let k = 0; k < ctx.steps; k++) {
    if (ctx.signal?.aborted) throw new CancelledError();
    const { cls, gradient } = await marginGradient(ctx, x);
    if (cls !== ctx.cls) return { adversarial: x, adversarialClass: cls, evaluations: k + 1 };
    const s = sign(gradient);
    x = x.map((v, i) => Math.min(x0[i] + tau, Math.max(x0[i] - tau, v - alpha * s[i])));
  }
  const cls = topTwo(await evaluate(ctx.network, ctx.backend, x)).cls;
  return cls !== ctx.cls ? { adversarial: x, adversarialClass: cls, evaluations: ctx.steps + 1 } : { adversarial: null, adversarialClass: null, evaluations: ctx.steps + 1 };
}

/** PGD in the L2 ball of radius r: K normalised steps of 2.5r/K, stopping at the first change of class. */
async function pgdAt(ctx: Context, r: number): Promise<AttackRun> {
  const { x0 } = ctx;
  const alpha = (2.5 * r) / ctx.steps;
  let x: Float32Array = Float32Array.from(x0);
  for (let k = 0; k < ctx.steps; k++) {
    if (ctx.signal?.aborted) throw new CancelledError();
    const { cls, gradient } = await marginGradient(ctx, x);
    if (cls !== ctx.cls) return { adversarial: x, adversarialClass: cls, evaluations: k + 1 };
    const g = norm(gradient);
    if (!(g > 0)) break;
    x = projectToBall(x0, Float64Array.from(x, (v, i) => v - (alpha * gradient[i]) / g), r);
  }
  const cls = topTwo(await evaluate(ctx.network, ctx.backend, x)).cls;
  return cls !== ctx.cls ? { adversarial: x, adversarialClass: cls, evaluations: ctx.steps + 1 } : { adversarial: null, adversarialClass: null, evaluations: ctx.steps + 1 };
}

function check(network: Network, x0: Float32Array, options: AttackOptions) {
  if (x0.length !== size(network.inputShape)) {
    throw new BadInputError(`input has ${x0.length} values, the model expects ${size(network.inputShape)} ([${network.inputShape}])`);
  }
  for (const m of options.methods ?? []) if (!ATTACK_METHODS.includes(m)) throw new BadInputError(`unknown attack '${m}' (expected ${ATTACK_METHODS.join(', ')})`);
  const steps = options.steps ?? DEFAULT_ATTACK_STEPS;
  if (!Number.isInteger(steps) || steps < 1) throw new BadInputError(`steps must be a positive integer, got ${steps}`);
  const tolerance = options.tolerance ?? DEFAULT_SEARCH_TOLERANCE;
  if (!(tolerance > 0 && tolerance < 1)) throw new BadInputError(`tolerance must be in (0, 1), got ${tolerance}`);
  return { steps, tolerance };
}

async function context(network: Network, x0: Float32Array, backend: Backend, steps: number, signal?: AbortSignal): Promise<Context & { margin: number }> {
  await backend.prepare(network);
  const { cls, margin } = topTwo(await evaluate(network, backend, x0));
  return { network, backend, x0, cls, steps, signal, margin };
}

/** One attack at one size (t for FGSM, τ for iterative FGSM, r for PGD): for tests and for probing a radius. */
export async function attackAt(network: Network, x0: Float32Array, backend: Backend, method: AttackMethod, sizeParameter: number, options: Omit<AttackOptions, 'methods'> = {}): Promise<AttackRun> {
  const { steps } = check(network, x0, { ...options, methods: [method] });
  const ctx = await context(network, x0, backend, steps, options.signal);
  if (method === 'fgsm') {
    return fgsmAt(ctx, fgsmDirection((await marginGradient(ctx, x0)).gradient), sizeParameter);
  }
  return method === 'ifgsm' ? ifgsmAt(ctx, sizeParameter) : pgdAt(ctx, sizeParameter);
}

/**
 * Bracket and bisect the size at which `run` first succeeds; keep the adversarial point of least
 * L2 norm seen. Success need not be monotone in the size for iterative attacks: every point kept is
 * adversarial regardless.
 */
async function searchSize(start: number, run: (size: number) => Promise<AttackRun>, x0: Float32Array, tolerance: number, maxRuns: number, signal?: AbortSignal) {
  let best: { x: Float32Array; cls: number; norm: number } | null = null;
  let runs = 0;
  let evaluations = 0;
  const attempt = async (s: number) => {
    if (signal?.aborted) throw new CancelledError();
    runs++;
    const r = await run(s);
    evaluations += r.evaluations;
    if (r.adversarial) {
      const d = distance(r.adversarial, x0);
      if (!best || d < best.norm) best = { x: r.adversarial, cls: r.adversarialClass!, norm: d };
      return true;
    }
    return false;
  };
  let lo = 0;
  let hi = Infinity;
  let s = start;
  // Bracket: halve while successful, double while not (both ends capped by the budget).
  if (await attempt(s)) {
    hi = s;
    while (runs < maxRuns) {
      s /= 2;
      if (await attempt(s)) hi = s;
      else {
        lo = s;
        break;
      }
    }
  } else {
    lo = s;
    while (runs < maxRuns / 2) {
      s *= 2;
      if (await attempt(s)) {
        hi = s;
        break;
      }
      lo = s;
    }
  }
  while (Number.isFinite(hi) && lo > 0 && hi / lo - 1 > tolerance && runs < maxRuns) {
    const mid = (lo + hi) / 2;
    if (await attempt(mid)) hi = mid;
    else lo = mid;
  }
  return { best: best as { x: Float32Array; cls: number; norm: number } | null, runs, evaluations };
}

/** Each attack's smallest adversarial perturbation found (an upper bound on the minimal one). */
export async function attacks(network: Network, x0: Float32Array, backend: Backend, options: AttackOptions = {}): Promise<AttacksResult> {
  const started = performance.now();
  const { steps, tolerance } = check(network, x0, options);
  const methods = options.methods ?? ATTACK_METHODS;
  const maxRuns = options.maxRuns ?? DEFAULT_MAX_RUNS;
  const ctx = await context(network, x0, backend, steps, options.signal);
  const n = x0.length;
  const at0 = await marginGradient(ctx, x0);
  const g0 = at0.gradient;

  const results: AttackEntry[] = [];
  for (const method of methods) {
    const t0 = performance.now();
    let search;
    if (method === 'fgsm') {
      const direction = fgsmDirection(g0);
      const slope = -direction.reduce((a, d, i) => a + d * g0[i], 0); // −∇m·ŝ = ||∇m||₁/||s||
      search = await searchSize(at0.margin / Math.max(slope, 1e-30), (t) => fgsmAt(ctx, direction, t), x0, tolerance, maxRuns, ctx.signal);
    } else if (method === 'ifgsm') {
      const l1 = g0.reduce((a, g) => a + Math.abs(g), 0);
      search = await searchSize(at0.margin / Math.max(l1, 1e-30), (tau) => ifgsmAt(ctx, tau), x0, tolerance, maxRuns, ctx.signal);
    } else {
      search = await searchSize(at0.margin / Math.max(norm(g0), 1e-30), (r) => pgdAt(ctx, r), x0, tolerance, maxRuns, ctx.signal);
    }
    let entry: AttackEntry = { method, kind: 'upper', perturbation: null, adversarialClass: null, perturbationLinf: null, runs: search.runs, evaluations: search.evaluations, seconds: 0 };
    if (search.best) {
      // Confirm: the reported point changes the class.
      const confirmed = topTwo(await evaluate(network, backend, search.best.x)).cls;
      invariant(confirmed !== ctx.cls && confirmed === search.best.cls, 'an adversarial point did not reproduce');
      let linf = 0;
      for (let i = 0; i < n; i++) linf = Math.max(linf, Math.abs(search.best.x[i] - x0[i]));
      entry = { ...entry, perturbation: search.best.norm, adversarialClass: confirmed, perturbationLinf: linf, evaluations: entry.evaluations + 1 };
    }
    entry.seconds = (performance.now() - t0) / 1000;
    results.push(entry);
  }
  return { class: ctx.cls, margin: ctx.margin, attacks: results, backend: backend.name, seconds: (performance.now() - started) / 1000 };
}
