/**
 * The zoo's architectures as layer lists: torchvision's AlexNet and VGG-16 (and reduced versions of
 * them for tests: smaller inputs and widths, same layer types), and the two fixture networks of
 * fixtures/README.md ("MNIST Net" and "CIFAR-10 Net").
 */
import type { Architecture, LayerSpec } from './builder.js';

export interface AlexNetOptions {
  /** Input height = width (224 for ImageNet). */
  inputSize?: number;
  /** Output channels of the five convolutions. */
  widths?: [number, number, number, number, number];
  /** Width of the two hidden fully connected layers. */
  hidden?: number;
  classes?: number;
  /** Output of the adaptive average pool. */
  pooled?: number;
}

/** torchvision.models.alexnet. */
export function alexnet(options: AlexNetOptions = {}): Architecture {
  const size = options.inputSize ?? 224;
  const [c1, c2, c3, c4, c5] = options.widths ?? [64, 192, 384, 256, 256];
  const hidden = options.hidden ?? 4096;
  const pooled = options.pooled ?? 6;
  const layers: LayerSpec[] = [
    { op: 'conv', out: c1, kernel: 11, stride: 4, pad: 2 },
    { op: 'relu' },
    { op: 'maxpool', kernel: 3, stride: 2 },
    { op: 'conv', out: c2, kernel: 5, pad: 2 },
    { op: 'relu' },
    { op: 'maxpool', kernel: 3, stride: 2 },
    { op: 'conv', out: c3, kernel: 3, pad: 1 },
    { op: 'relu' },
    { op: 'conv', out: c4, kernel: 3, pad: 1 },
    { op: 'relu' },
    { op: 'conv', out: c5, kernel: 3, pad: 1 },
    { op: 'relu' },
    { op: 'maxpool', kernel: 3, stride: 2 },
    { op: 'adaptiveavgpool', out: [pooled, pooled] },
    { op: 'flatten' },
    { op: 'dropout' },
    { op: 'dense', out: hidden },
    { op: 'relu' },
    { op: 'dropout' },
    { op: 'dense', out: hidden },
    { op: 'relu' },
    { op: 'dense', out: options.classes ?? 1000 },
  ];
  return { name: 'alexnet', inputShape: [3, size, size], layers };
}

export interface VggOptions {
  inputSize?: number;
  /** Convolution widths, 'M' for a 2×2 max pool (torchvision's cfg 'D' for VGG-16). */
  config?: (number | 'M')[];
  hidden?: number;
  classes?: number;
  pooled?: number;
}

const VGG16_CONFIG: (number | 'M')[] = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'];

/** torchvision.models.vgg16 (no batch normalisation). */
export function vgg16(options: VggOptions = {}): Architecture {
  const size = options.inputSize ?? 224;
  const hidden = options.hidden ?? 4096;
  const pooled = options.pooled ?? 7;
  const layers: LayerSpec[] = [];
  for (const v of options.config ?? VGG16_CONFIG) {
    if (v === 'M') layers.push({ op: 'maxpool', kernel: 2, stride: 2 });
    else layers.push({ op: 'conv', out: v, kernel: 3, pad: 1 }, { op: 'relu' });
  }
  layers.push(
    { op: 'adaptiveavgpool', out: [pooled, pooled] },
    { op: 'flatten' },
    { op: 'dense', out: hidden },
    { op: 'relu' },
    { op: 'dropout' },
    { op: 'dense', out: hidden },
    { op: 'relu' },
    { op: 'dropout' },
    { op: 'dense', out: options.classes ?? 1000 },
  );
  return { name: 'vgg16', inputShape: [3, size, size], layers };
}

/** "MNIST Net" of fixtures/mnist_lenet.onnx. */
export function mnistLenet(): Architecture {
  return {
    name: 'mnist-lenet',
    inputShape: [1, 28, 28],
    layers: [
      { op: 'conv', out: 6, kernel: 5 },
      { op: 'relu' },
      { op: 'maxpool', kernel: 2, stride: 2 },
      { op: 'conv', out: 16, kernel: 5 },
      { op: 'relu' },
      { op: 'maxpool', kernel: 2, stride: 2 },
      { op: 'flatten' },
      { op: 'dense', out: 120 },
      { op: 'relu' },
      { op: 'dense', out: 84 },
      { op: 'relu' },
      { op: 'dense', out: 10 },
    ],
  };
}

/** "CIFAR-10 Net" of fixtures/cifar10_net.onnx. */
export function cifar10Net(): Architecture {
  return {
    name: 'cifar10-net',
    inputShape: [3, 32, 32],
    layers: [
      { op: 'conv', out: 32, kernel: 3 },
      { op: 'relu' },
      { op: 'conv', out: 32, kernel: 3 },
      { op: 'relu' },
      { op: 'maxpool', kernel: 2, stride: 2 },
      { op: 'conv', out: 64, kernel: 3 },
      { op: 'relu' },
      { op: 'conv', out: 64, kernel: 3 },
      { op: 'relu' },
      { op: 'maxpool', kernel: 2, stride: 2 },
      { op: 'flatten' },
      { op: 'dense', out: 512 },
      { op: 'relu' },
      { op: 'dense', out: 10 },
    ],
  };
}
