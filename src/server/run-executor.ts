/**
 * Where a run's analysis is computed, behind one interface with two implementations:
 * - InProcessExecutor (the default): analyse() in the server's own process, on a backend kept for
 *   the next run of the same model (backend/pool.ts); the server's JobQueue (queue.ts) bounds how
 *   many run at once (LIPCERT_CONCURRENCY). Runs the CPU backend computes go to compute threads
 *   (run-threads.ts), up to that many at once; the others run on the main thread, one at a time.
 * - RedisExecutor (redis-executor.ts, with LIPCERT_REDIS_URL): a job on a BullMQ queue on Redis,
 *   computed by any number of `lipcert worker` processes (src/worker/), its progress and result
 *   handed back through the queue.
 * Either way the executor only computes and reports (a worker starts, progress, the result with the
 * name of the worker that computed it); runs.ts records every state in the store and publishes the
 * events: the server is the only writer of the database and the only source of subscriptions.
 */
import { analyse, type AnalysisProgress, type AnalysisResult } from '../analysis/analyse.js';
import type { BackendName } from '../backend/backend.js';
import type { NetworkBound } from '../bounds/types.js';
import { BackendPool } from '../backend/pool.js';
import { CancelledError } from '../errors.js';
import type { ModelRow } from '../store/db.js';
import type { Models } from './models.js';
import { analysisOptions, type RunRequest } from './run-request.js';
import { threadScriptAvailable } from '../job-thread.js';
import { computedOnThread, RUN_THREAD_SCRIPT, RunThreads } from './run-threads.js';

/** The worker name of results computed in the server's own process. */
export const IN_PROCESS_WORKER = 'server';

/** What one run computes: the model (by its bytes' sha256), the normalised input and the request. */
export interface RunJob {
  runId: string;
  model: ModelRow;
  input: Float32Array;
  request: RunRequest;
  /** The model's global bound, when the run takes it as its own (reusableGlobalBound). */
  globalBound?: NetworkBound;
}

/** Who computes a run; the backend and adapter once the worker has created its backend. */
export interface RunStart {
  worker: string;
  backend?: string;
  adapter?: string;
}

export interface ExecutionEvents {
  /** A worker starts the run (again, after another one died: the run's worker changes). */
  started(start: RunStart): Promise<void>;
  progress(event: AnalysisProgress): void;
}

export interface Execution {
  result: AnalysisResult;
  /** The process that computed it. */
  worker: string;
}

export interface RunExecutor {
  /** How many runs the server hands to the executor at once: its own compute limit, or unbounded where workers pull jobs. */
  readonly dispatchConcurrency: number;
  /** Whether a run still computes while the server is down (its job outlives the server: Redis). */
  readonly durable: boolean;
  /** Computes the run; rejects with a CancelledError soon after `signal` aborts, or with the run's error. */
  execute(job: RunJob, signal: AbortSignal, events: ExecutionEvents): Promise<Execution>;
  /** From now on an abort is a server stop: the job is left to finish (durable executors) for the next start. */
  beginStop(): void;
  close(): Promise<void>;
}

/** analyse() in this process (the embedded default), on backends kept for the next run of the same model. */
export class InProcessExecutor implements RunExecutor {
  readonly durable = false;
  /** One idle backend per run computed at once: a dataset's images reuse their sessions. */
  private readonly backends: BackendPool;

  /** Compute threads, where the compiled thread script exists (not under Jest's TypeScript sources). */
  private readonly threads: RunThreads | null;
  /** With threads, the main thread's runs (large networks, WebGPU) one after another: each may use every core and much memory. */
  private mainThreadTurn: Promise<void> = Promise.resolve();

  /** @param threadScript the compute threads' script (default: this build's; null: none, every run on the main thread). */
  constructor(
    private readonly models: Models,
    readonly dispatchConcurrency: number,
    threadScript?: URL | null,
  ) {
    this.backends = new BackendPool(dispatchConcurrency);
    const script = threadScript === undefined ? RUN_THREAD_SCRIPT : threadScript;
    this.threads = script && threadScriptAvailable(script) ? new RunThreads(dispatchConcurrency, script) : null;
  }

  async execute(job: RunJob, signal: AbortSignal, events: ExecutionEvents): Promise<Execution> {
    const network = await this.models.network(job.model);
    if (this.threads && computedOnThread(network, job.request.backend)) {
      await events.started({ worker: IN_PROCESS_WORKER });
      const threadEvents = { started: (backend: string, adapter: string) => events.started({ worker: IN_PROCESS_WORKER, backend, adapter }), progress: (event: AnalysisProgress) => events.progress(event) };
      const result = await this.threads.run({ runId: job.runId, sha256: job.model.sha256, input: job.input, request: job.request, globalBound: job.globalBound }, network, signal, threadEvents);
      return { result, worker: IN_PROCESS_WORKER };
    }
    const release = this.threads ? await this.mainThreadSlot(signal) : () => undefined;
    try {
      await events.started({ worker: IN_PROCESS_WORKER });
      const result = await this.backends.use(network, job.request.backend as BackendName, async (backend) => {
        await events.started({ worker: IN_PROCESS_WORKER, backend: backend.name, adapter: backend.adapter });
        if (signal.aborted) throw new CancelledError();
        return analyse(network, job.input, backend, { ...analysisOptions(job.request, job.globalBound), signal, onProgress: (event) => events.progress(event) });
      });
      return { result, worker: IN_PROCESS_WORKER };
    } finally {
      release();
    }
  }

  /**
   * Waits for the main thread's turn (the run stays QUEUED meanwhile; a cancel ends the wait at once)
   * and resolves with its release. A cancelled wait passes its turn on when it comes.
   */
  private async mainThreadSlot(signal: AbortSignal): Promise<() => void> {
    const before = this.mainThreadTurn;
    let release!: () => void;
    this.mainThreadTurn = new Promise((resolve) => (release = resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        const cancel = () => reject(new CancelledError());
        if (signal.aborted) return cancel();
        signal.addEventListener('abort', cancel, { once: true });
        void before.then(() => {
          signal.removeEventListener('abort', cancel);
          resolve();
        });
      });
    } catch (error) {
      void before.then(release);
      throw error;
    }
    return release;
  }

  beginStop(): void {}

  async close(): Promise<void> {
    await this.threads?.close();
    await this.backends.dispose();
  }
}
