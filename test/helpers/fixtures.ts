/** The paper's fixture networks and inputs (fixtures/), with the figures they must reproduce. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures');
export const fixture = (name: string) => path.join(FIXTURES, name);
export const reference = JSON.parse(fs.readFileSync(fixture('reference.json'), 'utf8'));

export const MNIST_NORM = { mean: [0.1307], std: [0.3081] };
export const CIFAR_NORM = { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] };

export interface FixtureCase {
  model: 'mnist_lenet' | 'cifar10_net';
  image: string;
  input: string;
  norm: { mean: number[]; std: number[] };
}

export const FIXTURE_CASES: FixtureCase[] = [
  { model: 'mnist_lenet', image: '8', input: 'mnist_lenet_x0.npy', norm: MNIST_NORM },
  { model: 'mnist_lenet', image: '2', input: 'mnist_2.png', norm: MNIST_NORM },
  { model: 'mnist_lenet', image: '3', input: 'mnist_3.png', norm: MNIST_NORM },
  { model: 'cifar10_net', image: 'dog4', input: 'cifar10_net_x0.npy', norm: CIFAR_NORM },
];
