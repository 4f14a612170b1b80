/**
 * Dataset benchmark: `npm run bench -- --dataset [--images N] [--eps E] [--backend B] [--lanes 1,2] [--workers 1,2]`.
 * Certifies the first N images of the Fashion-MNIST sample (fixtures/fashion_test_1000.npz with
 * fashion_cnn.onnx), one process, one image after another (certifyDataset(), the path of `lipcert
 * dataset`), with local bounds at --eps and the certified radius, for the CLI's default method (tight,
 * probabilistic certificates δ = 1e-3) and for the paper's method with estimates; then the default
 * method again with the images shared over each number of lanes (threads of one process,
 * dataset/lanes.ts; `lipcert dataset --parallel K`), alternating 1 lane and K lanes so both see the same
 * load, with the ratio of their images per second and the CPU time per image of all threads (the
 * work, which lanes do not shrink: on K free cores the wall clock approaches it divided by K). With --workers
 * (needs redis-server and a built dist/), the same images as a dataset run of the server: in its own
 * process (no Redis), then on Redis with each number of `lipcert worker` processes, each time from an
 * empty cache after a warm-up on other images. Prints images per second and the spread of seconds
 * per image. Never a test: numbers depend on the machine and its load.
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { BackendName } from '../src/backend/backend.js';
import { createBackend } from '../src/backend/select.js';
import { certifyDataset } from '../src/dataset/certify-dataset.js';
import type { ImageCertifyOptions } from '../src/dataset/certify-image.js';
import { planLanes } from '../src/dataset/lanes.js';
import { loadDataset } from '../src/model/dataset.js';
import { importOnnxFile } from '../src/model/onnx-import.js';

export const CONFIGURATIONS: { name: string; options: Pick<ImageCertifyOptions, 'method' | 'certificate' | 'delta'> }[] = [
  { name: 'tight, probabilistic:1e-3 (CLI default)', options: { method: 'tight', certificate: 'probabilistic', delta: 1e-3 } },
  { name: 'paper, estimate', options: { method: 'paper', certificate: 'estimate' } },
];

export const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

export async function datasetBench(argv: string[], fixtures: string): Promise<void> {
  const { values } = parseArgs({
    args: argv.filter((a) => a !== '--dataset'),
    options: {
      images: { type: 'string', default: '40' },
      eps: { type: 'string', default: '0.001' },
      backend: { type: 'string', default: 'cpu' },
      workers: { type: 'string' },
      lanes: { type: 'string', default: `1,${os.availableParallelism()}` },
      rounds: { type: 'string', default: '2' },
    },
  });
  const images = Number(values.images);
  const eps = values.eps!.split(',').map(Number);
  const network = importOnnxFile(path.join(fixtures, 'fashion_cnn.onnx'));
  const dataset = loadDataset(path.join(fixtures, 'fashion_test_1000.npz'), network, { mean: [0.286], std: [0.353], limit: images });
  const backend = await createBackend(values.backend as BackendName, network);
  console.log(`machine: ${os.cpus()[0]?.model?.trim()}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}`);
  console.log(`backend: ${backend.name} (${backend.adapter}); Fashion-MNIST CNN, first ${dataset.count} test images, eps ${eps}, certified radius; 1 process\n`);
  console.log('| dataset path | method | images | images per second | seconds per image (median, 10%–90%) | accuracy | median radius (correct images) |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  // Warm-up: onnxruntime sessions and JIT, on one image.
  await certifyDataset(network, { ...dataset, count: 1 }, backend, { eps, radius: true, ...CONFIGURATIONS[1].options });
  for (const { name, options } of CONFIGURATIONS) {
    const result = await certifyDataset(network, dataset, backend, { eps, radius: true, seed: 1, ...options });
    const perImage = result.images.map((r) => r.seconds);
    console.log(
      `| 1 process | ${name} | ${result.count} | ${(result.count / result.seconds).toFixed(2)} | ${quantile(perImage, 0.5).toFixed(3)} s (${quantile(perImage, 0.1).toFixed(3)}–${quantile(perImage, 0.9).toFixed(3)} s) | ${(100 * result.accuracy).toFixed(1)}% | ${result.medianRadiusCorrect?.toPrecision(4)} (${result.radiusQuality}) |`,
    );
  }
  await backend.dispose();

  // Lanes: 1 against K, alternating, each run in a fresh backend whose onnxruntime calls get the
  // lane's share of the cores (as `lipcert dataset` does).
  const laneCounts = values.lanes!.split(',').map(Number);
  const rounds = Number(values.rounds);
  const rates = new Map<number, number[]>(laneCounts.map((k) => [k, []]));
  const perImage = new Map<number, number[]>(laneCounts.map((k) => [k, []]));
  const cpuPerImage = new Map<number, number[]>(laneCounts.map((k) => [k, []]));
  for (let round = 0; round < rounds; round++) {
    for (const k of laneCounts) {
      const plan = planLanes(network, dataset.count, k);
      const laneBackend = await createBackend(values.backend as BackendName, network, { threads: plan.threads });
      const cpuStart = process.cpuUsage(); // every thread of the process, worker lanes included
      const result = await certifyDataset(network, dataset, laneBackend, { eps, radius: true, seed: 1, ...CONFIGURATIONS[0].options, lanes: plan.lanes, laneBackend: { threads: plan.threads } });
      const cpu = process.cpuUsage(cpuStart);
      await laneBackend.dispose();
      cpuPerImage.get(k)!.push((cpu.user + cpu.system) / 1e6 / result.count);
      rates.get(k)!.push(result.count / result.seconds);
      perImage.get(k)!.push(...result.images.map((r) => r.seconds));
    }
  }
  console.log(`\nLanes (images certified at once, each on a thread; ${rounds} alternating rounds, medians):\n`);
  console.log('| lanes | method | images per second | seconds per image, wall clock of the set | CPU seconds per image (all threads) | each image\'s own seconds (median, 10%–90%) | ÷ 1 lane |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  const median = (xs: number[]) => quantile(xs, 0.5);
  for (const k of laneCounts) {
    const rate = median(rates.get(k)!);
    const own = perImage.get(k)!;
    console.log(
      `| ${k} | ${CONFIGURATIONS[0].name} | ${rate.toFixed(2)} | ${(1 / rate).toFixed(3)} s | ${median(cpuPerImage.get(k)!).toFixed(3)} s | ${median(own).toFixed(3)} s (${quantile(own, 0.1).toFixed(3)}–${quantile(own, 0.9).toFixed(3)} s) | ${(rate / median(rates.get(laneCounts[0])!)).toFixed(2)}× |`,
    );
  }
  if (values.workers) {
    const counts = values.workers.split(',').map(Number);
    await (await import('./dataset-workers.js')).workersBench({ images, eps, counts, fixtures, configurations: CONFIGURATIONS });
  }
}
