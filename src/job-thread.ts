/**
 * A worker thread that does one job at a time for the thread that owns it: a dataset lane
 * (dataset/lanes.ts) or a compute thread of the server (server/run-threads.ts). The job in hand is
 * `pending`; the first failure — the thread's error or exit, or the job given up — sticks, rejects
 * the job in hand and every later one. The thread is never terminated: it is asked to abort its job
 * and to close, and exits after it (an onnxruntime call completing in a terminated thread aborts the
 * whole process with "terminate called after throwing an instance of 'Napi::Error'").
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CancelledError, type ErrorCode, invariant, LipcertError } from './errors.js';

/** Whether a thread script exists: the compiled one next to its module (absent when running from TypeScript sources, e.g. under Jest). */
export function threadScriptAvailable(script: URL): boolean {
  return existsSync(fileURLToPath(script));
}

/** An error as a thread posts it (structured-cloned: plain data). */
export interface WireError {
  message: string;
  code?: ErrorCode;
  name: string;
}

export function toWire(e: unknown): WireError {
  const error = e as Error;
  return { message: error?.message ?? String(e), code: e instanceof LipcertError ? e.code : undefined, name: error?.name ?? 'Error' };
}

/** The thread's error on this side: the same LipcertError code (a CancelledError for CANCELLED), name and message. */
export function fromWire(error: WireError): Error {
  if (error.code === 'CANCELLED') return new CancelledError(error.message);
  if (error.code) return Object.assign(new LipcertError(error.code, error.message), { name: error.name });
  return new Error(error.message);
}

export interface PendingJob {
  reject(error: Error): void;
}

export abstract class JobThread<Message, Reply, Pending extends PendingJob> {
  private readonly worker: Worker;
  private pending: Pending | null = null;
  private failure: Error | null = null;
  private exited = false;

  /** @param what the thread in messages ("a dataset lane's thread"). */
  constructor(
    script: URL,
    workerData: unknown,
    private readonly what: string,
  ) {
    this.worker = new Worker(script, { workerData });
    this.worker.on('message', (reply: Reply) => {
      // A job given up may still be answered before the thread closes.
      if (!this.pending && this.failure) return;
      invariant(this.pending, `${what}: a reply without a job`);
      this.receive(reply, this.pending);
    });
    this.worker.on('error', (error) => this.fail(error));
    this.worker.on('exit', (code) => {
      this.exited = true;
      this.fail(new Error(`lipcert internal error: ${what} exited (status ${code})`));
    });
  }

  /** A reply about the job in hand; `done()` when it is the last one. */
  protected abstract receive(reply: Reply, pending: Pending): void;

  get broken(): boolean {
    return this.failure !== null;
  }

  /** The sticky failure, if any (a new job is rejected with it). */
  protected get failed(): Error | null {
    return this.failure;
  }

  /** Hands the thread a job. */
  protected begin(pending: Pending, message: Message): void {
    invariant(!this.pending, `${this.what} does one job at a time`);
    this.pending = pending;
    this.worker.postMessage(message);
  }

  /** The job in hand is answered: no longer pending. */
  protected done(): void {
    this.pending = null;
  }

  protected post(message: Message): void {
    if (!this.exited) this.worker.postMessage(message);
  }

  /** Gives the job in hand up: rejected with `error` now (the failure sticks); `cancel` asks the thread to abort it. */
  protected giveUp(error: Error, cancel: (pending: Pending) => Message): void {
    const pending = this.pending;
    this.fail(error);
    if (pending) this.post(cancel(pending));
  }

  /** Sends `message` (the thread finishes its job, disposes of what it holds and exits) and waits for the exit. */
  protected async closeWith(message: Message): Promise<void> {
    if (this.exited) return;
    const exited = new Promise((resolve) => this.worker.once('exit', resolve));
    this.worker.postMessage(message);
    await exited;
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.pending?.reject(this.failure);
    this.pending = null;
  }
}
