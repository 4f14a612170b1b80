/**
 * Run threads: the server's own process computing runs of small networks on worker threads
 * (run-thread.ts), so that LIPCERT_CONCURRENCY runs use as many cores — a dataset run's images among
 * them — and the event loop serving GraphQL is not the one computing. A run goes to a thread when it
 * asks for CPU or AUTO and its network is small enough that `auto` keeps it on the CPU
 * (autoPrefersCpu): its work is mostly JavaScript on one thread, as in `lipcert dataset`'s lanes.
 * Larger networks, whatever backend they ask for (their onnxruntime calls use every core, and a
 * thread would hold a second copy of the weights), and WebGPU runs stay on the main thread.
 *
 * Each thread computes one run at a time and keeps its model and backend for the next run of the same
 * model; the result is analyse()'s on the same network, input and options, so it is the main
 * thread's (bit for bit with a seed: test/server/run-threads.test.ts). A thread that dies fails its
 * run and is replaced.
 */
import os from 'node:os';
import type { AnalysisProgress, AnalysisResult } from '../analysis/analyse.js';
import type { CpuBackendOptions } from '../backend/cpu/index.js';
import { autoPrefersCpu } from '../backend/select.js';
import { CancelledError, invariant } from '../errors.js';
import { fromWire, JobThread, type WireError } from '../job-thread.js';
import type { Network } from '../model/ir.js';
import type { NetworkBound } from '../bounds/types.js';
import type { RunRequest } from './run-request.js';

export type RunThreadRequest =
  | { kind: 'run'; runId: string; sha256: string; network?: Network; input: Float32Array; request: RunRequest; globalBound?: NetworkBound }
  | { kind: 'cancel'; runId: string }
  | { kind: 'close' };

export type RunThreadReply =
  | { kind: 'started'; runId: string; backend: string; adapter: string }
  | { kind: 'progress'; runId: string; event: AnalysisProgress }
  | { kind: 'result'; runId: string; result: AnalysisResult }
  | { kind: 'error'; runId: string; error: WireError };

/** The compiled thread script next to this module (absent when running from TypeScript sources, e.g. under Jest). */
export const RUN_THREAD_SCRIPT = new URL('./run-thread.js', import.meta.url);

/** Whether a run of `network` asking for `backend` is computed on a thread. */
export function computedOnThread(network: Network, backend: string): boolean {
  return backend !== 'webgpu' && autoPrefersCpu(network);
}

/** What a thread's run reports back, beside its result. */
export interface RunThreadEvents {
  started(backend: string, adapter: string): Promise<void>;
  progress(event: AnalysisProgress): void;
}

export interface RunThreadJob {
  runId: string;
  sha256: string;
  input: Float32Array;
  request: RunRequest;
  globalBound?: NetworkBound;
}

interface PendingRun {
  runId: string;
  events: RunThreadEvents;
  /** Recording the run's start (before its end is). */
  started: Promise<void>;
  resolve: (r: AnalysisResult) => void;
  reject: (e: Error) => void;
}

class RunThread extends JobThread<RunThreadRequest, RunThreadReply, PendingRun> {
  /** The model whose network the thread holds. */
  private sha256: string | undefined;

  constructor(script: URL, cpu: CpuBackendOptions) {
    super(script, { cpu }, 'a compute thread');
  }

  protected receive(reply: RunThreadReply, pending: PendingRun): void {
    invariant(pending.runId === reply.runId, `compute thread: a reply for run ${reply.runId} unexpected`);
    switch (reply.kind) {
      case 'started':
        pending.started = pending.events.started(reply.backend, reply.adapter);
        break;
      case 'progress':
        pending.events.progress(reply.event);
        break;
      case 'result':
      case 'error': {
        this.done();
        const settle = () => (reply.kind === 'result' ? pending.resolve(reply.result) : pending.reject(fromWire(reply.error)));
        pending.started.then(settle, settle);
        break;
      }
    }
  }

  run(job: RunThreadJob, network: Network, signal: AbortSignal, events: RunThreadEvents): Promise<AnalysisResult> {
    const failed = this.failed;
    if (failed) return Promise.reject(failed);
    if (signal.aborted) return Promise.reject(new CancelledError());
    const { runId } = job;
    const cancel = () => this.post({ kind: 'cancel', runId });
    signal.addEventListener('abort', cancel, { once: true });
    // The network is sent with the first run of its model only.
    const send = this.sha256 === job.sha256 ? undefined : network;
    this.sha256 = job.sha256;
    const done = new Promise<AnalysisResult>((resolve, reject) =>
      this.begin({ runId, events, started: Promise.resolve(), resolve, reject }, { kind: 'run', runId, sha256: job.sha256, network: send, input: job.input, request: job.request, globalBound: job.globalBound }),
    );
    return done.finally(() => signal.removeEventListener('abort', cancel));
  }

  /** Let the thread finish (a run in hand is cancelled and given up: a server stop), dispose of its backend and exit. */
  close(): Promise<void> {
    this.giveUp(new CancelledError('the server is stopping'), (pending) => ({ kind: 'cancel', runId: pending.runId }));
    return this.closeWith({ kind: 'close' });
  }
}

/** Up to `size` threads, each computing one run at a time; idle ones are kept (with their model) for the next run. */
export class RunThreads {
  private idle: RunThread[] = [];
  private readonly all = new Set<RunThread>();
  private closed = false;
  /** onnxruntime threads per thread's backend: the cores shared out, so `size` runs do not run size × cores threads. */
  private readonly cpu: CpuBackendOptions;

  constructor(
    readonly size: number,
    private readonly script: URL = RUN_THREAD_SCRIPT,
  ) {
    this.cpu = { threads: Math.max(1, Math.floor(os.availableParallelism() / size)) };
  }

  async run(job: RunThreadJob, network: Network, signal: AbortSignal, events: RunThreadEvents): Promise<AnalysisResult> {
    invariant(!this.closed, 'compute threads closed');
    const thread = this.idle.pop() ?? this.spawn();
    try {
      return await thread.run(job, network, signal, events);
    } finally {
      if (thread.broken || this.closed) {
        this.all.delete(thread);
        void thread.close().catch(() => undefined);
      } else {
        this.idle.push(thread);
      }
    }
  }

  private spawn(): RunThread {
    invariant(this.all.size < this.size, `more than ${this.size} runs on compute threads at once`);
    const thread = new RunThread(this.script, this.cpu);
    this.all.add(thread);
    return thread;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.idle = [];
    await Promise.allSettled([...this.all].map((t) => t.close()));
    this.all.clear();
  }
}
