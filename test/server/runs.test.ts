/**
 * The run queue through the server: a duplicate request joins the job already running, queued
 * runs wait their turn (one compute job at a time) and can be cancelled, a running run is
 * cancelled through the AbortSignal, and the queue goes on afterwards.
 */
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { startServer, type ServerHandle } from '../../src/server/server.js';
import { CIFAR_NORM, MNIST_NORM, collectSubscription, fixtureBase64, gql, tempDataDir, waitFor } from './client.js';

const quiet = () => undefined;
const START = `mutation($m: ID!, $i: ID!, $eps: [Float!]!, $radius: Boolean, $tol: Float) {
  startRun(modelId: $m, inputId: $i, eps: $eps, radius: $radius, backend: CPU, tolerance: $tol) { id status cached } }`;
const RUN = `query($id: ID!) { run(id: $id) { id status progress message error { code message } result { local { eps bound } } } }`;
const PROGRESS = `subscription($id: ID!) { runProgress(runId: $id) { status progress message phase } }`;

async function importWithInput(url: string, onnx: string, png: string, norm: { mean: number[]; std: number[] }) {
  const model = await gql(url, `mutation($onnx: String!) { importModel(name: "m", onnxBase64: $onnx) { id } }`, {
    onnx: fixtureBase64(onnx),
  });
  const input = await gql(
    url,
    `mutation($m: ID!, $png: String!, $mean: [Float!], $std: [Float!]) { addInput(modelId: $m, pngBase64: $png, mean: $mean, std: $std) { id } }`,
    { m: model.data.importModel.id, png: fixtureBase64(png), ...norm },
  );
  return { m: model.data.importModel.id as string, i: input.data.addInput.id as string };
}

describe('run queue', () => {
  const data = tempDataDir();
  let server: ServerHandle;

  beforeAll(async () => {
    server = await startServer({ port: 0, dataDir: data.dir, log: quiet, backgroundBackend: 'cpu' });
  });
  afterAll(async () => {
    await server?.stop();
    data.remove();
  });

  test('joins duplicates, queues FIFO, cancels queued and running runs, then goes on', async () => {
    const cifar = await importWithInput(server.url, 'cifar10_net.onnx', 'cifar10_dog4.png', CIFAR_NORM);
    const mnist = await importWithInput(server.url, 'mnist_lenet.onnx', 'mnist_8.png', MNIST_NORM);
    // Let the background global bounds finish so the queue holds only our runs.
    await waitFor('global bounds', async () => server.service.queue.size.running + server.service.queue.size.pending === 0);

    // A long run: the certified radius of the CIFAR-10 net at a tight tolerance.
    const long = (await gql(server.url, START, { ...cifar, eps: [0.001, 0.01, 0.1], radius: true, tol: 1e-9 })).data.startRun;
    const duplicate = (await gql(server.url, START, { ...cifar, eps: [0.001, 0.01, 0.1], radius: true, tol: 1e-9 })).data.startRun;
    expect(duplicate.id).toBe(long.id);
    expect(duplicate.cached).toBe(false);
    expect(server.service.stats.joined).toBe(1);

    const queuedA = (await gql(server.url, START, { ...mnist, eps: [0.05] })).data.startRun;
    const queuedB = (await gql(server.url, START, { ...mnist, eps: [0.06] })).data.startRun;
    expect(queuedA.status).toBe('QUEUED');
    expect(queuedB.status).toBe('QUEUED');

    // A client that unsubscribes from a quiet (queued) run leaves no listener behind.
    const client = createClient({ url: server.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 });
    const first = await new Promise<unknown>((resolve, reject) => {
      const unsubscribe = client.subscribe(
        { query: PROGRESS, variables: { id: queuedB.id } },
        { next: (value) => { unsubscribe(); resolve(value); }, error: reject, complete: () => undefined },
      );
    });
    expect((first as { data: { runProgress: { status: string } } }).data.runProgress.status).toBe('QUEUED');
    await waitFor('the listener to go', async () => server.service.events.listenerCount(queuedB.id) === 0);
    await client.dispose();

    // Cancel a queued run: at once, it never computes.
    const cancelledA = await gql(server.url, `mutation($id: ID!) { cancelRun(id: $id) { status error { code } } }`, { id: queuedA.id });
    expect(cancelledA.data.cancelRun).toEqual({ status: 'CANCELLED', error: { code: 'CANCELLED' } });

    // Cancel the long run once the engine reports progress.
    await waitFor('the long run to make progress', async () => {
      const r = (await gql(server.url, RUN, { id: long.id })).data.run;
      return r.status === 'RUNNING' && r.progress > 0 ? r : null;
    });
    const watcher = collectSubscription(server.wsUrl, PROGRESS, { id: long.id });
    const cancelled = await gql(server.url, `mutation($id: ID!) { cancelRun(id: $id) { status error { code message } } }`, { id: long.id });
    expect(cancelled.data.cancelRun.status).toBe('CANCELLED');
    expect(cancelled.data.cancelRun.error.code).toBe('CANCELLED');
    const events = (await watcher).payloads.map((p) => p.data.runProgress.status);
    expect(events.at(-1)).toBe('CANCELLED');

    // The queue goes on with B; A never ran.
    const b = await collectSubscription(server.wsUrl, PROGRESS, { id: queuedB.id });
    expect(b.payloads.at(-1)!.data.runProgress.status).toBe('SUCCEEDED');
    const a = (await gql(server.url, RUN, { id: queuedA.id })).data.run;
    expect(a.status).toBe('CANCELLED');
    expect(a.result).toBeNull();

    // A cancelled run is not cached: the same request computes again.
    const retry = (await gql(server.url, START, { ...mnist, eps: [0.05] })).data.startRun;
    expect(retry.cached).toBe(false);
    expect(retry.id).not.toBe(queuedA.id);
    const done = await collectSubscription(server.wsUrl, PROGRESS, { id: retry.id });
    expect(done.payloads.at(-1)!.data.runProgress.status).toBe('SUCCEEDED');

    // Two identical requests at the same moment: one run.
    const [p, q] = await Promise.all([
      gql(server.url, START, { ...mnist, eps: [0.07] }),
      gql(server.url, START, { ...mnist, eps: [0.07] }),
    ]);
    expect(p.data.startRun.id).toBe(q.data.startRun.id);
    await collectSubscription(server.wsUrl, PROGRESS, { id: p.data.startRun.id });
  });

  test('a clean stop queues a running run again, and the next start runs it', async () => {
    const cifar = await importWithInput(server.url, 'cifar10_net.onnx', 'cifar10_dog4.png', CIFAR_NORM);
    const long = (await gql(server.url, START, { ...cifar, eps: [0.002, 0.02], radius: true, tol: 1e-9 })).data.startRun;
    await waitFor('the long run to start', async () => (await gql(server.url, RUN, { id: long.id })).data.run.status === 'RUNNING');
    await server.stop();

    server = await startServer({ port: 0, dataDir: data.dir, log: quiet, backgroundBackend: 'cpu' });
    const resumed = await waitFor('the run to start again', async () => {
      const r = (await gql(server.url, RUN, { id: long.id })).data.run;
      return r.status === 'RUNNING' ? r : null;
    });
    expect(resumed.error).toBeNull();
    const cancelled = await gql(server.url, `mutation($id: ID!) { cancelRun(id: $id) { status } }`, { id: long.id });
    expect(cancelled.data.cancelRun.status).toBe('CANCELLED');
  });
});
