/**
 * The zoo's architectures as layer lists: torchvision's AlexNet, VGG-16, ResNet-18 and MobileNetV2
 * (and reduced versions of them for tests: smaller inputs and widths, same layer types and graph),
 * and the two fixture networks of fixtures/README.md ("MNIST Net" and "CIFAR-10 Net").
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

export interface ResNetOptions {
  inputSize?: number;
  /** Channels of the four stages (torchvision: 64, 128, 256, 512). */
  widths?: [number, number, number, number];
  /** Basic blocks per stage (ResNet-18: 2 each). */
  blocks?: [number, number, number, number];
  classes?: number;
}

/**
 * torchvision.models.resnet18 (BasicBlock ×[2, 2, 2, 2]); BatchNorm folded into the convolutions
 * (they carry a bias). Block: conv3×3(stride)–ReLU–conv3×3, plus the input (or a 1×1 stride-s
 * projection when the shape changes), then ReLU.
 */
export function resnet18(options: ResNetOptions = {}): Architecture {
  const size = options.inputSize ?? 224;
  const widths = options.widths ?? [64, 128, 256, 512];
  const blocks = options.blocks ?? [2, 2, 2, 2];
  const layers: LayerSpec[] = [
    { op: 'conv', out: widths[0], kernel: 7, stride: 2, pad: 3 },
    { op: 'relu' },
    { op: 'maxpool', kernel: 3, stride: 2, pad: 1, id: 'stem' },
  ];
  let input = 'stem';
  let channels = widths[0];
  widths.forEach((width, stage) => {
    for (let b = 0; b < blocks[stage]; b++) {
      const stride = b === 0 && stage > 0 ? 2 : 1;
      const id = `layer${stage + 1}.${b}`;
      layers.push(
        { op: 'conv', out: width, kernel: 3, stride, pad: 1, from: input },
        { op: 'relu' },
        { op: 'conv', out: width, kernel: 3, pad: 1, id: `${id}.main` },
      );
      let shortcut = input;
      if (stride !== 1 || channels !== width) {
        layers.push({ op: 'conv', out: width, kernel: 1, stride, from: input, id: `${id}.downsample` });
        shortcut = `${id}.downsample`;
      }
      layers.push({ op: 'add', from: [`${id}.main`, shortcut] }, { op: 'relu', id });
      input = id;
      channels = width;
    }
  });
  layers.push({ op: 'adaptiveavgpool', out: [1, 1] }, { op: 'flatten' }, { op: 'dense', out: options.classes ?? 1000 });
  return { name: 'resnet18', inputShape: [3, size, size], layers };
}

export interface MobileNetV2Options {
  inputSize?: number;
  /** Width multiplier (torchvision's width_mult; channels rounded to multiples of 8). */
  width?: number;
  /** Inverted-residual settings [t, c, n, s] (torchvision's, by default). */
  settings?: [number, number, number, number][];
  /** Channels of the last convolution before the classifier (1280). */
  lastChannels?: number;
  classes?: number;
}

/** torchvision's _make_divisible: round to the nearest multiple of 8, never below 90% of v. */
function makeDivisible(v: number, divisor = 8): number {
  const rounded = Math.max(divisor, Math.floor(Math.floor(v + divisor / 2) / divisor) * divisor);
  return rounded < 0.9 * v ? rounded + divisor : rounded;
}

const MOBILENET_V2_SETTINGS: [number, number, number, number][] = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

/**
 * torchvision.models.mobilenet_v2: a 3×3 stride-2 stem, inverted residual blocks (1×1 expansion,
 * 3×3 depthwise, 1×1 projection; ReLU6 after the first two; the input added when the block keeps
 * its shape), a 1×1 convolution to 1280 channels, global average pool, dropout, linear. BatchNorm
 * folded into the convolutions.
 */
export function mobilenetV2(options: MobileNetV2Options = {}): Architecture {
  const size = options.inputSize ?? 224;
  const width = options.width ?? 1;
  let channels = makeDivisible(32 * width);
  const last = makeDivisible((options.lastChannels ?? 1280) * Math.max(1, width));
  const layers: LayerSpec[] = [{ op: 'conv', out: channels, kernel: 3, stride: 2, pad: 1 }, { op: 'relu6', id: 'features.0' }];
  let input = 'features.0';
  let block = 1;
  for (const [t, c, n, s] of options.settings ?? MOBILENET_V2_SETTINGS) {
    const out = makeDivisible(c * width);
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? s : 1;
      const hidden = Math.round(channels * t);
      const id = `features.${block++}`;
      if (t !== 1) layers.push({ op: 'conv', out: hidden, kernel: 1, from: input }, { op: 'relu6' });
      layers.push(
        { op: 'conv', out: hidden, kernel: 3, stride, pad: 1, group: hidden, ...(t === 1 ? { from: input } : {}) },
        { op: 'relu6' },
        { op: 'conv', out, kernel: 1, id: `${id}.conv` },
      );
      if (stride === 1 && channels === out) layers.push({ op: 'add', from: [input, `${id}.conv`], id });
      else layers.push({ op: 'dropout', id }); // the identity, naming the block's output
      input = id;
      channels = out;
    }
  }
  layers.push(
    { op: 'conv', out: last, kernel: 1, from: input },
    { op: 'relu6' },
    { op: 'adaptiveavgpool', out: [1, 1] },
    { op: 'flatten' },
    { op: 'dropout' },
    { op: 'dense', out: options.classes ?? 1000 },
  );
  return { name: 'mobilenet_v2', inputShape: [3, size, size], layers };
}
