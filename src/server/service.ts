/**
 * The server's one service: the parts below over one store and one compute queue, and the few
 * operations that span them (import a model and queue its global bound; delete a model after
 * cancelling its jobs; recover and stop). Every number comes from the library through analyse();
 * every error it throws is a LipcertError, turned into a GraphQL error in one place (resolvers.ts).
 * - models.ts: models, their files and parsed networks, and work on a model vs its deletion;
 * - inputs.ts: nominal inputs;
 * - global-bounds.ts: the background global bound;  runs.ts: the run life cycle and its events;
 * - run-executor.ts: where runs are computed (this process, or `lipcert worker`s through Redis:
 *   redis-executor.ts); global bounds are always computed in this process;
 * - datasets.ts, dataset-runs.ts: labelled test sets and their certification, one run per image;
 * - run-request.ts, run-result.ts: pure validation, defaults, cache key and result presentation.
 */
import type { BackendName } from '../backend/backend.js';
import { CancelledError } from '../errors.js';
import type { ResourceLimits } from '../resources.js';
import type { ModelRow, Store } from '../store/db.js';
import { GlobalBounds } from './global-bounds.js';
import { DatasetRuns, MAX_WINDOW } from './dataset-runs.js';
import { Datasets } from './datasets.js';
import { type AddInputArgs, Inputs } from './inputs.js';
import { Models } from './models.js';
import { JobQueue } from './queue.js';
import { InProcessExecutor, type RunExecutor } from './run-executor.js';
import { Runs } from './runs.js';
import { repairIncompleteNumbers } from './stored-numbers.js';

const STOP_TIMEOUT_MS = 10_000;

export interface ServiceOptions {
  /** Compute jobs at a time (runs and global bounds). */
  concurrency: number;
  /** Largest accepted ONNX model or input file, in decoded bytes. */
  maxUploadBytes: number;
  /** Backend for the global bound computed after an import. */
  backgroundBackend: BackendName;
  /** Backend for the forward pass that gives an input's class and margin. */
  inputBackend: BackendName;
  /** Largest estimated peak memory of a model's analysis (checked at import, at startRun and before a global bound). */
  resourceLimits: ResourceLimits;
  /** Where runs are computed (default: in this process, `concurrency` at a time). */
  executor?: RunExecutor;
  /** In-process runs: the compute threads' script (default: run-thread.js of this build; null: none). */
  runThreadScript?: URL | null;
  log: (message: string) => void;
}

export class LipcertService {
  /** The compute queue of this process (global bounds; runs too unless they go to workers). */
  readonly queue: JobQueue;
  readonly executor: RunExecutor;
  readonly models: Models;
  readonly inputs: Inputs;
  readonly globalBounds: GlobalBounds;
  readonly runs: Runs;
  readonly datasets: Datasets;
  readonly datasetRuns: DatasetRuns;
  /** The queue that hands runs to the executor: the compute queue, or an unbounded one for workers. */
  private readonly runQueue: JobQueue;

  constructor(
    readonly store: Store,
    readonly options: ServiceOptions,
  ) {
    this.queue = new JobQueue(options.concurrency);
    this.models = new Models(store, { maxUploadBytes: options.maxUploadBytes, resourceLimits: options.resourceLimits });
    this.inputs = new Inputs(store, this.models, { maxUploadBytes: options.maxUploadBytes, backend: options.inputBackend });
    this.globalBounds = new GlobalBounds(store, this.queue, this.models, { backend: options.backgroundBackend, log: options.log });
    this.executor = options.executor ?? new InProcessExecutor(this.models, options.concurrency, options.runThreadScript);
    this.runQueue = this.executor instanceof InProcessExecutor ? this.queue : new JobQueue(this.executor.dispatchConcurrency);
    this.runs = new Runs(store, this.runQueue, this.models, this.inputs, this.executor);
    this.datasets = new Datasets(store, options.maxUploadBytes);
    // Enough image runs in flight to keep the computing busy while the next images are prepared.
    const window = Math.min(MAX_WINDOW, Math.max(4, 2 * this.executor.dispatchConcurrency));
    this.datasetRuns = new DatasetRuns(store, this.models, this.datasets, this.inputs, this.runs, { window, log: options.log });
  }

  get events() {
    return this.runs.events;
  }

  /** Counters for tests and logs: how much was actually computed. */
  get stats() {
    return { ...this.runs.stats, globalBoundsComputed: this.globalBounds.computed };
  }

  /**
   * After a start: results stored without their numbers (before overflows were caught) become
   * NUMERIC_OVERFLOW failures; runs left RUNNING by a crash are FAILED with a reason; pending global
   * bounds and QUEUED runs are queued again, oldest first.
   */
  async recover(): Promise<{ interrupted: number; requeued: number }> {
    const repaired = await repairIncompleteNumbers(this.store);
    if (repaired.results + repaired.models > 0) {
      this.options.log(`marked ${repaired.results} stored result(s) and ${repaired.models} global bound(s) without their numbers FAILED (NUMERIC_OVERFLOW)`);
    }
    const runs = await this.runs.recover();
    await this.globalBounds.recover();
    const datasetRuns = await this.datasetRuns.recover();
    if (runs.interrupted > 0) this.options.log(`marked ${runs.interrupted} interrupted run(s) FAILED`);
    if (runs.requeued > 0) this.options.log(`queued ${runs.requeued} run(s) again`);
    if (datasetRuns > 0) this.options.log(`resumed ${datasetRuns} dataset run(s)`);
    return runs;
  }

  /** Imports ONNX bytes and queues the new model's global bound; the same bytes again return the existing model. */
  async importModel(name: string, bytes: Uint8Array): Promise<ModelRow> {
    const { model, created, layers } = await this.models.import(name, bytes);
    if (created) {
      this.globalBounds.enqueue(model.id);
      this.options.log(`imported model '${name}' (${model.id}, ${layers} layers)`);
    }
    return model;
  }

  /**
   * Deletes a model with its inputs, runs and cached results. Runs started before the deletion
   * began are cancelled and settled first (so none writes a result afterwards); later ones are
   * NOT_FOUND. Every subscriber of its runs gets a terminal event.
   */
  async deleteModel(id: string): Promise<boolean> {
    const { model, runIds } = await this.models.delete(id, async () => {
      this.globalBounds.cancel(id);
      await this.datasetRuns.removeAllOf(id);
      await this.runs.cancelAllOf(id);
    });
    this.runs.forgetDeleted(runIds);
    this.options.log(`deleted model '${model.name}' (${id})`);
    return true;
  }

  addInput(args: AddInputArgs) {
    return this.inputs.add(args);
  }

  /**
   * Aborts running jobs (their runs are queued again for the next start; on workers they go on
   * computing, and the next start collects their results) and forgets the queue. Dataset runs stay
   * as they are: the next start drives them on.
   */
  async stop(): Promise<void> {
    this.runs.beginStop();
    this.executor.beginStop();
    this.globalBounds.stop();
    const datasetRunsStopped = this.datasetRuns.stop();
    // A job that ignores the abort is left behind: its run stays RUNNING and the next start marks it FAILED.
    let timer: NodeJS.Timeout | undefined;
    const reason = new CancelledError('the server is stopping');
    await Promise.race([
      Promise.all([this.queue.stop(reason), this.runQueue.stop(reason), datasetRunsStopped]),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    this.runs.forgetActive();
    await this.executor.close().catch(() => undefined);
  }
}
