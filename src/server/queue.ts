/**
 * The compute queue: FIFO, at most `concurrency` jobs at a time, each cancellable through the
 * AbortSignal it is given. The queue knows nothing of runs; the caller records state.
 */

export interface Job {
  id: string;
  /** Does the work; must settle soon after `signal` aborts. */
  run(signal: AbortSignal): Promise<void>;
}

export class JobQueue {
  private readonly pending: Job[] = [];
  private readonly running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  private stopped = false;

  constructor(readonly concurrency = 1) {
    if (!(concurrency >= 1)) throw new Error(`lipcert internal error: concurrency ${concurrency}`);
  }

  push(job: Job): void {
    if (this.stopped) return;
    this.pending.push(job);
    this.pump();
  }

  has(id: string): boolean {
    return this.running.has(id) || this.pending.some((j) => j.id === id);
  }

  /** Drops a queued job ('queued') or aborts a running one ('running'); false if unknown. */
  cancel(id: string, reason?: unknown): 'queued' | 'running' | false {
    const i = this.pending.findIndex((j) => j.id === id);
    if (i >= 0) {
      this.pending.splice(i, 1);
      return 'queued';
    }
    const active = this.running.get(id);
    if (active) {
      active.controller.abort(reason);
      return 'running';
    }
    return false;
  }

  /** Forgets queued jobs, aborts running ones and waits for them to settle. */
  async stop(reason?: unknown): Promise<void> {
    this.stopped = true;
    this.pending.length = 0;
    const active = [...this.running.values()];
    for (const a of active) a.controller.abort(reason);
    await Promise.allSettled(active.map((a) => a.done));
  }

  get size(): { pending: number; running: number } {
    return { pending: this.pending.length, running: this.running.size };
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.concurrency && this.pending.length > 0) {
      const job = this.pending.shift()!;
      const controller = new AbortController();
      const done = Promise.resolve()
        .then(() => job.run(controller.signal))
        .catch((error: unknown) => console.error(`lipcert: job ${job.id} threw:`, error))
        .finally(() => {
          this.running.delete(job.id);
          this.pump();
        });
      this.running.set(job.id, { controller, done });
    }
  }
}
