/**
 * Events in process, keyed by the id of what they are about: the run life cycle publishes run
 * events (`runProgress` subscriptions listen), dataset runs their own (`datasetRunProgress`).
 * `listen()` returns an async iterator that buffers events from the moment it is called, so a
 * subscriber that reads the current state afterwards misses nothing.
 */

export type RunStatus = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';

export interface RunEventPayload {
  runId: string;
  status: RunStatus;
  progress: number;
  message: string;
  phase: string | null;
}

/** A dataset run's state: images done of total. */
export interface DatasetRunEventPayload {
  datasetRunId: string;
  status: RunStatus;
  done: number;
  total: number;
  message: string;
}

export function isTerminal(status: RunStatus): boolean {
  return status === 'SUCCEEDED' || status === 'FAILED' || status === 'CANCELLED';
}

/**
 * One subscriber's events of one run: buffered from `listen()`, ending after a terminal event or at
 * `close()`/`return()`, which end a pending `next()` at once (a client that unsubscribes while the
 * run is quiet leaves nothing behind).
 */
export interface EventStream<T = RunEventPayload> extends AsyncIterableIterator<T> {
  /** Puts the run's current state first (it supersedes buffered progress). */
  startWith(event: T): void;
  close(): void;
}

/** Events of type T about ids (`idOf`), each stream ending after the event that `ends` says is the last. */
export class KeyedEvents<T extends { status: RunStatus }> {
  private readonly listeners = new Map<string, Set<(e: T) => void>>();

  constructor(private readonly idOf: (event: T) => string) {}

  publish(event: T): void {
    for (const listener of this.listeners.get(this.idOf(event)) ?? []) listener(event);
  }

  /** Subscribers of a run (for tests and logs). */
  listenerCount(runId: string): number {
    return this.listeners.get(runId)?.size ?? 0;
  }

  listen(runId: string): EventStream<T> {
    const buffered: T[] = [];
    let waiting: ((result: IteratorResult<T>) => void) | null = null;
    let closed = false;
    const done = (): IteratorResult<T> => ({ value: undefined, done: true });
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
    const deliver = (event: T): IteratorResult<T> => {
      if (isTerminal(event.status)) {
        buffered.length = 0; // the terminal event is the last one
        close();
      }
      return { value: event, done: false };
    };
    const listener = (event: T) => {
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
    const stream: EventStream<T> = {
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

export class RunEvents extends KeyedEvents<RunEventPayload> {
  constructor() {
    super((event) => event.runId);
  }
}

export class DatasetRunEvents extends KeyedEvents<DatasetRunEventPayload> {
  constructor() {
    super((event) => event.datasetRunId);
  }
}
