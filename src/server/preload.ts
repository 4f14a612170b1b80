/**
 * Preloads the repository's two fixture models (the paper's MNIST and CIFAR-10 nets) with their
 * nominal images, so a fresh `npm start` has something to certify. Idempotent: imports and inputs
 * are deduplicated by sha256.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LipcertService } from './service.js';

interface FixtureModel {
  name: string;
  onnx: string;
  mean: number[];
  std: number[];
  images: { name: string; png: string }[];
}

export const FIXTURE_MODELS: FixtureModel[] = [
  {
    name: 'MNIST Net (mnist_lenet)',
    onnx: 'mnist_lenet.onnx',
    mean: [0.1307],
    std: [0.3081],
    images: [
      { name: 'mnist 8', png: 'mnist_8.png' },
      { name: 'mnist 2', png: 'mnist_2.png' },
      { name: 'mnist 3', png: 'mnist_3.png' },
    ],
  },
  {
    name: 'CIFAR-10 Net (cifar10_net)',
    onnx: 'cifar10_net.onnx',
    mean: [0.4914, 0.4822, 0.4465],
    std: [0.247, 0.2435, 0.2616],
    images: [{ name: 'cifar10 dog 4', png: 'cifar10_dog4.png' }],
  },
];

/** The repository's fixtures/ folder, found upwards from this file (src/ or dist/src/). */
export function fixturesDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'fixtures');
    if (existsSync(join(candidate, 'mnist_lenet.onnx'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error('lipcert: fixtures/ not found; preload needs the repository checkout');
}

export async function preloadFixtures(service: LipcertService, dir = fixturesDir()): Promise<void> {
  for (const fixture of FIXTURE_MODELS) {
    try {
      const model = await service.importModel(fixture.name, await readFile(join(dir, fixture.onnx)));
      for (const image of fixture.images) {
        await service.addInput({
          modelId: model.id,
          name: image.name,
          bytes: await readFile(join(dir, image.png)),
          format: 'png',
          mean: fixture.mean,
          std: fixture.std,
        });
      }
    } catch (error) {
      service.options.log(`preloading ${fixture.onnx} failed: ${(error as Error).message}`);
    }
  }
}
