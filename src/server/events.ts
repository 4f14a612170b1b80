/**
 * Run events in process: the queue publishes, `runProgress` subscriptions listen. `listen()` returns
 * an async iterator that buffers events from the moment it is called, so a subscriber that reads the
 * current state afterwards misses nothing.
 */

export type RunStatus = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';

export interface RunEventPayload {
  runId: string;
  status: RunStatus;
  progress: number;
  message: string;
  phase: string | null;
}

export function isTerminal(status: RunStatus): boolean {
  return status === 'SUCCEEDED' || status === 'FAILED' || status === 'CANCELLED';
}

/**
 * One subscriber's events of one run: buffered from `listen()`, ending after a terminal event or at
 * `close()`/`return()`, which end a pending `next()` at once (a client that unsubscribes while the
 * run is quiet leaves nothing behind).
 */
export interface EventStream extends AsyncIterableIterator<RunEventPayload> {
  /** Puts the run's current state first (it supersedes buffered progress). */
  startWith(event: RunEventPayload): void;
  close(): void;
}

export class RunEvents {
  private readonly listeners = new Map<string, Set<(e: RunEventPayload) => void>>();

  publish(event: RunEventPayload): void {
    for (const listener of this.listeners.get(event.runId) ?? []) listener(event);
  }

  /** Subscribers of a run (for tests and logs). */
  listenerCount(runId: string): number {
    return this.listeners.get(runId)?.size ?? 0;
  }

  listen(runId: string): EventStream {
    const buffered: RunEventPayload[] = [];
    let waiting: ((result: IteratorResult<RunEventPayload>) => void) | null = null;
    let closed = false;
    const done = (): IteratorResult<RunEventPayload> => ({ value: undefined, done: true });
    const listeners = this.listeners;
    let set = listeners.get(runId);
    if (!set) listeners.set(runId, (set = new Set()));
    const close = () => {
      if (closed) return;
      closed = true;
      set!.delete(listener);
      if (set!.size === 0 && listeners.get(runId) === set) listeners.delete(runId);
      waiting?.(done());
      waiting = null;
    };
    const deliver = (event: RunEventPayload): IteratorResult<RunEventPayload> => {
      if (isTerminal(event.status)) {
        buffered.length = 0; // the terminal event is the last one
        close();
      }
      return { value: event, done: false };
    };
    const listener = (event: RunEventPayload) => {
      if (closed) return;
      if (waiting) {
        const resolve = waiting;
        waiting = null;
        resolve(deliver(event));
      } else {
        buffered.push(event);
      }
    };
    set.add(listener);
    const stream: EventStream = {
      startWith(event) {
        // The current state is newer than any progress buffered before it was read; keep only an end.
        const ends = buffered.filter((e) => isTerminal(e.status));
        buffered.length = 0;
        buffered.push(event, ...ends);
      },
      close,
      next() {
        if (buffered.length > 0) return Promise.resolve(deliver(buffered.shift()!));
        if (closed) return Promise.resolve(done());
        return new Promise((resolve) => (waiting = resolve));
      },
      return() {
        buffered.length = 0;
        close();
        return Promise.resolve(done());
      },
      [Symbol.asyncIterator]() {
        return stream;
      },
    };
    return stream;
  }
}
