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

export interface EventStream extends AsyncIterable<RunEventPayload> {
  close(): void;
}

export class RunEvents {
  private readonly listeners = new Map<string, Set<(e: RunEventPayload) => void>>();

  publish(event: RunEventPayload): void {
    for (const listener of this.listeners.get(event.runId) ?? []) listener(event);
  }

  listen(runId: string): EventStream {
    const buffered: RunEventPayload[] = [];
    let wake: (() => void) | null = null;
    let closed = false;
    const listener = (e: RunEventPayload) => {
      buffered.push(e);
      wake?.();
    };
    let set = this.listeners.get(runId);
    if (!set) this.listeners.set(runId, (set = new Set()));
    set.add(listener);
    const close = () => {
      if (closed) return;
      closed = true;
      set!.delete(listener);
      if (set!.size === 0) this.listeners.delete(runId);
      wake?.();
    };
    return {
      close,
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            while (buffered.length > 0) yield buffered.shift()!;
            if (closed) return;
            await new Promise<void>((resolve) => (wake = resolve));
            wake = null;
          }
        } finally {
          close();
        }
      },
    };
  }
}
