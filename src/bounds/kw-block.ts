/**
 * The probabilistic KW certificate (certificates.ts, `kwLargestEigenvalue`) for B runs in
 * lock-step (issue 17): plain Lanczos from a Gaussian start on each run's support, full
 * reorthogonalisation, no restart, a step count fixed in advance per run — kwSteps(dim_b, δ, ε*)
 * capped at dim_b, dim_b the size of run b's support — then λ_max ≤ θ_k/(1 − ε) with probability
 * ≥ 1 − δ (Kuczyński & Woźniakowski 1992, Thm 4.2). An invariant Krylov space (β = 0) stops a run
 * early and KW then holds with k = dim_b. One batched operator application per step for the runs
 * still going; a run that reached its step count leaves the block when that pays (lockstep.ts).
 *
 * Run b's Gaussian start is the single version's for seed_b: Rng(seed_b).gaussian() drawn over the
 * entries of its support in order (zero elsewhere), so block and single results are identical up
 * to rounding. The 'host' engine repeats the single version's steps (two read-backs a step for
 * all runs); the 'device' engine orthogonalises twice (CGS2) against the whole basis on the
 * device and reads the coefficients back once per block of steps — a block ends only where some
 * run reaches its step count (or, given `ranks`, where its Krylov space must have become
 * invariant), so a run of B = 1 costs one read-back after its start.
 *
 * The host engine differs from certificates.ts in one respect: a Gram–Schmidt pass that removed
 * more than half of w is repeated (DGKS, as spectral.ts). With float32 vectors (WebGPU) a single
 * pass loses orthogonality once an operator of rank r < k has exhausted its range — w is then
 * rounding noise, which one classical pass cannot orthogonalise — and the Ritz values blow up
 * (an average pool with 32 outputs: θ = 2·10¹⁸ against λ_max = 0.139). Elsewhere the second pass
 * does not run and the arithmetic is the single version's.
 */
import type { BlockGramOperator, DeviceBasis, DeviceBlock } from '../backend/backend.js';
import { Rng } from '../random.js';
import { DEFAULT_KW_EPSILON, type KwResult, kwEpsilon, kwSteps } from './certificates.js';
import { gramSchmidtRuns, type LockstepEngine, type LockstepOps, type LockstepStats, Lockstep, startEngine, upTo, worthCompacting } from './lockstep.js';
import { tridiagonalEigen } from './spectral.js';

export interface LockstepKwOptions {
  /** Failure probability of each run's certificate. */
  delta: number;
  /** Seed of each run's Gaussian start (the single version's `seed`). */
  seeds: readonly number[];
  /**
   * Each run's support (count·n, 0/1; the domain masks the operator was built with): the start is
   * drawn on it and n_b is its size. Null: every run acts on all of R^n.
   */
  supports?: Float32Array | null;
  /**
   * An upper bound of each run's operator rank (e.g. its outputs with a nonzero slope), for speed
   * only: Krylov spaces of rank r become invariant by step r + 1, so the device engine ends a
   * block of steps there rather than record steps it would discard.
   */
  ranks?: readonly number[];
  /** KW inflation ε aimed at (default DEFAULT_KW_EPSILON): it fixes each run's step count. */
  targetEpsilon?: number;
  signal?: AbortSignal;
  /** 'host' or 'device' (lockstep.ts); default by the backend. */
  engine?: LockstepEngine;
}

export interface LockstepKwResult extends LockstepStats {
  /** Run b's certificate, as kwLargestEigenvalue's. */
  runs: KwResult[];
}

/** Steps per read-back once a run has passed the step where its rank says it must be invariant. */
const RANK_SLACK = 8;

/** One run's tridiagonal matrix, its fixed step count and its invariance test. */
class KwRun {
  readonly alphas: number[] = [];
  readonly betas: number[] = [];
  private scale = 0;
  invariant = false;
  finished = false;

  constructor(
    readonly dim: number,
    readonly steps: number,
    private readonly rank: number,
  ) {}

  /**
   * The step count at which the run is next expected to stop, after `done` steps: where its
   * Krylov space must be invariant (rank + 1, a step later for rounding), and past that — float32
   * rounding of the operator may keep β above the invariance test a few steps longer — every
   * RANK_SLACK steps, else its last step.
   */
  expectedStop(done: number): number {
    const invariantBy = this.rank + 2;
    if (invariantBy >= this.steps) return this.steps;
    return Math.min(this.steps, done < invariantBy ? invariantBy : done + RANK_SLACK);
  }

  /** Takes step j's α and β²; sets `finished` when the run stops here (invariant, or its last step). */
  accept(alpha: number, betaSquared: number): void {
    this.alphas.push(alpha);
    const beta = Math.sqrt(Math.max(0, betaSquared));
    this.scale = Math.max(this.scale, Math.abs(alpha), beta);
    if (beta <= 1e-12 * this.scale) {
      this.invariant = true;
      this.finished = true;
    } else if (this.alphas.length === this.steps) this.finished = true;
    else this.betas.push(beta);
  }

  get beta(): number {
    return this.betas[this.betas.length - 1];
  }

  result(delta: number): KwResult {
    if (this.dim === 0) return { bound: 0, ritz: 0, steps: 0, epsilon: 0 };
    const { values } = tridiagonalEigen(this.alphas, this.betas, false);
    const ritz = Math.max(0, ...values);
    const epsilon = kwEpsilon(this.dim, this.invariant ? this.dim : this.alphas.length, delta);
    return { bound: epsilon < 1 ? ritz / (1 - epsilon) : Infinity, ritz, steps: this.alphas.length, epsilon };
  }
}

/**
 * KW certificates of λ_max for the B operators of `op` in lock-step; run b as
 * kwLargestEigenvalue(op_b, vectors, { delta, seed: seeds[b], support: supports_b, targetEpsilon }).
 */
export async function kwLargestEigenvaluesLockstep(op: BlockGramOperator, ops: LockstepOps, options: LockstepKwOptions): Promise<LockstepKwResult> {
  const [count, n] = [op.count, op.dim];
  const supports = options.supports ?? null;
  if (options.seeds.length !== count) throw new RangeError(`${options.seeds.length} seeds for ${count} runs`);
  if (supports && supports.length !== count * n) throw new RangeError(`supports of ${supports.length} values for ${count} runs of ${n}`);
  if (options.ranks && options.ranks.length !== count) throw new RangeError(`${options.ranks.length} ranks for ${count} runs`);
  const target = options.targetEpsilon ?? DEFAULT_KW_EPSILON;
  const runs = upTo(count).map((b) => {
    let dim = n;
    if (supports) {
      dim = 0;
      for (let i = b * n; i < (b + 1) * n; i++) if (supports[i] !== 0) dim++;
    }
    return new KwRun(dim, dim === 0 ? 0 : Math.min(kwSteps(dim, options.delta, target), dim), options.ranks?.[b] ?? Infinity);
  });
  const live = upTo(count).filter((b) => runs[b].dim > 0);
  if (live.length === 0) return { engine: options.engine ?? 'host', operatorCalls: 0, runApplications: 0, readBacks: 0, runs: runs.map((r) => r.result(options.delta)) };
  const longest = Math.max(...live.map((b) => runs[b].steps));
  const { engine, basis } = startEngine(ops, options.engine, live.length, n, longest);
  const state = new Lockstep(op, ops, engine, options.signal);
  let started = false;
  try {
    // Runs without support have the bound 0 and take no steps.
    if (live.length < count) await state.keep(live, []);
    const start = await gaussianStarts(state, options.seeds, supports, live, n);
    const active = live.map((b) => runs[b]);
    started = true;
    if (basis) await deviceEngine(state, active, start, basis);
    else await hostEngine(state, active, start);
  } catch (error) {
    if (basis && !started) state.basisOps.freeBasis(basis);
    throw error;
  } finally {
    state.dispose();
  }
  return { ...state.stats, runs: runs.map((r) => r.result(options.delta)) };
}

/** The normalised Gaussian starts of the runs `live` (one read-back for their norms). */
async function gaussianStarts(state: Lockstep, seeds: readonly number[], supports: Float32Array | null, live: number[], n: number): Promise<DeviceBlock> {
  const blocks = state.ops.blocks;
  const data = new Float64Array(live.length * n);
  live.forEach((b, position) => {
    const rng = new Rng(seeds[b]);
    for (let i = 0; i < n; i++) data[position * n + i] = !supports || supports[b * n + i] !== 0 ? rng.gaussian() : 0;
  });
  const start = blocks.uploadBlock(data, live.length);
  const squared = await state.dots(start, [start]);
  blocks.scaleRuns(Array.from(squared, (s) => 1 / Math.sqrt(s)), start);
  return start;
}

/** Runs of the block that have finished. */
const finishedIn = (runs: KwRun[]) => runs.filter((run) => run.finished).length;
/** Steps until the last live run of the block reaches its step count, after `done` steps. */
const stepsLeft = (runs: KwRun[], done: number) => Math.max(...runs.filter((run) => !run.finished).map((run) => run.steps)) - done;

/**
 * certificates.ts's steps run by run through BlockVectorOps — the three-term recurrence, then
 * classical Gram–Schmidt against the whole basis — with a second pass where the first removed more
 * than half of w (DGKS, as spectral.ts): two read-backs a step, three when a pass is repeated. A
 * finished run gets zero vectors and coefficients until the block drops it (worthCompacting).
 */
async function hostEngine(state: Lockstep, runs: KwRun[], start: DeviceBlock): Promise<void> {
  const blocks = state.ops.blocks;
  let active = runs;
  let basis: DeviceBlock[] = [start];
  let w = state.take();
  let work = state.take();
  try {
    for (let j = 0; ; j++) {
      await state.apply(basis[j], w);
      const count = active.length;
      if (j > 0) blocks.axpyRuns(active.map((run) => (run.finished ? 0 : -run.betas[j - 1])), basis[j - 1], w);
      const alpha = await state.dots(w, [basis[j]]);
      blocks.axpyRuns(Array.from(alpha, (a) => -a), basis[j], w);
      const gs = await gramSchmidtRuns(state, w, work, basis, j);
      [w, work] = [gs.w, gs.work];
      for (let b = 0; b < count; b++) if (!active[b].finished) active[b].accept(alpha[b] + gs.coefficient[b], gs.betaSquared[b]);
      const finished = finishedIn(active);
      if (finished === count) return;
      if (worthCompacting(finished, count, stepsLeft(active, j + 1))) {
        const positions = upTo(count).filter((b) => !active[b].finished);
        state.give(work);
        [w, ...basis] = await state.keep(positions, [w, ...basis]);
        work = state.take();
        active = positions.map((b) => active[b]);
      }
      const next = state.take();
      blocks.copyBlock(w, next);
      blocks.scaleRuns(active.map((run) => (run.finished ? 0 : 1 / run.beta)), next);
      basis.push(next);
    }
  } finally {
    state.free([...basis, w, work]);
  }
}

/**
 * CGS2 against the whole basis on the device: the steps up to the next live run's expected stop
 * are recorded without a read-back, then the host reads every step's α and β² and replays them. A
 * finished run still in the block keeps stepping (its values are not read) until it is dropped.
 */
async function deviceEngine(state: Lockstep, runs: KwRun[], start: DeviceBlock, basisIn: DeviceBasis): Promise<void> {
  const basisOps = state.basisOps;
  let basis = basisIn;
  let active = runs;
  const slots = basis.slots;
  const stride = 2 * slots + 1;
  const record = basisOps.allocScalars(slots * runs.length * stride);
  let current = start;
  let w = state.take();
  try {
    basisOps.storeSlot(basis, 0, current);
    for (let first = 0; ; ) {
      const count = active.length;
      const steps = Math.min(...active.filter((run) => !run.finished).map((run) => run.expectedStop(first))) - first;
      for (let q = 0; q < steps; q++) {
        const j = first + q;
        await state.apply(current, w);
        basisOps.orthonormalise(basis, w, upTo(j + 1), current, j + 1 < slots ? j + 1 : null, record, q * count * stride, stride);
      }
      const values = await state.read(record, steps * count * stride);
      for (let b = 0; b < count; b++) {
        for (let q = 0; q < steps && !active[b].finished; q++) {
          const j = first + q;
          const k = j + 1;
          const at = (q * count + b) * stride;
          active[b].accept(values[at + j] + values[at + k + j], values[at + 2 * k]);
        }
      }
      first += steps;
      const finished = finishedIn(active);
      if (finished === count) return;
      if (worthCompacting(finished, count, stepsLeft(active, first))) {
        const positions = upTo(count).filter((b) => !active[b].finished);
        state.give(w);
        [current] = await state.keep(positions, [current]);
        basis = state.keepBasis(basis, positions);
        w = state.take();
        active = positions.map((b) => active[b]);
      }
    }
  } finally {
    basisOps.freeScalars(record);
    basisOps.freeBasis(basis);
    state.free([current, w]);
  }
}
