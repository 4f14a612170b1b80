/**
 * The dataset path through the server (`npm run bench -- --dataset --workers 1,2`): the same images
 * as bench/dataset.ts as a dataset run of the server, first computed in the server's own process
 * (no Redis; one run at a time, then one per core on compute threads), then on Redis by 1, 2, ... `lipcert worker` processes (dist/src/cli.js, so after
 * `npm run build`) on this machine. Each configuration gets a fresh redis-server, data directory and
 * workers, a warm-up dataset run at another eps (models fetched, sessions built), then the timed
 * run from an empty cache: images per second from its start to SUCCEEDED.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ImageCertifyOptions } from '../src/dataset/certify-image.js';
import { isTerminal, type RunStatus } from '../src/server/events.js';
import { startServer, type ServerHandle } from '../src/server/server.js';
import { quantile } from './dataset.js';
import { haveRedis, REDIS_SERVER, type Redis, startRedis, startWorkerProcess, type WorkerProcess } from './processes.js';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.js');

interface Options {
  images: number;
  eps: number[];
  counts: number[];
  fixtures: string;
  configurations: { name: string; options: Pick<ImageCertifyOptions, 'method' | 'certificate' | 'delta'> }[];
}

/** Runs a dataset run to its end; its wall-clock seconds and per-image compute seconds. */
async function timedRun(server: ServerHandle, args: Parameters<ServerHandle['service']['datasetRuns']['start']>[0]) {
  const started = performance.now();
  const row = await server.service.datasetRuns.start(args);
  const events = server.service.datasetRuns.events.listen(row.id);
  let status: RunStatus = row.status as RunStatus;
  for await (const event of events) {
    status = event.status;
    if (isTerminal(status)) break;
  }
  const seconds = (performance.now() - started) / 1000;
  const final = await server.service.datasetRuns.get(row.id);
  if (final.status !== 'SUCCEEDED') throw new Error(`the dataset run ended ${final.status}: ${final.errorMessage}`);
  const images = await server.service.datasetRuns.images(row.id);
  return { seconds, perImage: images.map((im) => im.seconds ?? 0), count: images.length };
}

export async function workersBench({ images, eps, counts, fixtures, configurations }: Options): Promise<void> {
  if (!haveRedis) {
    console.log(`\n(no ${REDIS_SERVER}: the worker rows need Debian's redis-server)`);
    return;
  }
  console.log(`\nThe server's dataset path, ${images} images, eps ${eps}, certified radius (each image an ordinary run: global bound, local bounds, radius):\n`);
  console.log('| dataset path | method | images | images per second | seconds per image (median, 10%–90%) |');
  console.log('| --- | --- | --- | --- | --- |');
  const onnx = readFileSync(path.join(fixtures, 'fashion_cnn.onnx'));
  const npz = readFileSync(path.join(fixtures, 'fashion_test_1000.npz'));
  // In the server's own process: LIPCERT_CONCURRENCY 1 and one per core (runs of this network on
  // compute threads, src/server/run-threads.ts); then workers on Redis.
  const setups = [...new Set([1, os.availableParallelism()])].map((concurrency) => ({ workerCount: 0, concurrency })).concat(counts.map((workerCount) => ({ workerCount, concurrency: 1 })));
  for (const { workerCount, concurrency } of setups) {
    for (const { name, options } of configurations) {
      const dataDir = mkdtempSync(path.join(tmpdir(), 'lipcert-bench-'));
      let redis: Redis | undefined;
      let server: ServerHandle | undefined;
      const workers: WorkerProcess[] = [];
      try {
        if (workerCount > 0) redis = await startRedis();
        server = await startServer({ port: 0, dataDir, log: () => undefined, backgroundBackend: 'cpu', redisUrl: redis?.url, concurrency });
        const origin = server.url.replace(/\/graphql$/, '');
        for (let w = 0; w < workerCount; w++) workers.push(await startWorkerProcess(CLI, `bench-${w + 1}`, ['--redis', redis!.url, '--server', origin, '--backend', 'cpu']));
        const model = await server.service.importModel('fashion', onnx);
        const dataset = await server.service.datasets.import('fashion-test', npz, [0.286], [0.353]);
        const request = {
          modelId: model.id,
          datasetId: dataset.id,
          radius: true,
          method: options.method,
          certificate: options.certificate,
          delta: options.delta,
          seed: options.certificate === 'probabilistic' ? 1 : undefined,
        };
        // Warm-up at another eps (other cache keys): every worker fetches the model and builds its sessions.
        await timedRun(server, { ...request, eps: eps.map((e) => e * 2), limit: Math.max(2, 2 * workerCount) });
        const run = await timedRun(server, { ...request, eps, limit: images });
        const path = workerCount === 0 ? `server, in process, LIPCERT_CONCURRENCY=${concurrency}` : `${workerCount} worker${workerCount > 1 ? 's' : ''} on Redis`;
        console.log(
          `| ${path} | ${name} | ${run.count} | ${(run.count / run.seconds).toFixed(2)} | ${quantile(run.perImage, 0.5).toFixed(3)} s (${quantile(run.perImage, 0.1).toFixed(3)}–${quantile(run.perImage, 0.9).toFixed(3)} s) |`,
        );
      } finally {
        await Promise.allSettled(workers.map((w) => w.stop()));
        await server?.stop();
        await redis?.stop();
        rmSync(dataDir, { recursive: true, force: true });
      }
    }
  }
}
