/**
 * Lock-step thick-restart Lanczos (issue 17): the largest eigenvalues of B independent PSD
 * operators D_b Aᵀ Λ_b² A D_b given as one BlockGramOperator — the layers of B images, or one
 * layer at B values of ε — with one batched operator application per step for all runs still
 * going. Each run is `largestEigenvalue` of spectral.ts: the same basis size, thick restart (Wu &
 * Simon 2000; the top Ritz vectors kept), reorthogonalisation set (the whole basis for vectors up
 * to 2^16 entries, else the kept Ritz vectors and the last two), stopping rule (sqrt(θ) changed by
 * at most `tolerance` relatively over `window` steps, or relative residual ≤ tolerance, or an
 * invariant Krylov space, or maxIterations) and warm-start rule (docs/soundness.md §1), with its
 * own state and result; a run that stops leaves the block when that pays (lockstep.ts).
 *
 * Engines (lockstep.ts): 'host' repeats the single-vector arithmetic run by run (the recurrence
 * with its known coefficients, one Gram–Schmidt pass, a second where it removed more than half of
 * w, DGKS); 'device' orthogonalises twice against the same set (CGS2, which subsumes the
 * recurrence: the coefficient on v_j is α, those on v_{j−1} and the kept vectors the known
 * couplings, all computed) with the coefficients on the device, and reads the projected
 * problem's scalars α_j, β_j² back once per block of `stepsPerReadBack` steps for all runs. Both
 * build the same Krylov spaces; their results agree to rounding.
 *
 * Warm starts: the start of run b is normalise(normalise(warm_b) + r̂_b) with r̂_b the normalised
 * randomVector(n, seed_b), as in spectral.ts; its norm comes from one read-back of ||warm||² and
 * warm·r̂ for all runs (||ŵ + r̂||² = 2 + 2 ŵ·r̂). Where ŵ·r̂ < −3/4 (a warm vector nearly opposite
 * the random one, which that formula would resolve poorly) the run starts from r̂ alone — the cold
 * start, so never less safe; spectral.ts mixes down to ŵ = −r̂ exactly.
 */
import type { BlockGramOperator, DeviceBasis, DeviceBlock, DeviceVector } from '../backend/backend.js';
import { gramSchmidtRuns, type LockstepEngine, type LockstepOps, type LockstepStats, Lockstep, startEngine, upTo, worthCompacting } from './lockstep.js';
import { ProjectedMatrix } from './projected.js';
import { randomVector } from '../random.js';
import { basisSizeFor, type EigenResult, FULL_REORTHOGONALISATION_MAX_LENGTH, reportedChange, symmetricEigen } from './spectral.js';

export interface LockstepEigenOptions {
  /** Each run stops when its norm estimate changed by at most this, relatively, over `window` steps. */
  tolerance: number;
  /** Steps over which the change is measured (default 5). */
  window?: number;
  /** Most operator applications per run. */
  maxIterations: number;
  /** Lanczos vectors kept before a restart (default 30), capped as in spectral.ts. */
  basisSize?: number;
  /** Most bytes one run's Lanczos basis may take (float64 vectors), as in spectral.ts. */
  basisBytes?: number;
  /** Reorthogonalise against the whole basis (default: for vectors up to 2^16 entries). */
  fullReorthogonalisation?: boolean;
  /** Warm start of each run (not consumed); null or absent: the random start alone. */
  starts?: readonly (DeviceVector | null | undefined)[];
  /** Seed of each run's random start (default 1 for every run, as spectral.ts). */
  seeds?: readonly number[];
  signal?: AbortSignal;
  /** After each step of each run: its index in the block given, its step count and sqrt(θ). */
  onIteration?: (run: number, iteration: number, estimate: number) => void;
  /** 'host' or 'device' (lockstep.ts); default by the backend. */
  engine?: LockstepEngine;
  /** Device engine: steps recorded per read-back (default 8), fewer at a restart or maxIterations. */
  stepsPerReadBack?: number;
}

export interface LockstepEigenResult extends LockstepStats {
  /** Run b's result, as largestEigenvalue's (its `vector` is the caller's to free). */
  runs: EigenResult[];
}

export const DEFAULT_STEPS_PER_READ_BACK = 8;

/** Ritz vectors kept across a thick restart, at most a quarter of the basis (spectral.ts). */
const THICK_RESTART_KEEP = 5;
/** ŵ·r̂ below which a warm start is dropped for the random start alone (see the header). */
const MIXED_SQUARED_NORM_MIN = 0.5;

/** One run's projected matrix, history and stopping rule: spectral.ts's loop body, step by step. */
class EigenRun {
  readonly H = new ProjectedMatrix();
  private readonly history: number[] = [];
  iterations = 0;
  theta = 0;
  beta = 0;
  relativeChange = Infinity;
  relativeResidual = Infinity;
  ritz: Float64Array = new Float64Array(0);
  vector: DeviceVector | null = null;

  constructor(
    readonly index: number,
    private readonly options: LockstepEigenOptions,
  ) {}

  /** Takes step `iterations + 1`'s α and β²; true when the run stops at this step. */
  accept(alpha: number, betaSquared: number): boolean {
    const { tolerance, window = 5, maxIterations } = this.options;
    this.iterations++;
    this.H.alphas.push(alpha);
    this.beta = Math.sqrt(Math.max(0, betaSquared));
    this.theta = Math.max(0, this.H.largestEigenvalue(this.theta));
    this.ritz = this.H.topEigenvector(this.theta);
    this.relativeResidual = this.theta > 0 ? (this.beta * Math.abs(this.ritz[this.ritz.length - 1])) / this.theta : 0;
    const norm = Math.sqrt(this.theta);
    this.options.onIteration?.(this.index, this.iterations, norm);
    this.history.push(norm);
    const past = this.history.length > window ? this.history[this.history.length - 1 - window] : NaN;
    this.relativeChange = norm > 0 && past > 0 ? Math.abs(norm - past) / norm : Infinity;
    const invariant = this.beta <= 1e-13 * Math.max(this.theta, 1e-300);
    if (invariant) this.relativeChange = 0;
    return invariant || this.relativeChange <= tolerance || this.relativeResidual <= tolerance || this.iterations >= maxIterations;
  }

  /** After a step that did not stop, inside the cycle: β couples v_j to the next Lanczos vector. */
  extend(): void {
    this.H.betas.push(this.beta);
  }

  /**
   * Thick restart at the end of a cycle: keeps the top min(keep, size − 1) Ritz pairs in H and
   * returns their coefficient vectors over the basis (the new basis is those, then w/β).
   */
  restart(keep: number): Float64Array[] {
    const size = this.H.size;
    const { values, vectors } = symmetricEigen(size, this.H.dense());
    const order = Array.from(values.keys())
      .sort((a, b) => values[b] - values[a])
      .slice(0, Math.min(keep, size - 1));
    this.H.restart(
      order.map((k) => values[k]),
      order.map((k) => this.beta * vectors[k][size - 1]),
    );
    return order.map((k) => vectors[k]);
  }

  result(): EigenResult {
    const tolerance = this.options.tolerance;
    return {
      eigenvalue: this.theta,
      vector: this.vector!,
      iterations: this.iterations,
      relativeChange: reportedChange(this.history, this.options.window ?? 5, this.relativeChange),
      relativeResidual: this.relativeResidual,
      converged: this.relativeChange <= tolerance || this.relativeResidual <= tolerance,
    };
  }
}

/** Basis indices a step orthogonalises against when the basis is not reorthogonalised in full. */
function restrictedSlots(kept: number, j: number, cycle: number): number[] {
  const slots = new Set(upTo(kept));
  if (cycle === 0) slots.add(0);
  if (j >= 1) slots.add(j - 1);
  slots.add(j);
  return [...slots].sort((a, b) => a - b);
}

/** The coefficient rows of B runs, k per run, concatenated (run-major), zero where `row` gives none. */
function rows(count: number, k: number, row: (b: number) => ArrayLike<number> | null): Float64Array {
  const out = new Float64Array(count * k);
  for (let b = 0; b < count; b++) {
    const r = row(b);
    if (r) out.set(r, b * k);
  }
  return out;
}

/**
 * Largest eigenvalues of the B operators of `op` in lock-step; run b as
 * largestEigenvalue(op_b, vectors, { ...options, start: starts[b], seed: seeds[b] }).
 */
export async function largestEigenvaluesLockstep(op: BlockGramOperator, ops: LockstepOps, options: LockstepEigenOptions): Promise<LockstepEigenResult> {
  const [count, n] = [op.count, op.dim];
  if (options.starts && options.starts.length !== count) throw new RangeError(`${options.starts.length} warm starts for ${count} runs`);
  if (options.seeds && options.seeds.length !== count) throw new RangeError(`${options.seeds.length} seeds for ${count} runs`);
  const m = basisSizeFor(n, options.basisSize, options.basisBytes);
  const shape: CycleShape = {
    m,
    keep: Math.max(1, Math.min(THICK_RESTART_KEEP, Math.floor(m / 4))),
    full: options.fullReorthogonalisation ?? n <= FULL_REORTHOGONALISATION_MAX_LENGTH,
  };
  const { engine, basis } = startEngine(ops, options.engine, count, n, m);
  const state = new Lockstep(op, ops, engine, options.signal);
  const runs = upTo(count).map((b) => new EigenRun(b, options));
  let started = false;
  try {
    const start = await mixedStarts(state, options, count, n);
    started = true;
    if (basis) await deviceEngine(state, runs, start, basis, shape, Math.max(1, options.stepsPerReadBack ?? DEFAULT_STEPS_PER_READ_BACK), options.maxIterations);
    else await hostEngine(state, runs, start, shape);
  } catch (error) {
    for (const run of runs) if (run.vector) ops.vectors.free(run.vector);
    if (basis && !started) state.basisOps.freeBasis(basis);
    throw error;
  } finally {
    state.dispose();
  }
  return { ...state.stats, runs: runs.map((run) => run.result()) };
}

interface CycleShape {
  /** Basis size. */
  m: number;
  /** Ritz vectors kept at a restart (at most). */
  keep: number;
  /** Reorthogonalise against the whole basis. */
  full: boolean;
}

/**
 * The start block: run b is normalise(normalise(warm_b) + r̂_b), or r̂_b without a warm start;
 * r̂_b = randomVector(n, seed_b) normalised in float64 on the host. One read-back when any run has
 * a warm start, none otherwise.
 */
async function mixedStarts(state: Lockstep, options: LockstepEigenOptions, count: number, n: number): Promise<DeviceBlock> {
  const blocks = state.ops.blocks;
  const random = new Float64Array(count * n);
  for (let b = 0; b < count; b++) {
    const r = randomVector(n, options.seeds?.[b] ?? 1);
    let squared = 0;
    for (let i = 0; i < n; i++) squared += r[i] * r[i];
    const norm = Math.sqrt(squared);
    for (let i = 0; i < n; i++) random[b * n + i] = r[i] / norm;
  }
  const randomBlock = blocks.uploadBlock(random, count);
  const warm = options.starts ?? [];
  if (!warm.some((v) => v)) return randomBlock;
  const start = blocks.allocBlock(count, n);
  warm.forEach((v, b) => v && blocks.setRun(start, b, v));
  const d = await state.dots(start, [start, randomBlock]); // ||w||², w·r̂ per run
  const scale = new Float64Array(count);
  const add = new Float64Array(count).fill(1);
  for (let b = 0; b < count; b++) {
    const [squared, cross] = [d[2 * b], d[2 * b + 1]];
    if (!warm[b] || !(squared > 0) || !Number.isFinite(squared)) continue;
    const root = Math.sqrt(squared);
    const mixed = 2 + (2 * cross) / root; // ||ŵ + r̂||²
    if (!(mixed >= MIXED_SQUARED_NORM_MIN)) continue;
    scale[b] = 1 / (root * Math.sqrt(mixed));
    add[b] = 1 / Math.sqrt(mixed);
  }
  blocks.scaleRuns(scale, start);
  blocks.axpyRuns(add, randomBlock, start);
  blocks.freeBlock(randomBlock);
  return start;
}

/**
 * The runs at `stopped` (positions in the block) stopped with basis size `size`: their Ritz
 * vectors Σ_i ritz_i v_i, normalised (one read-back), become their results' vectors.
 */
async function finishRuns(state: Lockstep, active: EigenRun[], stopped: number[], size: number, combine: (coefficients: Float64Array, out: DeviceBlock) => void): Promise<void> {
  const { blocks, vectors } = state.ops;
  const which = new Set(stopped);
  const y = state.take();
  combine(
    rows(active.length, size, (b) => (which.has(b) ? active[b].ritz : null)),
    y,
  );
  const squared = await state.dots(y, [y]);
  blocks.scaleRuns(Array.from(squared, (s) => (s > 0 ? 1 / Math.sqrt(s) : 1)), y);
  for (const b of stopped) {
    const v = vectors.alloc(state.dim);
    blocks.getRun(y, b, v);
    active[b].vector = v;
  }
  state.give(y);
}

/** Runs of the block that have their result. */
const finishedIn = (runs: EigenRun[]) => runs.filter((run) => run.vector).length;

/**
 * spectral.ts's arithmetic, run by run through BlockVectorOps: two or three read-backs a step. A
 * run that stops gets zero vectors and coefficients from then on, until the block drops it
 * (worthCompacting, or at the next restart).
 */
async function hostEngine(state: Lockstep, runs: EigenRun[], start: DeviceBlock, { m, keep, full }: CycleShape): Promise<void> {
  const blocks = state.ops.blocks;
  let active = runs;
  let basis: DeviceBlock[] = [start];
  let w = state.take();
  let work = state.take();
  let kept = 0;
  /** Drops the finished runs from the block (their vectors, now zero, go with them). */
  const compact = async () => {
    const positions = upTo(active.length).filter((b) => !active[b].vector);
    state.give(work);
    [w, ...basis] = await state.keep(positions, [w, ...basis]);
    work = state.take();
    active = positions.map((b) => active[b]);
  };
  try {
    for (let cycle = 0; ; cycle++) {
      for (let j = basis.length - 1; j < m; j++) {
        await state.apply(basis[j], w);
        const count = active.length;
        const t = j - kept;
        // The recurrence with its known coefficients: w −= α v_j + β v_{j−1} (or the couplings).
        // A finished run still in the block has zero vectors and zero coefficients.
        const alpha = await state.dots(basis[j], [w]);
        const knownVectors = t > 0 ? [basis[j], basis[j - 1]] : [basis[j], ...basis.slice(0, kept)];
        const known = rows(count, knownVectors.length + 1, (b) => {
          const run = active[b];
          if (run.vector) return [0, ...knownVectors.slice(1).map(() => 0), 1];
          const couplings = t > 0 ? [run.H.betas[t - 1]] : run.H.couplings;
          return [-alpha[b], ...couplings.map((c) => -c), 1];
        });
        blocks.combineRuns(known, [...knownVectors, w], work);
        [w, work] = [work, w];
        // Gram–Schmidt against the basis or the restricted set (DGKS: again where it removed much).
        const indices = full ? upTo(j + 1) : restrictedSlots(kept, j, cycle);
        const gs = await gramSchmidtRuns(state, w, work, indices.map((i) => basis[i]), indices.indexOf(j));
        [w, work] = [gs.w, gs.work];
        const stopped = upTo(count).filter((b) => !active[b].vector && active[b].accept(alpha[b] + gs.coefficient[b], gs.betaSquared[b]));
        if (stopped.length > 0) {
          const size = j + 1;
          await finishRuns(state, active, stopped, size, (coefficients, out) => blocks.combineRuns(coefficients, basis.slice(0, size), out));
          if (active.every((run) => run.vector)) return;
          if (worthCompacting(finishedIn(active), active.length, m - 1 - j)) await compact();
        }
        if (j < m - 1) {
          blocks.scaleRuns(active.map((run) => (run.vector ? 0 : 1 / run.beta)), w);
          basis.push(w);
          for (const run of active) if (!run.vector) run.extend();
          w = state.take();
        }
      }
      // Thick restart: the top Ritz vectors of every run, then w/β; finished runs leave now,
      // while the basis is short.
      const kept_ = active.map((run) => (run.vector ? null : run.restart(keep)));
      kept = kept_.find((k) => k)!.length;
      const ritz = upTo(kept).map((i) => {
        const y = state.take();
        blocks.combineRuns(rows(active.length, basis.length, (b) => kept_[b]?.[i] ?? null), basis, y);
        return y;
      });
      for (const b of basis) state.give(b);
      blocks.scaleRuns(active.map((run) => (run.vector ? 0 : 1 / run.beta)), w);
      basis = [...ritz, w];
      w = state.take();
      if (active.some((run) => run.vector)) await compact();
    }
  } finally {
    state.free([...basis, w, work]);
  }
}

/**
 * CGS2 with the basis and coefficients on the device: steps are recorded `stepsPerReadBack` at a
 * time (fewer at the end of a cycle or of maxIterations), then one read-back of every step's and
 * run's coefficients and norm, and the host replays the steps' stopping rule in order. A finished
 * run still in the block keeps stepping (its values are not read) until the block is compacted.
 */
async function deviceEngine(
  state: Lockstep,
  runs: EigenRun[],
  start: DeviceBlock,
  basisIn: DeviceBasis,
  { m, keep, full }: CycleShape,
  stepsPerReadBack: number,
  maxIterations: number,
): Promise<void> {
  const basisOps = state.basisOps;
  let basis = basisIn;
  let active = runs;
  const stride = 2 * m + 1;
  const record = basisOps.allocScalars(Math.min(stepsPerReadBack, m) * runs.length * stride);
  let current = start; // the vector the next step applies the operator to: slot `filled − 1`
  let w = state.take();
  let filled = 1;
  let kept = 0;
  const compact = async () => {
    const positions = upTo(active.length).filter((b) => !active[b].vector);
    state.give(w);
    [current] = await state.keep(positions, [current]);
    basis = state.keepBasis(basis, positions);
    w = state.take();
    active = positions.map((b) => active[b]);
  };
  try {
    basisOps.storeSlot(basis, 0, current);
    for (let cycle = 0; ; ) {
      const count = active.length;
      const first = filled - 1;
      const live = active.find((run) => !run.vector)!;
      const steps = Math.min(stepsPerReadBack, m - first, maxIterations - live.iterations);
      const slots: number[][] = [];
      for (let q = 0; q < steps; q++) {
        const j = first + q;
        await state.apply(current, w);
        slots.push(full ? upTo(j + 1) : restrictedSlots(kept, j, cycle));
        basisOps.orthonormalise(basis, w, slots[q], current, j + 1 < m ? j + 1 : null, record, q * count * stride, stride);
      }
      const values = await state.read(record, steps * count * stride);
      const sizes = new Map<number, number>(); // basis size of each run that stopped in this block
      for (let b = 0; b < count; b++) {
        for (let q = 0; q < steps && !active[b].vector && !sizes.has(b); q++) {
          const j = first + q;
          const k = slots[q].length;
          const at = (q * count + b) * stride;
          const position = slots[q].indexOf(j);
          if (active[b].accept(values[at + position] + values[at + k + position], values[at + 2 * k])) sizes.set(b, j + 1);
          else if (j < m - 1) active[b].extend();
        }
      }
      const last = first + steps - 1;
      if (sizes.size > 0) {
        const size = Math.max(...sizes.values());
        await finishRuns(state, active, [...sizes.keys()], size, (coefficients, out) => basisOps.combineSlots(basis, upTo(size), coefficients, out));
        if (active.every((run) => run.vector)) return;
        if (last < m - 1 && worthCompacting(finishedIn(active), active.length, m - 1 - last)) await compact();
      }
      if (last < m - 1) {
        filled = last + 2;
        continue;
      }
      // Thick restart: slots 0 … kept − 1 ← the top Ritz vectors, slot kept ← w/β (in `current`).
      const kept_ = active.map((run) => (run.vector ? null : run.restart(keep)));
      kept = kept_.find((k) => k)!.length;
      const ritz = upTo(kept).map((i) => {
        const y = state.take();
        basisOps.combineSlots(basis, upTo(m), rows(active.length, m, (b) => kept_[b]?.[i] ?? null), y);
        return y;
      });
      ritz.forEach((y, i) => {
        basisOps.storeSlot(basis, i, y);
        state.give(y);
      });
      basisOps.storeSlot(basis, kept, current);
      filled = kept + 1;
      cycle++;
      if (active.some((run) => run.vector)) await compact();
    }
  } finally {
    basisOps.freeScalars(record);
    basisOps.freeBasis(basis);
    state.free([current, w]);
  }
}
