/**
 * RedisExecutor: runs computed by `lipcert worker` processes through a BullMQ queue on Redis
 * (LIPCERT_REDIS_URL). A run is one job whose id is the run's id, so adding it again (after a server
 * restart) finds the job that is already there, waiting, active or finished. Progress and results
 * come back through BullMQ's queue events (one listener for all runs, dispatched by job id); a
 * result is handed to runs.ts once per run, however often its job was retried. Cancelling removes
 * a waiting job, or asks the worker computing it to abort (CANCEL_CHANNEL). A server stop leaves the
 * jobs to the workers: the next start collects their results.
 */
import { type Job, Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { CancelledError } from '../errors.js';
import {
  CANCEL_CHANNEL,
  checkRedis,
  decodeFailure,
  encodeInput,
  KEEP_COMPLETED_S,
  KEEP_FAILED_S,
  RUN_QUEUE,
  type RunJobData,
  type RunJobProgress,
  type RunJobResult,
} from '../worker/protocol.js';
import type { Execution, ExecutionEvents, RunExecutor, RunJob } from './run-executor.js';

interface Pending {
  events: ExecutionEvents;
  /** Whether a worker has been reported for this run by this server process. */
  started: boolean;
  /** Every report in order: the result is handed over after the last `started` is recorded. */
  chain: Promise<void>;
  resolve(execution: Execution): void;
  reject(error: unknown): void;
}

export class RedisExecutor implements RunExecutor {
  readonly durable = true;
  /** Workers pull jobs at their own pace: the server hands every run to the queue at once. */
  readonly dispatchConcurrency = Number.POSITIVE_INFINITY;
  private readonly queue: Queue<RunJobData, RunJobResult>;
  private readonly queueEvents: QueueEvents;
  private readonly publisher: Redis;
  private readonly pending = new Map<string, Pending>();
  private stopping = false;

  private constructor(url: string) {
    this.queue = new Queue(RUN_QUEUE, { connection: { url } });
    this.queueEvents = new QueueEvents(RUN_QUEUE, { connection: { url } });
    this.publisher = new Redis(url, { maxRetriesPerRequest: null });
    const logError = (error: Error) => console.error(`lipcert: Redis: ${error.message}`);
    this.queue.on('error', logError);
    this.queueEvents.on('error', logError);
    this.publisher.on('error', logError);
    this.queueEvents.on('progress', ({ jobId, data }) => this.onProgress(jobId, data as RunJobProgress));
    this.queueEvents.on('completed', ({ jobId, returnvalue }) => this.settle(jobId, returnvalue as unknown as RunJobResult));
    this.queueEvents.on('failed', ({ jobId, failedReason }) => this.settle(jobId, undefined, decodeFailure(failedReason)));
  }

  /** Connects to Redis (a clear BACKEND_UNAVAILABLE when it is not there) and listens for the queue's events. */
  static async connect(url: string): Promise<RedisExecutor> {
    await checkRedis(url);
    const executor = new RedisExecutor(url);
    await Promise.all([executor.queue.waitUntilReady(), executor.queueEvents.waitUntilReady()]);
    return executor;
  }

  execute(job: RunJob, signal: AbortSignal, events: ExecutionEvents): Promise<Execution> {
    const runId = job.runId;
    const execution = new Promise<Execution>((resolve, reject) => {
      this.pending.set(runId, { events, started: false, chain: Promise.resolve(), resolve, reject });
    });
    const onAbort = () => void this.abort(runId);
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
    else this.submit(job).catch((error: unknown) => this.settle(runId, undefined, error));
    return execution.finally(() => {
      signal.removeEventListener('abort', onAbort);
      this.pending.delete(runId);
    });
  }

  private async submit(job: RunJob): Promise<void> {
    const data: RunJobData = { runId: job.runId, model: { sha256: job.model.sha256, name: job.model.name }, input: encodeInput(job.input), request: job.request, ...(job.globalBound ? { globalBound: job.globalBound } : {}) };
    await this.queue.add('run', data, { jobId: job.runId, removeOnComplete: { age: KEEP_COMPLETED_S }, removeOnFail: { age: KEEP_FAILED_S } });
    // A job with this id from before a restart may have finished while nobody listened. The state
    // first, then the job: read the other way round, a job finishing in between showed as completed
    // with the result it did not have yet when it was read ("the queue returned no result").
    const state = await this.queue.getJobState(job.runId);
    if (state !== 'completed' && state !== 'failed') return;
    const existing: Job<RunJobData, RunJobResult> | undefined = await this.queue.getJob(job.runId);
    if (!existing) {
      // Removed between the two reads (kept KEEP_COMPLETED_S / KEEP_FAILED_S): say so rather than wait.
      this.settle(job.runId, undefined, new Error('the queue removed the finished job before its result was read'));
      return;
    }
    if (state === 'completed') this.settle(job.runId, existing.returnvalue);
    else this.settle(job.runId, undefined, decodeFailure(existing.failedReason));
  }

  private onProgress(jobId: string, message: RunJobProgress): void {
    const pending = this.pending.get(jobId);
    if (!pending || !message || typeof message !== 'object') return;
    if (message.kind === 'started') {
      pending.started = true;
      pending.chain = pending.chain.then(() => pending.events.started(message)).catch(() => undefined);
    } else if (message.kind === 'progress') {
      if (!pending.started) {
        // A job already running when this server started: its worker is known from its progress.
        pending.started = true;
        pending.chain = pending.chain.then(() => pending.events.started({ worker: message.worker })).catch(() => undefined);
      }
      pending.chain = pending.chain.then(() => pending.events.progress(message.event)).catch(() => undefined);
    }
  }

  /** Hands a job's end to its run once (later reports of the same job find no pending run). */
  private settle(jobId: string, result: RunJobResult | undefined, error?: unknown): void {
    const pending = this.pending.get(jobId);
    if (!pending) return;
    this.pending.delete(jobId);
    void pending.chain.then(() => {
      if (error !== undefined || !result) pending.reject(error ?? new Error('the queue returned no result'));
      else pending.resolve({ result: result.result, worker: result.worker });
    });
  }

  /** A cancel removes a waiting job or asks its worker to abort; a stop leaves it to the workers. */
  private async abort(runId: string): Promise<void> {
    if (this.stopping) {
      this.settle(runId, undefined, new CancelledError('the server is stopping'));
      return;
    }
    this.settle(runId, undefined, new CancelledError('cancelled by the user'));
    try {
      const job = await this.queue.getJob(runId);
      const state = job ? await job.getState() : 'unknown';
      if (state === 'waiting' || state === 'delayed' || state === 'prioritized') await job!.remove();
      else await this.publisher.publish(CANCEL_CHANNEL, runId);
    } catch {
      // Removed meanwhile or taken by a worker: ask the workers to abort it.
      await this.publisher.publish(CANCEL_CHANNEL, runId).catch(() => undefined);
    }
  }

  beginStop(): void {
    this.stopping = true;
  }

  async close(): Promise<void> {
    this.stopping = true;
    await Promise.allSettled([this.queueEvents.close(), this.queue.close()]);
    this.publisher.disconnect();
  }
}
