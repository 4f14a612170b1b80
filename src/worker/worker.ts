/**
 * startWorker(): a `lipcert worker` process's work. It takes run jobs from the BullMQ queue on Redis
 * (protocol.ts), fetches each job's model from the server by sha256 (model-source.ts), computes the
 * run with analyse() — the same pipeline as the server's own process — reporting that it started
 * and its progress through the job, and returns the result with its name. It never touches the
 * database: the server records everything. BullMQ holds the job's lock while it computes; if this
 * process dies, the lock expires and another worker computes the job again (protocol.ts's
 * settings). A cancel from the server (CANCEL_CHANNEL) aborts the analysis.
 */
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { analyse, throttledProgress } from '../analysis/analyse.js';
import type { BackendName } from '../backend/backend.js';
import { BackendPool } from '../backend/pool.js';
import { analysisOptions } from '../server/run-request.js';
import { ModelSource, serverBase } from './model-source.js';
import {
  CANCEL_CHANNEL,
  checkRedis,
  decodeInput,
  encodeFailure,
  LOCK_DURATION_MS,
  MAX_STALLED_COUNT,
  redactedUrl,
  RUN_QUEUE,
  type RunJobData,
  type RunJobProgress,
  type RunJobResult,
  STALLED_INTERVAL_MS,
} from './protocol.js';

const PROGRESS_MS = 250;

export interface WorkerOptions {
  redisUrl: string;
  /** The lipcert server's URL (http://host:port), for model bytes. */
  serverUrl: string;
  /** Recorded with every result this worker computes. */
  name: string;
  /** The server's API token, if it has one. */
  token?: string;
  /** Backend for runs that ask for AUTO (a run asking for CPU or WEBGPU gets that). */
  backend: BackendName;
  /** Where fetched ONNX files are kept. */
  cacheDir: string;
  /** Jobs at a time (default 1: a job uses the machine's cores). */
  concurrency?: number;
  log: (message: string) => void;
}

export interface WorkerHandle {
  name: string;
  /** Runs computed by this process. */
  readonly computed: number;
  /** Stops taking jobs and waits for the current one. */
  close(): Promise<void>;
}

export async function startWorker(options: WorkerOptions): Promise<WorkerHandle> {
  const server = serverBase(options.serverUrl);
  await checkRedis(options.redisUrl);
  const models = new ModelSource(server, options.token, options.cacheDir);
  // Backends kept for the next job of the same model: one per job computed at once, and one more.
  const backends = new BackendPool((options.concurrency ?? 1) + 1);
  let computed = 0;

  async function compute(job: Job<RunJobData, RunJobResult>, signal: AbortSignal | undefined): Promise<RunJobResult> {
    const { runId, model, input, request, globalBound } = job.data;
    try {
      const network = await models.network(model);
      const result = await backends.use(network, request.backend === 'auto' ? options.backend : request.backend, async (backend) => {
        await job.updateProgress({ kind: 'started', worker: options.name, backend: backend.name, adapter: backend.adapter } satisfies RunJobProgress);
        const report = throttledProgress(PROGRESS_MS, (event) => {
          job.updateProgress({ kind: 'progress', worker: options.name, event } satisfies RunJobProgress).catch(() => undefined);
        });
        return analyse(network, decodeInput(input), backend, { ...analysisOptions(request, globalBound), signal, onProgress: report });
      });
      computed++;
      options.log(`run ${runId}: computed in ${result.seconds.toFixed(2)} s`);
      return { result, worker: options.name };
    } catch (error) {
      options.log(`run ${runId}: ${encodeFailure(error)}`);
      // Not retried: the same job would fail the same way (a cancel, a bad model, ...).
      throw new UnrecoverableError(encodeFailure(error));
    }
  }

  const worker = new Worker<RunJobData, RunJobResult>(RUN_QUEUE, (job, _token, signal) => compute(job, signal), {
    connection: { url: options.redisUrl },
    name: options.name,
    concurrency: options.concurrency ?? 1,
    lockDuration: LOCK_DURATION_MS,
    stalledInterval: STALLED_INTERVAL_MS,
    maxStalledCount: MAX_STALLED_COUNT,
  });
  worker.on('error', (error) => options.log(`Redis: ${error.message}`));
  const subscriber = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
  subscriber.on('error', (error) => options.log(`Redis: ${error.message}`));
  subscriber.on('message', (_channel, runId: string) => {
    if (worker.cancelJob(runId, 'cancelled by the user')) options.log(`run ${runId}: cancelled by the server`);
  });
  await subscriber.subscribe(CANCEL_CHANNEL);
  await worker.waitUntilReady();
  options.log(`ready: taking runs from ${redactedUrl(options.redisUrl)}, models from ${server}, default backend ${options.backend}`);

  let closing: Promise<void> | null = null;
  return {
    name: options.name,
    get computed() {
      return computed;
    },
    close() {
      closing ??= (async () => {
        await worker.close();
        subscriber.disconnect();
        await backends.dispose();
      })();
      return closing;
    },
  };
}
