/**
 * The server's one service: the parts below over one store and one compute queue, and the few
 * operations that span them (import a model and queue its global bound; delete a model after
 * cancelling its jobs; recover and stop). Every number comes from the library through analyse();
 * every error it throws is a LipcertError, turned into a GraphQL error in one place (resolvers.ts).
 * - models.ts: models, their files and parsed networks;  inputs.ts: nominal inputs;
 * - global-bounds.ts: the background global bound;  runs.ts: the run life cycle and its events;
 * - run-request.ts, run-result.ts: pure validation, defaults, cache key and result presentation.
 */
import type { BackendName } from '../backend/backend.js';
import { CancelledError } from '../errors.js';
import type { ModelRow, Store } from '../store/db.js';
import { GlobalBounds } from './global-bounds.js';
import { type AddInputArgs, Inputs } from './inputs.js';
import { Models } from './models.js';
import { JobQueue } from './queue.js';
import { Runs } from './runs.js';

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
  log: (message: string) => void;
}

export class LipcertService {
  readonly queue: JobQueue;
  readonly models: Models;
  readonly inputs: Inputs;
  readonly globalBounds: GlobalBounds;
  readonly runs: Runs;

  constructor(
    readonly store: Store,
    readonly options: ServiceOptions,
  ) {
    this.queue = new JobQueue(options.concurrency);
    this.models = new Models(store, options.maxUploadBytes);
    this.inputs = new Inputs(store, this.models, { maxUploadBytes: options.maxUploadBytes, backend: options.inputBackend });
    this.globalBounds = new GlobalBounds(store, this.queue, this.models, { backend: options.backgroundBackend, log: options.log });
    this.runs = new Runs(store, this.queue, this.models, this.inputs);
  }

  get events() {
    return this.runs.events;
  }

  /** Counters for tests and logs: how much was actually computed. */
  get stats() {
    return { ...this.runs.stats, globalBoundsComputed: this.globalBounds.computed };
  }

  /**
   * After a start: runs left RUNNING by a crash are FAILED with a reason; pending global bounds and
   * QUEUED runs are queued again, oldest first.
   */
  async recover(): Promise<{ interrupted: number; requeued: number }> {
    const runs = await this.runs.recover();
    await this.globalBounds.recover();
    if (runs.interrupted > 0) this.options.log(`marked ${runs.interrupted} interrupted run(s) FAILED`);
    if (runs.requeued > 0) this.options.log(`queued ${runs.requeued} run(s) again`);
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

  /** Deletes a model with its inputs, runs and cached results, cancelling its jobs first. */
  async deleteModel(id: string): Promise<boolean> {
    const model = await this.models.get(id);
    this.globalBounds.cancel(id);
    await this.runs.cancelAllOf(id);
    await this.models.remove(model);
    this.options.log(`deleted model '${model.name}' (${id})`);
    return true;
  }

  addInput(args: AddInputArgs) {
    return this.inputs.add(args);
  }

  /** Aborts running jobs (their runs are queued again for the next start) and forgets the queue. */
  async stop(): Promise<void> {
    this.runs.beginStop();
    this.globalBounds.stop();
    // A job that ignores the abort is left behind: its run stays RUNNING and the next start marks it FAILED.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.queue.stop(new CancelledError('the server is stopping')),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    this.runs.forgetActive();
  }
}
