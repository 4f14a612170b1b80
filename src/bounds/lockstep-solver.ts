/**
 * A NormSolver (norms.ts) of Lanczos estimates like SpectralSolver (layer-bounds.ts), whose norms
 * come from lock-step Lanczos (lanczos-block.ts), so the bound pipeline can use it unchanged:
 * - `norm()` alone is a lock-step solve of one run: the device engine on a GPU (one read-back per
 *   block of steps instead of two per step), spectral.ts's arithmetic on the CPU;
 * - `together(tasks)` runs several bound computations concurrently — the ε values of one image,
 *   or B images — and whenever every unfinished task is waiting for a norm, solves the waiting
 *   requests of each layer as one block: one batched operator call per Lanczos step for them all.
 *   A task that needs no norm at some layer (a zero mask: an exact 0) simply reaches its next
 *   layer's request, which waits in the next group. Which requests share a block, and their order
 *   in it (the tasks' order), depend only on the tasks, not on timing; each run's result does not
 *   depend on its company (up to the operator's float32 rounding), so batching changes speed only.
 * Warm starts are kept per key as in SpectralSolver and seeds are the layer index + 1 as there
 * (so `norm()` alone gives SpectralSolver's numbers up to rounding);
 * requests of one group that share a key (the same layer at several ε) all start from the vector
 * stored before the group, and the last of them stores its Ritz vector.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Backend, DeviceVector } from '../backend/backend.js';
import type { AffineLayer } from '../model/ir.js';
import { largestEigenvaluesLockstep } from './lanczos-block.js';
import type { SpectralSettings } from './layer-bounds.js';
import type { LockstepEngine } from './lockstep.js';
import type { NormPrecision, NormSolver } from './norms.js';
import type { SpectralNormReport } from './types.js';

export interface LockstepSolverSettings extends SpectralSettings {
  /** 'host' or 'device' (lockstep.ts); default by the backend. */
  engine?: LockstepEngine;
  /** Device engine: steps per read-back (lanczos-block.ts's default when absent). */
  stepsPerReadBack?: number;
}

/** One norm a bound computation asks for: ||Λ A D|| of `layer` with D = domainMask, Λ² = slopeSquared. */
export interface NormRequest {
  key: string;
  layerIndex: number;
  layer: AffineLayer;
  domainMask: Float32Array | null;
  slopeSquared: Float32Array | null;
}

/** The index of the `together` task a norm request comes from (AsyncLocalStorage follows awaits). */
const taskIndex = new AsyncLocalStorage<number>();

interface Waiting extends NormRequest {
  /** Index of the task that asked (order within a block; 0 outside `together`). */
  task: number;
  resolve: (report: SpectralNormReport) => void;
  reject: (error: unknown) => void;
}

export class LockstepSpectralSolver implements NormSolver {
  /** Tasks of `together` still running; 0 outside it (every request is solved at once). */
  private live = 0;
  private waiting: Waiting[] = [];
  private flushing = false;
  /** Batched solves so far and the runs they held (for benchmarks). */
  readonly batches: number[] = [];

  constructor(
    private readonly backend: Backend,
    private readonly settings: LockstepSolverSettings,
    private readonly starts = new Map<string, DeviceVector>(),
  ) {}

  get tolerance(): number {
    return this.settings.tolerance;
  }

  /** This solver at another tolerance, sharing its warm starts (disposing either frees them). */
  withTolerance(tolerance: number): LockstepSpectralSolver {
    return new LockstepSpectralSolver(this.backend, { ...this.settings, tolerance }, this.starts);
  }

  /** ||Λ A D|| (an estimate; `precision` concerns certificates only). */
  norm(key: string, layerIndex: number, layer: AffineLayer, domainMask: Float32Array | null, slopeSquared: Float32Array | null, precision?: NormPrecision): Promise<SpectralNormReport> {
    void precision;
    return new Promise((resolve, reject) => {
      this.waiting.push({ key, layerIndex, layer, domainMask, slopeSquared, task: taskIndex.getStore() ?? 0, resolve, reject });
      this.maybeFlush();
    });
  }

  /**
   * Runs the tasks concurrently, each given this solver; their norm requests are solved in
   * lock-step, one block per layer, whenever all unfinished tasks wait for one.
   */
  async together<T>(tasks: ((solver: NormSolver) => Promise<T>)[]): Promise<T[]> {
    this.live += tasks.length;
    return Promise.all(
      tasks.map((task, index) =>
        taskIndex.run(index, async () => {
          try {
            return await task(this);
          } finally {
            this.live--;
            this.maybeFlush();
          }
        }),
      ),
    );
  }

  dispose(): void {
    for (const v of this.starts.values()) this.backend.vectors.free(v);
    this.starts.clear();
  }

  /** Starts solving when every unfinished task waits for a norm (one solve at a time). */
  private maybeFlush(): void {
    if (!this.flushing && this.waiting.length > 0 && this.waiting.length >= this.live) void this.flush();
  }

  /** Solves every waiting request: one lock-step block per layer. */
  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      const groups = new Map<AffineLayer, Waiting[]>();
      // In task order, whatever order the tasks' awaits resolved in: blocks, warm starts and
      // results do not depend on timing.
      for (const request of [...this.waiting].sort((a, b) => a.task - b.task)) {
        const group = groups.get(request.layer) ?? [];
        groups.set(request.layer, group);
        group.push(request);
      }
      this.waiting = [];
      for (const group of groups.values()) {
        try {
          const reports = await this.norms(group);
          group.forEach((request, i) => request.resolve(reports[i]));
        } catch (error) {
          for (const request of group) request.reject(error);
        }
      }
    } finally {
      this.flushing = false;
    }
    this.maybeFlush();
  }

  /** ||Λ_b A D_b|| of several requests on one layer, in one lock-step solve. */
  async norms(requests: NormRequest[]): Promise<SpectralNormReport[]> {
    const { layer, layerIndex } = requests[0];
    const count = requests.length;
    const backend = this.backend;
    const op = await backend.gramBlockOperator(layer, concatenated(requests.map((r) => r.domainMask)), concatenated(requests.map((r) => r.slopeSquared)), count);
    this.batches.push(count);
    try {
      const settings = this.settings;
      const result = await largestEigenvaluesLockstep(op, backend, {
        tolerance: settings.tolerance,
        maxIterations: settings.maxIterations,
        starts: requests.map((r) => this.starts.get(r.key)),
        seeds: requests.map(() => layerIndex + 1),
        signal: settings.signal,
        onIteration: (_run, iteration) => settings.onIteration?.(layerIndex, iteration),
        engine: settings.engine,
        stepsPerReadBack: settings.stepsPerReadBack,
      });
      return result.runs.map((run, b) => {
        const previous = this.starts.get(requests[b].key);
        if (previous) backend.vectors.free(previous);
        this.starts.set(requests[b].key, run.vector);
        return {
          value: Math.sqrt(run.eigenvalue),
          quality: 'estimate',
          iterations: run.iterations,
          relativeChange: run.relativeChange,
          relativeResidual: run.relativeResidual,
          converged: run.converged,
        };
      });
    } finally {
      op.dispose();
    }
  }
}

/** The runs' masks (or slopes) one after another; null when every run has none (identity). */
function concatenated(parts: (Float32Array | null)[]): Float32Array | null {
  const present = parts.find((p) => p !== null);
  if (!present) return null;
  const per = present.length;
  const out = new Float32Array(parts.length * per).fill(1);
  parts.forEach((p, b) => p && out.set(p, b * per));
  return out;
}
