/**
 * The pieces under the server, without HTTP: the FIFO job queue (bounded concurrency,
 * cancellation), run event streams, the query depth rule and the cache key.
 */
import { jest } from '@jest/globals';
import { buildSchema, parse, specifiedRules, validate } from 'graphql';
import { cacheKey } from '../../src/store/cache-key.js';
import { depthLimit } from '../../src/server/depth-limit.js';
import { JobQueue } from '../../src/server/queue.js';
import { RunEvents, type RunEventPayload, type RunStatus } from '../../src/server/events.js';
import { loadTypeDefs } from '../../src/server/schema.js';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('JobQueue', () => {
  test('runs jobs first in, first out, one at a time by default', async () => {
    const queue = new JobQueue();
    const order: string[] = [];
    let running = 0;
    let most = 0;
    const all = ['a', 'b', 'c', 'd'].map((id) => {
      const done = deferred();
      queue.push({
        id,
        run: async () => {
          running++;
          most = Math.max(most, running);
          order.push(id);
          await new Promise((r) => setTimeout(r, 5));
          running--;
          done.resolve();
        },
      });
      return done.promise;
    });
    await Promise.all(all);
    expect(order).toEqual(['a', 'b', 'c', 'd']);
    expect(most).toBe(1);
  });

  test('runs up to `concurrency` jobs at once', async () => {
    const queue = new JobQueue(2);
    const gate = deferred();
    const started: string[] = [];
    for (const id of ['a', 'b', 'c']) queue.push({ id, run: async () => { started.push(id); await gate.promise; } });
    await new Promise((r) => setTimeout(r, 10));
    expect(started).toEqual(['a', 'b']);
    expect(queue.size).toEqual({ pending: 1, running: 2 });
    gate.resolve();
    await new Promise((r) => setTimeout(r, 10));
    expect(started).toEqual(['a', 'b', 'c']);
  });

  test('cancels a queued job before it starts and aborts a running one', async () => {
    const queue = new JobQueue();
    const ran: string[] = [];
    const aborted = deferred();
    queue.push({
      id: 'long',
      run: (signal) =>
        new Promise<void>((resolve) => {
          ran.push('long');
          signal.addEventListener('abort', () => {
            aborted.resolve();
            resolve();
          });
        }),
    });
    queue.push({ id: 'queued', run: async () => void ran.push('queued') });
    const after = deferred();
    queue.push({ id: 'after', run: async () => { ran.push('after'); after.resolve(); } });
    await new Promise((r) => setTimeout(r, 5));
    expect(queue.cancel('queued')).toBe('queued');
    expect(queue.cancel('long')).toBe('running');
    expect(queue.cancel('nothing')).toBe(false);
    await aborted.promise;
    await after.promise;
    expect(ran).toEqual(['long', 'after']);
  });

  test('a job that throws does not stop the queue', async () => {
    const queue = new JobQueue();
    const spy = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    const next = deferred();
    queue.push({ id: 'bad', run: async () => { throw new Error('boom'); } });
    queue.push({ id: 'good', run: async () => next.resolve() });
    await next.promise;
    expect(spy).toHaveBeenCalled();
    spy.mockRestore();
  });
});

describe('RunEvents', () => {
  const event = (status: RunStatus, progress: number): RunEventPayload => ({ runId: 'r', status, progress, message: '', phase: null });

  test('delivers events published after listen() and ends after the terminal one', async () => {
    const events = new RunEvents();
    const stream = events.listen('r');
    events.publish(event('RUNNING', 0.5));
    events.publish({ ...event('RUNNING', 0.9), runId: 'other' });
    setTimeout(() => events.publish(event('SUCCEEDED', 1)), 5);
    const seen: RunEventPayload[] = [];
    for await (const e of stream) seen.push(e);
    expect(seen.map((e) => [e.status, e.progress])).toEqual([['RUNNING', 0.5], ['SUCCEEDED', 1]]);
    expect(events.listenerCount('r')).toBe(0);
  });

  test('startWith() puts the current state first and drops older progress, not the end', async () => {
    const events = new RunEvents();
    const stream = events.listen('r');
    events.publish(event('RUNNING', 0.1));
    events.publish(event('FAILED', 0.3));
    stream.startWith(event('RUNNING', 0.2));
    const seen: number[] = [];
    for await (const e of stream) seen.push(e.progress);
    expect(seen).toEqual([0.2, 0.3]);
  });

  test('return() ends a pending next() at once and removes the listener', async () => {
    const events = new RunEvents();
    const stream = events.listen('r');
    expect(events.listenerCount('r')).toBe(1);
    const pending = stream.next();
    await stream.return!();
    await expect(pending).resolves.toEqual({ value: undefined, done: true });
    expect(events.listenerCount('r')).toBe(0);
  });
});

describe('depthLimit', () => {
  const schema = buildSchema(loadTypeDefs());
  const check = (query: string, max: number) => validate(schema, parse(query), [...specifiedRules, depthLimit(max)]);

  test('accepts queries up to the limit, fragments included, and refuses deeper ones', () => {
    const q = '{ models { inputs { model { id } } } }'; // depth 4
    expect(check(q, 4)).toEqual([]);
    expect(check(q, 3).map((e) => e.message)).toEqual(['query depth 4 exceeds the limit of 3']);
    const viaFragment = '{ models { ...M } } fragment M on Model { inputs { model { inputs { id } } } }'; // depth 5
    expect(check(viaFragment, 5)).toEqual([]);
    expect(check(viaFragment, 4)).toHaveLength(1);
  });
});

describe('cacheKey', () => {
  const base = {
    modelSha256: 'a'.repeat(64),
    inputSha256: 'b'.repeat(64),
    eps: [0.01, 0.1],
    method: 'm',
    params: { radius: false, tolerance: undefined },
    engineVersion: '1',
  };

  test('is stable and changes with every part', () => {
    const key = cacheKey(base);
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(cacheKey({ ...base, params: { tolerance: undefined, radius: false } })).toBe(key);
    const variants = [
      { ...base, modelSha256: 'c'.repeat(64) },
      { ...base, inputSha256: 'c'.repeat(64) },
      { ...base, eps: [0.01] },
      { ...base, eps: [0.1, 0.01] },
      { ...base, method: 'other' },
      { ...base, params: { radius: true } },
      { ...base, params: { radius: false, tolerance: 1e-8 } },
      { ...base, engineVersion: '2' },
    ];
    const keys = new Set(variants.map(cacheKey));
    expect(keys.size).toBe(variants.length);
    expect(keys.has(key)).toBe(false);
  });
});
