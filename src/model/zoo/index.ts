/**
 * The built-in model zoo: AlexNet, VGG-16, ResNet-18, MobileNetV2 and the two fixture architectures, built in memory with
 * seeded He-initialised weights (pretrained weights cannot be downloaded here), and seeded random
 * inputs of a model's shape. `resolveModel` turns a CLI model spec into a network:
 *   zoo:NAME        a zoo model with weight seed 0        (zoo:alexnet, zoo:vgg16, ...)
 *   zoo:NAME:SEED   the same architecture with other weights
 *   anything else   an ONNX file path
 */
import { BadInputError } from '../../errors.js';
import { type Network, size } from '../ir.js';
import { importOnnxFile } from '../onnx-import.js';
import { alexnet, cifar10Net, mnistLenet, mobilenetV2, resnet18, vgg16 } from './architectures.js';
import { type Architecture, buildNetwork } from './builder.js';
import { SeededRandom } from './random.js';

export { alexnet, cifar10Net, mnistLenet, mobilenetV2, resnet18, vgg16 } from './architectures.js';
export { type Architecture, type BuildOptions, buildNetwork, type LayerSpec } from './builder.js';

export const ZOO_MODELS: Record<string, { describe: string; architecture: () => Architecture }> = {
  alexnet: { describe: 'torchvision AlexNet, 3×224×224, 61M parameters', architecture: () => alexnet() },
  vgg16: { describe: 'torchvision VGG-16, 3×224×224, 138M parameters', architecture: () => vgg16() },
  resnet18: { describe: 'torchvision ResNet-18 (BatchNorm folded), 3×224×224, 11.7M parameters', architecture: () => resnet18() },
  mobilenet_v2: { describe: 'torchvision MobileNetV2 (BatchNorm folded, ReLU6), 3×224×224, 3.5M parameters', architecture: () => mobilenetV2() },
  'mnist-lenet': { describe: 'the MNIST fixture architecture, 1×28×28', architecture: mnistLenet },
  'cifar10-net': { describe: 'the CIFAR-10 fixture architecture, 3×32×32', architecture: cifar10Net },
};

export const ZOO_PREFIX = 'zoo:';

function parseSeed(text: string, what: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 0xffffffff) throw new BadInputError(`${what} seed '${text}' must be an integer in [0, 2^32)`);
  return Number(text);
}

/** A zoo model by name, with weight seed `seed`. */
export function zooModel(name: string, seed = 0): Network {
  const entry = ZOO_MODELS[name];
  if (!entry) throw new BadInputError(`unknown zoo model '${name}' (available: ${Object.keys(ZOO_MODELS).join(', ')})`);
  return buildNetwork(entry.architecture(), seed);
}

export function isZooSpec(spec: string): boolean {
  return spec.startsWith(ZOO_PREFIX);
}

/** `zoo:NAME[:SEED]` → a zoo model; any other spec is read as an ONNX file. */
export function resolveModel(spec: string): Network {
  if (!isZooSpec(spec)) return importOnnxFile(spec);
  const [name, seed, ...rest] = spec.slice(ZOO_PREFIX.length).split(':');
  if (rest.length > 0) throw new BadInputError(`model spec '${spec}' must be zoo:NAME or zoo:NAME:SEED`);
  return zooModel(name, seed === undefined ? 0 : parseSeed(seed, 'weight'));
}

/** A seeded standard normal input of the model's shape (ImageNet-normalised pixels are about N(0, 1)). */
export function randomInput(network: Network, seed = 0): Float32Array {
  return new SeededRandom(seed ^ 0x5eed).fillNormal(new Float32Array(size(network.inputShape)), 1);
}

/** `random` or `random:SEED` (the CLI's --input) → its seed, or null for any other input spec. */
export function randomInputSeed(spec: string): number | null {
  if (spec === 'random') return 0;
  if (!spec.startsWith('random:')) return null;
  return parseSeed(spec.slice('random:'.length), 'input');
}
