/**
 * Scale-out with the real parts: Debian's redis-server on a free port, the server with
 * LIPCERT_REDIS_URL (in this process), and `lipcert worker` child processes built from the current
 * sources. The acceptance: the first 40 Fashion-MNIST images certified by two workers with
 * the default method, one worker SIGKILLed mid-job after 10 images are done; the dataset run
 * SUCCEEDED with 40 distinct images, each with exactly one run and one result, computed by both
 * workers, the killed worker's job computed again by the other (BullMQ's stalled-job handling), the
 * classes equal to onnxruntime's own forward pass. Then the model-bytes route and the API token, and
 * a server stopped and started again mid-run: the dataset run goes on, no job computed twice.
 * Skipped, with a message, where /usr/bin/redis-server is missing (CI installs it).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import ort from 'onnxruntime-node';
import { startServer, type ServerHandle } from '../../src/server/server.js';
import { sha256Hex } from '../../src/store/cache-key.js';
import { RUN_QUEUE } from '../../src/worker/protocol.js';
import { buildCli, freePort, haveRedis, REDIS_SERVER, type Redis, startRedis, startWorkerProcess, type WorkerProcess } from '../helpers/processes.js';
import { collectSubscription, FIXTURES, fixtureBase64, gql, tempDataDir, waitFor } from './client.js';
import { DATASET_RUN, DATASET_RUN_PROGRESS, FASHION_NORM, importFashion, START_DATASET_RUN } from './dataset-client.js';

if (!haveRedis) console.warn(`test/server/workers.test.ts SKIPPED: ${REDIS_SERVER} is absent (install it with: apt-get install -y redis-server)`);
const describeWithRedis = haveRedis ? describe : describe.skip;
const quiet = () => undefined;

/** Top-1 classes of the first `count` images by onnxruntime on the ONNX file itself. */
async function referenceClasses(count: number): Promise<number[]> {
  const { loadDataset } = await import('../../src/model/dataset.js');
  const { importOnnx } = await import('../../src/model/onnx-import.js');
  const network = importOnnx(readFileSync(join(FIXTURES, 'fashion_cnn.onnx')), 'fashion');
  const raw = loadDataset(join(FIXTURES, 'fashion_test_1000.npz'), network, { mean: [0], std: [1], limit: count });
  const session = await ort.InferenceSession.create(join(FIXTURES, 'fashion_cnn.onnx'));
  const classes: number[] = [];
  for (let i = 0; i < count; i++) {
    const input = Float32Array.from(raw.image(i), (p) => (p - FASHION_NORM.mean[0]) / FASHION_NORM.std[0]);
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', input, [1, 1, 28, 28]) });
    const logits = Array.from(out[session.outputNames[0]].data as Float32Array);
    classes.push(logits.indexOf(Math.max(...logits)));
  }
  await session.release();
  return classes;
}

/** A server with LIPCERT_REDIS_URL on its own redis-server and data directory, for one describe block; its workers are stopped after. */
function serverOnRedis(options: { token?: string }) {
  const data = tempDataDir();
  const setup = { server: undefined as unknown as ServerHandle, redis: undefined as unknown as Redis, workers: [] as WorkerProcess[] };
  beforeAll(async () => {
    setup.redis = await startRedis();
    setup.server = await startServer({ port: 0, dataDir: data.dir, log: quiet, backgroundBackend: 'cpu', redisUrl: setup.redis.url, ...options });
  }, 180_000);
  afterAll(async () => {
    await Promise.allSettled(setup.workers.map((w) => w.stop()));
    await setup.server?.stop();
    await setup.redis?.stop();
    data.remove();
  });
  return setup;
}

describeWithRedis('scale-out on Redis', () => {
  let build: ReturnType<typeof buildCli>;
  beforeAll(() => {
    build = buildCli();
  }, 180_000);
  afterAll(() => build?.remove());

  describe('runs on Redis with lipcert worker processes', () => {
    const setup = serverOnRedis({});

    test('acceptance: 40 images by two workers, one SIGKILLed mid-job after 10 are done', async () => {
      const { server, redis, workers } = setup;
      const origin = server.url.replace(/\/graphql$/, '');
      for (const name of ['worker-a', 'worker-b']) workers.push(await startWorkerProcess(build.cli, name, ['--redis', redis.url, '--server', origin, '--backend', 'cpu']));
      const ids = await importFashion(server.url);
      const started = await gql(server.url, START_DATASET_RUN, { ...ids, eps: [0.001], radius: true, limit: 40, seed: 1 }); // the default method
      expect(started.errors).toBeUndefined();
      const id = started.data.startDatasetRun.id as string;
      const progress = collectSubscription(server.wsUrl, DATASET_RUN_PROGRESS, { id }, 600_000);

      // After 10 images, SIGKILL a worker in the middle of a job: frozen (SIGSTOP) while BullMQ's active
      // list is read, so that the job it holds cannot finish between the look and the kill.
      await waitFor('10 images done', async () => (await gql(server.url, DATASET_RUN, { id })).data.datasetRun.done >= 10, 400_000);
      const queue = new Queue(RUN_QUEUE, { connection: { url: redis.url } });
      let turn = 0;
      const { victim, job } = await waitFor('a worker frozen in the middle of a job', async () => {
        const candidate = workers[turn++ % 2];
        candidate.child.kill('SIGSTOP');
        await new Promise((r) => setTimeout(r, 100)); // what it sent before the stop reaches Redis
        const held = (await queue.getActive()).find((j) => j.processedBy === candidate.name);
        if (held) return { victim: candidate, job: held };
        candidate.child.kill('SIGCONT');
        await new Promise((r) => setTimeout(r, 150));
        return null;
      });
      victim.child.kill('SIGKILL');
      const killedAt = Date.now();
      const survivor = workers.find((w) => w !== victim)!;
      const abandonedRun = job.id!;
      // Killed mid-job: the job is still active, held by a process that is gone.
      expect(await (await queue.getJob(abandonedRun))!.getState()).toBe('active');
      // Its lock expires (15 s), a stall check notices (every 5 s), the survivor takes it after its current job.
      const pickedUp = waitFor('the survivor to take the abandoned job', async () => {
        const r = (await gql(server.url, `query($id: ID!) { run(id: $id) { worker } }`, { id: abandonedRun })).data.run;
        return r.worker === survivor.name ? Date.now() - killedAt : null;
      }, 120_000);

      const { payloads, error } = await progress;
      expect(error).toBeUndefined();
      const events = payloads.map((p) => p.data.datasetRunProgress);
      expect(events.at(-1)).toMatchObject({ status: 'SUCCEEDED', done: 40, total: 40 });
      const done = events.map((e) => e.done);
      expect(done).toEqual([...done].sort((a, b) => a - b));

      const run = (await gql(server.url, DATASET_RUN, { id })).data.datasetRun;
      expect(run).toMatchObject({ status: 'SUCCEEDED', done: 40, total: 40, method: 'TIGHT', certificate: 'PROBABILISTIC', radiusQuality: 'UPPER' });
      expect(run.failureProbabilityTotal).toBeGreaterThan(0);
      expect(run.workers.sort()).toEqual(['worker-a', 'worker-b']);
      // 40 distinct images, each DONE with one run that SUCCEEDED and computed (not cached), and its worker.
      expect(run.images.map((im: any) => im.index)).toEqual([...Array(40).keys()]);
      for (const im of run.images) {
        expect(im.status).toBe('DONE');
        expect(im.run).toMatchObject({ status: 'SUCCEEDED', cached: false });
        expect(['worker-a', 'worker-b']).toContain(im.worker);
        expect(im.run.worker).toBe(im.worker);
      }
      expect(new Set(run.images.map((im: any) => im.run.id)).size).toBe(40);
      // Exactly one run per image, one result per run: the server handed each run over once.
      const prisma = server.service.store.prisma;
      const rows = await prisma.datasetImage.findMany({ where: { datasetRunId: id } });
      expect(rows.map((r) => r.attempts)).toEqual(Array(40).fill(1));
      const runs = await prisma.run.findMany({ where: { id: { in: rows.map((r) => r.runId!) } } });
      expect(runs).toHaveLength(40);
      expect(await prisma.result.count({ where: { cacheKey: { in: runs.map((r) => r.cacheKey) } } })).toBe(40);
      expect(server.service.stats.runsComputed).toBe(40);

      // The job the killed worker held was computed again, by the other worker, taken within about 30 s.
      const retried = run.images.find((im: any) => im.run.id === abandonedRun);
      expect(retried.worker).toBe(survivor.name);
      expect(await pickedUp).toBeLessThan(40_000);
      // Worker processes computed at least the 40 runs (the abandoned one twice, at most, once per worker).
      const computedLines = workers.flatMap((w) => w.output.lines.filter((l) => /: computed in /.test(l)));
      expect(computedLines.length).toBeGreaterThanOrEqual(40);

      // The same classes as onnxruntime's forward pass; accuracy, curve and radii as the issue says.
      const classes = await referenceClasses(40);
      expect(run.images.map((im: any) => im.predictedClass)).toEqual(classes);
      const correct = run.images.filter((im: any) => im.predictedClass === im.label);
      expect(run.accuracy).toBe(correct.length / 40);
      for (const im of run.images) {
        if (im.predictedClass === im.label) expect(im.radius).toBeGreaterThan(0);
        else expect(im.radius).toBe(0);
      }
      const curve = run.certifiedAccuracy;
      expect(curve[0]).toEqual({ radius: 0, accuracy: run.accuracy });
      for (let i = 1; i < curve.length; i++) {
        expect(curve[i].radius).toBeGreaterThan(curve[i - 1].radius);
        expect(curve[i].accuracy).toBeLessThanOrEqual(curve[i - 1].accuracy);
      }
      await queue.close();
    }, 900_000);
  });

  describe('model bytes for workers, and the API token', () => {
    const TOKEN = 'worker-test-token';
    const setup = serverOnRedis({ token: TOKEN });
    const call = async (query: string, variables: Record<string, unknown> = {}) =>
      (await fetch(setup.server.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ query, variables }) })).json() as Promise<any>;

    test('GET /models/<sha256> wants the token; a worker without it fails the run with UNAUTHENTICATED, one with it computes', async () => {
      const { server, redis, workers } = setup;
      const origin = server.url.replace(/\/graphql$/, '');
      const bytes = readFileSync(join(FIXTURES, 'mnist_lenet.onnx'));
      const model = (await call(`mutation($onnx: String!) { importModel(name: "mnist", onnxBase64: $onnx) { id sha256 } }`, { onnx: fixtureBase64('mnist_lenet.onnx') })).data.importModel;
      expect(model.sha256).toBe(sha256Hex(bytes));
      expect((await fetch(`${origin}/models/${model.sha256}`)).status).toBe(401);
      const fetched = await fetch(`${origin}/models/${model.sha256}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(fetched.status).toBe(200);
      expect(sha256Hex(new Uint8Array(await fetched.arrayBuffer()))).toBe(model.sha256);
      expect((await fetch(`${origin}/models/${'0'.repeat(64)}`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(404);
      expect((await fetch(`${origin}/models/not-a-sha`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(404);

      const input = (await call(`mutation($m: ID!, $png: String!) { addInput(modelId: $m, pngBase64: $png, mean: [0.1307], std: [0.3081]) { id } }`, { m: model.id, png: fixtureBase64('mnist_8.png') })).data.addInput;
      const start = `mutation($m: ID!, $i: ID!) { startRun(modelId: $m, inputId: $i, eps: [0.01], method: PAPER, certificate: ESTIMATE) { id } }`;
      const status = `query($id: ID!) { run(id: $id) { status worker error { code message } result { local { bound } } } }`;

      workers.push(await startWorkerProcess(build.cli, 'no-token', ['--redis', redis.url, '--server', origin]));
      const refused = (await call(start, { m: model.id, i: input.id })).data.startRun;
      const failed = await waitFor('the run to fail', async () => {
        const r = (await call(status, { id: refused.id })).data.run;
        return r.status === 'FAILED' ? r : null;
      });
      expect(failed.error.code).toBe('UNAUTHENTICATED');
      expect(failed.error.message).toMatch(/--token/);
      await workers.pop()!.stop();

      workers.push(await startWorkerProcess(build.cli, 'with-token', ['--redis', redis.url, '--server', origin, '--token', TOKEN]));
      const accepted = (await call(start, { m: model.id, i: input.id })).data.startRun;
      const succeeded = await waitFor('the run to succeed', async () => {
        const r = (await call(status, { id: accepted.id })).data.run;
        return r.status === 'SUCCEEDED' ? r : null;
      });
      expect(succeeded.worker).toBe('with-token');
      expect(succeeded.result.local[0].bound).toBeGreaterThan(0);
    }, 300_000);
  });
  describe('a server restart on Redis', () => {
    const data = tempDataDir();
    let redis: Redis;
    let server: ServerHandle | undefined;
    const workers: WorkerProcess[] = [];
    afterAll(async () => {
      await Promise.allSettled(workers.map((w) => w.stop()));
      await server?.stop();
      await redis?.stop();
      data.remove();
    });

    test('loses nothing and computes nothing twice: the dataset run goes on, its jobs are collected', async () => {
      redis = await startRedis();
      const port = await freePort();
      const start = () => startServer({ port, dataDir: data.dir, log: quiet, backgroundBackend: 'cpu', redisUrl: redis.url });
      server = await start();
      workers.push(await startWorkerProcess(build.cli, 'steady', ['--redis', redis.url, '--server', `http://127.0.0.1:${port}`, '--backend', 'cpu']));
      const ids = await importFashion(server.url);
      const started = (await gql(server.url, START_DATASET_RUN, { ...ids, eps: [0.001], limit: 12, method: 'PAPER', certificate: 'ESTIMATE' })).data.startDatasetRun;
      const doneBefore = await waitFor('3 images done', async () => {
        const { done } = (await gql(server!.url, DATASET_RUN, { id: started.id })).data.datasetRun;
        return done >= 3 ? done : null;
      }, 120_000);
      await server.stop(); // the worker goes on with the jobs in Redis
      expect(doneBefore).toBeLessThan(12); // stopped mid-run
      server = undefined;
      await new Promise((r) => setTimeout(r, 1500));
      server = await start();
      const run = await waitFor(
        'the dataset run to succeed after the restart',
        async () => {
          const r = (await gql(server!.url, DATASET_RUN, { id: started.id })).data.datasetRun;
          return r.status === 'SUCCEEDED' ? r : null;
        },
        180_000,
      );
      expect(run).toMatchObject({ done: 12, total: 12, workers: ['steady'] });
      expect(run.images.map((im: any) => im.status)).toEqual(Array(12).fill('DONE'));
      const prisma = server.service.store.prisma;
      const rows = await prisma.datasetImage.findMany({ where: { datasetRunId: started.id } });
      expect(rows.map((r) => r.attempts)).toEqual(Array(12).fill(1)); // no image run was started again
      const runs = await prisma.run.findMany({ where: { id: { in: rows.map((r) => r.runId!) } } });
      expect(runs.map((r) => r.status)).toEqual(Array(12).fill('SUCCEEDED'));
      expect(await prisma.result.count({ where: { cacheKey: { in: runs.map((r) => r.cacheKey) } } })).toBe(12);
      // Every job computed once, across the restart.
      expect(workers[0].output.lines.filter((l) => /: computed in /.test(l))).toHaveLength(12);
    }, 400_000);
  });
});
