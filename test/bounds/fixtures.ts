/** The fixture images of the paper's Table III, loaded with their normalisation, and reference.json. */
import fs from 'node:fs';
import path from 'node:path';
import { loadInputFile, type Normalisation } from '../../src/model/input.js';
import type { Network } from '../../src/model/ir.js';
import { importOnnxFile } from '../../src/model/onnx-import.js';

export const FIXTURES = path.resolve('fixtures');
export const MNIST_NORM: Normalisation = { mean: [0.1307], std: [0.3081] };
export const CIFAR_NORM: Normalisation = { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] };

export interface FixtureImage {
  model: 'mnist_lenet' | 'cifar10_net';
  image: string;
  file: string;
  norm: Normalisation;
}

export const TABLE_III_IMAGES: FixtureImage[] = [
  { model: 'mnist_lenet', image: '8', file: 'mnist_8.png', norm: MNIST_NORM },
  { model: 'mnist_lenet', image: '2', file: 'mnist_2.png', norm: MNIST_NORM },
  { model: 'mnist_lenet', image: '3', file: 'mnist_3.png', norm: MNIST_NORM },
  { model: 'cifar10_net', image: 'dog4', file: 'cifar10_dog4.png', norm: CIFAR_NORM },
];

export async function loadFixture(f: FixtureImage): Promise<{ network: Network; x0: Float32Array }> {
  const network = await importOnnxFile(path.join(FIXTURES, `${f.model}.onnx`));
  return { network, x0: loadInputFile(path.join(FIXTURES, f.file), network, f.norm) };
}

export interface ReferenceImage {
  class: number;
  certified_radius_local: number;
  lower_bound_gradient_ascent: Record<string, number>;
}

export function referenceFor(f: FixtureImage): ReferenceImage {
  const ref = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'reference.json'), 'utf8'));
  return ref.models[f.model].images[f.image];
}
