/**
 * What lock-step solvers share (lanczos-block.ts, kw-block.ts): B independent runs on one
 * BlockGramOperator advance together, one batched operator application per step for all of them;
 * a run that stops leaves the block (the operator and every working block are gathered to the
 * remaining runs) as soon as carrying it would cost more than the copy (worthCompacting) — until
 * then it rides along with zero vectors, or, in the device engine, unread steps.
 *
 * Two engines carry out the steps (issue 17):
 * - 'host': the single-vector arithmetic run by run through BlockVectorOps, coefficients read back
 *   every step (free on the CPU, one round trip for all runs per read-back on a GPU);
 * - 'device': the basis in one DeviceBasis and Gram–Schmidt twice (CGS2) through BasisOps, whose
 *   coefficients and norms stay on the device; the host reads them back once per block of steps
 *   and replays the steps' stopping rule in order, so a run stops at the same step as with the
 *   host engine and the extra steps of its block are discarded (never used in its result).
 * 'device' is the default where a read-back costs a round trip (BlockVectorOps.roundTripReadBack)
 * and the basis fits one device binding; 'host' otherwise.
 */
import type { BasisOps, BlockGramOperator, BlockVectorOps, DeviceBasis, DeviceBlock, DeviceScalars, VectorOps } from '../backend/backend.js';
import { CancelledError, invariant } from '../errors.js';

/** DGKS: orthogonalise again when a pass removed more than half of w's squared norm (spectral.ts). */
const REORTHOGONALISE_BELOW = 0.5;

/** The backend operations lock-step solvers use (a Backend has them all). */
export interface LockstepOps {
  vectors: VectorOps;
  blocks: BlockVectorOps;
  /** Device-resident basis operations; without them only the 'host' engine runs. */
  basis?: BasisOps;
}

export type LockstepEngine = 'host' | 'device';

/** Counts of one lock-step solve, for benchmarks and tests. */
export interface LockstepStats {
  engine: LockstepEngine;
  /** Batched operator applications (each on the runs still going). */
  operatorCalls: number;
  /** Operator applications summed over runs, the discarded steps of a device block included. */
  runApplications: number;
  /** Awaited read-backs of scalars (dot products, coefficients, norms). */
  readBacks: number;
}

/**
 * The engine to run and, for 'device', its basis of `slots` slots: the requested one, else
 * 'device' where read-backs are round trips. 'device' falls back to 'host' when the backend has
 * no BasisOps or the basis does not fit one binding.
 */
export function startEngine(ops: LockstepOps, requested: LockstepEngine | undefined, count: number, dim: number, slots: number): { engine: LockstepEngine; basis: DeviceBasis | null } {
  const wanted = requested ?? (ops.blocks.roundTripReadBack && ops.basis ? 'device' : 'host');
  const basis = wanted === 'device' && ops.basis ? ops.basis.allocBasis(count, dim, slots) : null;
  return basis ? { engine: 'device', basis } : { engine: 'host', basis: null };
}

/**
 * The state of one lock-step solve: the operator of the runs still going (the caller's at first,
 * gathered ones after runs dropped out), a pool of blocks of the current size, and the counts.
 */
export class Lockstep {
  readonly stats: LockstepStats;
  private op: BlockGramOperator;
  private ownsOperator = false;
  private spare: DeviceBlock[] = [];

  constructor(
    op: BlockGramOperator,
    readonly ops: LockstepOps,
    engine: LockstepEngine,
    private readonly signal?: AbortSignal,
  ) {
    this.op = op;
    this.stats = { engine, operatorCalls: 0, runApplications: 0, readBacks: 0 };
  }

  /** Runs in the current block. */
  get count(): number {
    return this.op.count;
  }

  get dim(): number {
    return this.op.dim;
  }

  get basisOps(): BasisOps {
    invariant(this.ops.basis, 'the device engine needs BasisOps');
    return this.ops.basis;
  }

  /** out ← G x for every run going (throws CancelledError once the signal is aborted). */
  async apply(x: DeviceBlock, out: DeviceBlock): Promise<void> {
    if (this.signal?.aborted) throw new CancelledError();
    await this.op.apply(x, out);
    this.stats.operatorCalls++;
    this.stats.runApplications += this.op.count;
  }

  /** BlockVectorOps.dotsRuns, counted as a read-back. */
  dots(x: DeviceBlock, basis: DeviceBlock[]): Promise<Float64Array> {
    this.stats.readBacks++;
    return this.ops.blocks.dotsRuns(x, basis);
  }

  /** BasisOps.readScalars, counted as a read-back. */
  read(scalars: DeviceScalars, length: number): Promise<Float64Array> {
    this.stats.readBacks++;
    return this.basisOps.readScalars(scalars, length);
  }

  /** A block of the current size (zero-filled when new, stale values when recycled). */
  take(): DeviceBlock {
    return this.spare.pop() ?? this.ops.blocks.allocBlock(this.count, this.dim);
  }

  /** Returns a block of the current size to the pool. */
  give(block: DeviceBlock): void {
    invariant(block.count === this.count, 'a block of another size returned to the pool');
    this.spare.push(block);
  }

  /**
   * Keeps the runs at `positions` of the current block: the operator, and each of `blocks`
   * (gathered; the old ones freed). Returns the gathered blocks in the same order.
   */
  async keep(positions: readonly number[], blocks: DeviceBlock[]): Promise<DeviceBlock[]> {
    const gathered = await this.op.gatherRuns(positions);
    if (this.ownsOperator) this.op.dispose();
    this.op = gathered;
    this.ownsOperator = true;
    // Spare blocks shrink with the rest (their memory reused where the backend can).
    this.spare = this.spare.map((block) => this.ops.blocks.keepRuns(block, positions));
    return blocks.map((block) => this.ops.blocks.keepRuns(block, positions));
  }

  /** A basis of the runs at `positions` (increasing; the old one consumed). */
  keepBasis(basis: DeviceBasis, positions: readonly number[]): DeviceBasis {
    return this.basisOps.keepBasisRuns(basis, positions);
  }

  /** Frees each distinct block once (a solve's working blocks, when it ends or fails). */
  free(blocks: DeviceBlock[]): void {
    for (const block of new Set(blocks)) this.ops.blocks.freeBlock(block);
  }

  private freeSpare(): void {
    for (const block of this.spare) this.ops.blocks.freeBlock(block);
    this.spare = [];
  }

  /** Frees the pool and any operator this solve gathered (never the caller's). */
  dispose(): void {
    this.freeSpare();
    if (this.ownsOperator) this.op.dispose();
  }
}

/**
 * Classical Gram–Schmidt of every run's w against `against` (host coefficients, one read-back a
 * pass), again for the runs where a pass removed more than half of w's squared norm (DGKS, the
 * rule of spectral.ts; the other runs pass through unchanged). Returns w and the spare block
 * `work` (exchanged), the sum over passes of each run's coefficient on against[position], and
 * β² = ||w||² − Σ c² of its last pass (accurate once a pass removed little).
 */
export async function gramSchmidtRuns(
  state: Lockstep,
  w: DeviceBlock,
  work: DeviceBlock,
  against: DeviceBlock[],
  position: number,
): Promise<{ w: DeviceBlock; work: DeviceBlock; coefficient: Float64Array; betaSquared: Float64Array }> {
  const count = w.count;
  const k = against.length;
  const coefficient = new Float64Array(count);
  const betaSquared = new Float64Array(count);
  let again = new Array<boolean>(count).fill(true);
  for (let pass = 0; pass < 2 && again.some(Boolean); pass++) {
    const c = await state.dots(w, [...against, w]);
    const combination = new Float64Array(count * (k + 1));
    const next = again.slice();
    for (let b = 0; b < count; b++) {
      const at = b * (k + 1);
      combination[at + k] = 1;
      if (!again[b]) continue;
      let removed = 0;
      for (let i = 0; i < k; i++) {
        combination[at + i] = -c[at + i];
        removed += c[at + i] * c[at + i];
      }
      coefficient[b] += c[at + position];
      betaSquared[b] = Math.max(0, c[at + k] - removed);
      next[b] = betaSquared[b] < REORTHOGONALISE_BELOW * c[at + k];
    }
    state.ops.blocks.combineRuns(combination, [...against, w], work);
    [w, work] = [work, w];
    again = next;
  }
  return { w, work, coefficient, betaSquared };
}

/**
 * Whether to drop the finished runs of a block now, `stepsLeft` steps before the block's working
 * set shrinks anyway (a restart) or ends. Dropping copies each of the k working blocks for the
 * live runs, about k·live·n values; carrying a finished run costs, each step, its operator
 * application and Gram–Schmidt against the k blocks (dot products and a combination: ≥ 2k·n
 * values) plus the recurrence, taken as 3k·n. So drop when 3·finished·stepsLeft ≥ live.
 * Speed only: a run's result does not depend on its company.
 */
export function worthCompacting(finished: number, count: number, stepsLeft: number): boolean {
  return finished > 0 && 3 * finished * stepsLeft >= count - finished;
}

/** 0, 1, …, n − 1 */
export function upTo(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
