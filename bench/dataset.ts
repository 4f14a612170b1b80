/**
 * Dataset benchmark: `npm run bench -- --dataset [--images N] [--eps E] [--backend B] [--workers 1,2]`.
 * Certifies the first N images of the Fashion-MNIST sample (fixtures/fashion_test_1000.npz with
 * fashion_cnn.onnx), one process, one image after another (certifyDataset(), the path of `lipcert
 * dataset`), with local bounds at --eps and the certified radius, for the CLI's default method (tight,
 * probabilistic certificates δ = 1e-3) and for the paper's method with estimates. With --workers
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
  if (values.workers) {
    const counts = values.workers.split(',').map(Number);
    await (await import('./dataset-workers.js')).workersBench({ images, eps, counts, fixtures, configurations: CONFIGURATIONS });
  }
}
