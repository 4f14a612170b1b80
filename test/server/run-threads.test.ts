/**
 * Compute threads of the server's own process (src/server/run-threads.ts), with the thread script
 * compiled from the current sources (threads run compiled modules): runs of the MNIST fixture on a
 * server with two threads give the numbers of a server computing on its main thread, bit for bit
 * (same requests, same seed), two of them run at once, a cancelled thread run ends CANCELLED and the thread
 * computes the next run, and the choice of thread or main thread follows the backend the run gets.
 */
import os from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { importOnnxFile } from '../../src/model/onnx-import.js';
import { autoPrefersCpu } from '../../src/backend/select.js';
import { computedOnThread } from '../../src/server/run-threads.js';
import { startServer, type ServerHandle } from '../../src/server/server.js';
import { buildCli } from '../helpers/processes.js';
import { conv, network } from '../helpers/random-networks.js';
import { RUN_FIELDS, collectSubscription, FIXTURES, gql, importMnist8, tempDataDir, waitFor } from './client.js';

const quiet = () => undefined;
const START = `mutation($m: ID!, $i: ID!, $eps: [Float!]!, $radius: Boolean, $seed: Int, $branchBudget: Float) {
  startRun(modelId: $m, inputId: $i, eps: $eps, radius: $radius, seed: $seed, branchBudget: $branchBudget, backend: CPU) { ${RUN_FIELDS} }
}`;
const PROGRESS = `subscription($id: ID!) { runProgress(runId: $id) { status run { ${RUN_FIELDS} } } }`;
const RUN = `query($id: ID!) { run(id: $id) { ${RUN_FIELDS} } }`;

test('runs of small networks asking for CPU or AUTO go to threads; larger networks (any backend) and WebGPU stay on the main thread', () => {
  const mnist = importOnnxFile(join(FIXTURES, 'mnist_lenet.onnx'));
  expect(computedOnThread(mnist, 'cpu')).toBe(true);
  expect(computedOnThread(mnist, 'auto')).toBe(true);
  expect(computedOnThread(mnist, 'webgpu')).toBe(false);
  // 64 → 64 channels, 3×3, at 224×224: 1.8e9 multiply-adds, past what `auto` keeps on the CPU.
  const large = network([conv([64, 224, 224], 64, [3, 3])]);
  expect(autoPrefersCpu(large)).toBe(false);
  for (const backend of ['cpu', 'auto', 'webgpu']) expect(computedOnThread(large, backend)).toBe(false);
});

describe('a server computing on threads', () => {
  const threaded = tempDataDir();
  const plain = tempDataDir();
  let build: ReturnType<typeof buildCli>;
  let onThreads: ServerHandle;
  let onMain: ServerHandle;
  let ids: { threads: { m: string; i: string }; main: { m: string; i: string } };

  beforeAll(async () => {
    build = buildCli();
    const script = pathToFileURL(join(dirname(build.cli), 'server', 'run-thread.js'));
    onThreads = await startServer({ port: 0, dataDir: threaded.dir, log: quiet, backgroundBackend: 'cpu', concurrency: 2, runThreadScript: script });
    onMain = await startServer({ port: 0, dataDir: plain.dir, log: quiet, backgroundBackend: 'cpu', concurrency: 2, runThreadScript: null });
    ids = { threads: await importMnist8(onThreads.url), main: await importMnist8(onMain.url) };
  }, 300_000);
  afterAll(async () => {
    await onThreads?.stop();
    await onMain?.stop();
    threaded.remove();
    plain.remove();
    build?.remove();
  });

  async function follow(server: ServerHandle, id: string) {
    const { payloads, error } = await collectSubscription(server.wsUrl, PROGRESS, { id }, 120_000);
    expect(error).toBeUndefined();
    return payloads.at(-1)!.data.runProgress.run;
  }

  test('two runs at once, each with the numbers of the main thread', async () => {
    const requests = [
      { eps: [0.001], radius: true, seed: 5 },
      { eps: [0.01, 0.1], radius: false, seed: 6 },
    ];
    const started = await Promise.all(requests.map((r) => gql(onThreads.url, START, { ...ids.threads, ...r })));
    for (const s of started) expect(s.errors).toBeUndefined();
    const finals = await Promise.all(started.map((s) => follow(onThreads, s.data.startRun.id)));
    for (const f of finals) expect(f).toMatchObject({ status: 'SUCCEEDED', backend: 'cpu' });
    // Both were running at once: each started before the other finished.
    const [a, b] = finals.map((f) => ({ start: Date.parse(f.timings.startedAt), end: Date.parse(f.timings.finishedAt) }));
    expect(a.start).toBeLessThan(b.end);
    expect(b.start).toBeLessThan(a.end);

    for (const [k, request] of requests.entries()) {
      const reference = await gql(onMain.url, START, { ...ids.main, ...request });
      const mainFinal = await follow(onMain, reference.data.startRun.id);
      expect(mainFinal.status).toBe('SUCCEEDED');
      // The same computation, bit for bit (seeded certificates; onnxruntime's sums do not depend on its
      // thread count here). A run without radius reports the model's global bound, computed after
      // the import with fresh random starts on each server: that one is left out.
      const comparable = ({ globalBound, local, ...rest }: any) => ({ ...rest, local: local.map(({ seconds: _s, ...bound }: any) => bound), ...(request.radius ? { globalBound } : {}) });
      expect(comparable(finals[k].result)).toEqual(comparable(mainFinal.result));
      // Computed on a thread: its backend's onnxruntime calls get half the cores (the adapter says how many).
      if (os.availableParallelism() >= 2) expect(finals[k].adapter).not.toBe(mainFinal.adapter);
      expect(finals[k].result.local.length).toBe(request.eps.length);
    }
  }, 300_000);

  test('a cancelled thread run ends CANCELLED, and the threads compute the next runs', async () => {
    // A refinement budget keeps the run busy long enough to be cancelled while it computes.
    const long = await gql(onThreads.url, START, { ...ids.threads, eps: [0.002], radius: true, seed: 7, branchBudget: 600 });
    expect(long.errors).toBeUndefined();
    const id = long.data.startRun.id;
    await waitFor('the run to compute', async () => {
      const run = (await gql(onThreads.url, RUN, { id })).data.run;
      return run.status === 'RUNNING' && run.progress > 0;
    });
    await gql(onThreads.url, `mutation($id: ID!) { cancelRun(id: $id) { status } }`, { id });
    const cancelled = await waitFor('CANCELLED', async () => {
      const run = (await gql(onThreads.url, RUN, { id })).data.run;
      return run.status === 'CANCELLED' ? run : null;
    });
    expect(cancelled.error).toMatchObject({ code: 'CANCELLED' });

    const next = await Promise.all([0.003, 0.004].map((eps, k) => gql(onThreads.url, START, { ...ids.threads, eps: [eps], radius: false, seed: 8 + k })));
    const finals = await Promise.all(next.map((s) => follow(onThreads, s.data.startRun.id)));
    for (const f of finals) expect(f).toMatchObject({ status: 'SUCCEEDED' });
  }, 300_000);

  test('a server stop while a thread computes: the run is given up and queued again, the threads exit, nothing aborts', async () => {
    const long = await gql(onThreads.url, START, { ...ids.threads, eps: [0.005], radius: true, seed: 9, branchBudget: 600 });
    const id = long.data.startRun.id;
    await waitFor('the run to compute', async () => {
      const run = (await gql(onThreads.url, RUN, { id })).data.run;
      return run.status === 'RUNNING' && run.progress > 0;
    });
    const server = onThreads;
    onThreads = undefined as unknown as ServerHandle;
    await server.stop();
    // Started again on the same data: the run was queued again at the stop, and computes.
    const build2 = pathToFileURL(join(dirname(build.cli), 'server', 'run-thread.js'));
    onThreads = await startServer({ port: 0, dataDir: threaded.dir, log: quiet, backgroundBackend: 'cpu', concurrency: 2, runThreadScript: build2 });
    const again = (await gql(onThreads.url, RUN, { id })).data.run;
    expect(['QUEUED', 'RUNNING']).toContain(again.status);
    await gql(onThreads.url, `mutation($id: ID!) { cancelRun(id: $id) { status } }`, { id });
  }, 300_000);
});
