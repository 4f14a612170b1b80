/**
 * deleteModel against startRun on a fresh server. Deletion is atomic with respect to new runs: a
 * start that began before the deletion gets its run, which is cancelled and deleted with the model
 * (its subscribers get a terminal event and complete); one after it is NOT_FOUND. Afterwards no run,
 * input or cached result of the model is left: the same bytes imported again compute the same
 * request anew (`cached: false`). First the two orderings in process, then 50 startRun calls over
 * HTTP racing one deleteModel, every run followed over graphql-ws.
 */
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { startServer, type ServerHandle } from '../../src/server/server.js';
import { type GqlError, codeOf, fixtureBase64, gql, importMnist8, tempDataDir, waitFor } from './client.js';

const quiet = () => undefined;
const START = `mutation($m: ID!, $i: ID!, $eps: [Float!]!) { startRun(modelId: $m, inputId: $i, eps: $eps, backend: CPU) { id cached } }`;
const PROGRESS = `subscription($id: ID!) { runProgress(runId: $id) { status message run { id status } } }`;

interface Followed {
  /** Settles at the first event (or at the end, if there was none). */
  started: Promise<void>;
  /** The events, and the error if the subscription ended with one. */
  ended: Promise<{ events: { status: string; message: string; run: { id: string } | null }[]; errors?: GqlError[]; timedOut?: true }>;
}

describe('deleteModel racing startRun', () => {
  const data = tempDataDir();
  let server: ServerHandle;
  let ws: ReturnType<typeof createClient>;

  /** Follows a run's progress on the shared graphql-ws connection. */
  function follow(runId: string, timeoutMs = 60_000): Followed {
    let markStarted!: () => void;
    const started = new Promise<void>((resolve) => (markStarted = resolve));
    const ended = new Promise<Awaited<Followed['ended']>>((resolve) => {
      const events: Awaited<Followed['ended']>['events'] = [];
      const timer = setTimeout(() => {
        stop();
        resolve({ events, timedOut: true });
      }, timeoutMs);
      const stop = ws.subscribe<{ runProgress: (typeof events)[number] }>(
        { query: PROGRESS, variables: { id: runId } },
        {
          next: (value) => {
            if (value.errors) return resolve({ events, errors: value.errors as GqlError[] });
            events.push(value.data!.runProgress);
            markStarted();
          },
          error: (errors) => {
            clearTimeout(timer);
            markStarted();
            resolve({ events, errors: errors as GqlError[] });
          },
          complete: () => {
            clearTimeout(timer);
            markStarted();
            resolve({ events });
          },
        },
      );
    });
    return { started, ended };
  }

  /** The subscription ended: with a terminal event, or NOT_FOUND for a run already deleted. */
  async function expectEnded(followed: Followed) {
    const end = await followed.ended;
    expect(end.timedOut).toBeUndefined();
    if (end.errors) {
      expect(end.errors[0].extensions?.code).toBe('NOT_FOUND');
    } else {
      expect(['SUCCEEDED', 'FAILED', 'CANCELLED']).toContain(end.events.at(-1)?.status);
    }
    return end;
  }

  beforeAll(async () => {
    server = await startServer({ port: 0, dataDir: data.dir, preload: false, log: quiet, backgroundBackend: 'cpu', concurrency: 1 });
    ws = createClient({ url: server.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
  });
  afterAll(async () => {
    await ws?.dispose();
    await server?.stop();
    data.remove();
  });

  test('in process: a start before the deletion gets a run that ends with the model; one after it is NOT_FOUND; the same bytes imported meanwhile make a new model', async () => {
    const { m, i } = await importMnist8(server.url);
    const service = server.service;
    const early = service.runs.start({ modelId: m, inputId: i, eps: [0.01] });
    const deletion = service.deleteModel(m);
    const late = service.runs.start({ modelId: m, inputId: i, eps: [0.02] });
    const lateInput = service.addInput({ modelId: m, bytes: Buffer.from(fixtureBase64('mnist_8.png'), 'base64'), format: 'png' });
    // The same bytes imported during the deletion: a new model, after it.
    const reimport = service.importModel('again', Buffer.from(fixtureBase64('mnist_lenet.onnx'), 'base64'));
    await expect(late).rejects.toMatchObject({ code: 'NOT_FOUND', message: `no model with id '${m}'` });
    await expect(lateInput).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const run = await early;
    const stream = service.events.listen(run.id);
    const state = await service.runs.find(run.id);
    if (state) stream.startWith(service.runs.stateOf(state));
    expect(await deletion).toBe(true);
    // The subscriber attached before the run was deleted gets its end.
    const statuses: string[] = [];
    for await (const event of stream) statuses.push(event.status);
    expect(statuses.at(-1)).toBe('CANCELLED');
    expect(await service.runs.find(run.id)).toBeNull();
    await expect(service.deleteModel(m)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const again = await reimport;
    expect(again.id).not.toBe(m);
    expect((await service.models.list()).map((model) => model.id)).toEqual([again.id]);
    expect(await service.deleteModel(again.id)).toBe(true);
  });

  test('50 startRun calls racing one deleteModel leave no orphan run, no hanging subscriber and no cached result', async () => {
    const { m, i } = await importMnist8(server.url);
    const prisma = server.service.store.prisma;
    const { sha256 } = await prisma.model.findUniqueOrThrow({ where: { id: m } });
    await waitFor('the global bound', async () => (await gql(server.url, `query($id: ID!) { model(id: $id) { globalBoundStatus } }`, { id: m })).data.model.globalBoundStatus === 'DONE', 120_000);

    // Five runs exist before the race, followed by subscribers that have seen their first event.
    const start = (k: number) => gql(server.url, START, { m, i, eps: [0.001 * (k + 1)] });
    const before = await Promise.all([0, 1, 2, 3, 4].map(start));
    const followers = before.map((r) => follow(r.data.startRun.id));
    await Promise.all(followers.map((f) => f.started));

    // 45 more starts, the deletion sent among them; each accepted run is followed at once.
    const racing = Array.from({ length: 45 }, (_, n) => n + 5);
    const starts = racing.slice(0, 20).map(start);
    const deletion = gql(server.url, `mutation($id: ID!) { deleteModel(id: $id) }`, { id: m });
    starts.push(...racing.slice(20).map(start));
    const followed = starts.map(async (s) => {
      const r = await s;
      if (r.errors) {
        expect(codeOf(r)).toBe('NOT_FOUND');
        expect(r.errors[0].message).toBe(`no model with id '${m}'`);
        return null;
      }
      return follow(r.data.startRun.id);
    });
    expect((await deletion).data.deleteModel).toBe(true);
    const accepted = (await Promise.all(followed)).filter((f): f is Followed => f !== null);
    for (const f of [...followers, ...accepted]) await expectEnded(f);
    // After the deletion every start is NOT_FOUND.
    expect(codeOf(await start(99))).toBe('NOT_FOUND');

    // Nothing of the model is left, also once the queue is idle (no run finishing late writes a result).
    await waitFor('an idle queue', async () => server.service.queue.size.running === 0 && server.service.queue.size.pending === 0);
    expect(await prisma.run.count()).toBe(0);
    expect(await prisma.input.count({ where: { modelId: m } })).toBe(0);
    expect(await prisma.result.count({ where: { modelSha256: sha256 } })).toBe(0);
    for (const r of before) expect(server.service.events.listenerCount(r.data.startRun.id)).toBe(0);
    expect((await gql(server.url, '{ runs { totalCount } }')).data.runs.totalCount).toBe(0);

    // The same bytes again: a new model, and the first request computes, not served from a cache.
    const again = await importMnist8(server.url);
    expect(again.m).not.toBe(m);
    const computed = server.service.stats.runsComputed;
    const repeat = await gql(server.url, START, { m: again.m, i: again.i, eps: [0.001] });
    expect(repeat.data.startRun.cached).toBe(false);
    const end = await expectEnded(follow(repeat.data.startRun.id, 120_000));
    expect(end.events.at(-1)!.status).toBe('SUCCEEDED');
    expect(server.service.stats.runsComputed).toBe(computed + 1);
  });
});
