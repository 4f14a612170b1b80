/**
 * The network IR: a chain of layers as the bound computation sees them (one entry per factor of
 * Proposition 3's product). An affine layer (conv, dense, average pool, diagonal scale) carries a
 * `relu` flag when a ReLU directly follows it, so "affine-ReLU layer" of the paper is one entry.
 * Shapes never include the batch dimension. Weights are float32, row-major as in ONNX.
 */

/** [C, H, W] for images, [N] for vectors. */
export type Shape = number[];

interface LayerBase {
  /** Name of the ONNX node it came from (or a generated one). */
  name: string;
  inputShape: Shape;
  outputShape: Shape;
}

export interface ConvLayer extends LayerBase {
  kind: 'conv';
  relu: boolean;
  /** [outChannels, inChannels / group, kernelH, kernelW] */
  weight: Float32Array;
  bias: Float32Array; // length outChannels (zeros when the model has none)
  kernel: [number, number];
  strides: [number, number];
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
  dilations: [number, number];
  group: number;
}

export interface DenseLayer extends LayerBase {
  kind: 'dense';
  relu: boolean;
  /** [outFeatures, inFeatures], row-major: y = W x + b. */
  weight: Float32Array;
  bias: Float32Array;
}

/** Average pooling: affine without bias, A averages a window (count_include_pad decides the divisor). */
export interface AvgPoolLayer extends LayerBase {
  kind: 'avgpool';
  relu: boolean;
  kernel: [number, number];
  strides: [number, number];
  pads: [number, number, number, number];
  countIncludePad: boolean;
}

/** Per-channel y = scale_c x + shift_c: a batch normalisation that could not be folded. */
export interface ScaleLayer extends LayerBase {
  kind: 'scale';
  relu: boolean;
  scale: Float32Array; // per channel (or per feature for vectors)
  shift: Float32Array;
}

export interface MaxPoolLayer extends LayerBase {
  kind: 'maxpool';
  kernel: [number, number];
  strides: [number, number];
  pads: [number, number, number, number];
  dilations: [number, number];
}

/** Flatten or a Reshape to one dimension: the identity on the data, L = 1. */
export interface FlattenLayer extends LayerBase {
  kind: 'flatten';
}

/** A ReLU that does not directly follow an affine layer (e.g. after a max pool): L = 1. */
export interface ReluLayer extends LayerBase {
  kind: 'relu';
}

export type AffineLayer = ConvLayer | DenseLayer | AvgPoolLayer | ScaleLayer;
export type Layer = AffineLayer | MaxPoolLayer | FlattenLayer | ReluLayer;
export type LayerKind = Layer['kind'];

export interface Network {
  name: string;
  inputName: string;
  inputShape: Shape;
  outputShape: Shape;
  layers: Layer[];
}

export function isAffine(layer: Layer): layer is AffineLayer {
  return layer.kind === 'conv' || layer.kind === 'dense' || layer.kind === 'avgpool' || layer.kind === 'scale';
}

export function size(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function parameterCount(network: Network): number {
  let n = 0;
  for (const l of network.layers) {
    if (l.kind === 'conv' || l.kind === 'dense') n += l.weight.length + l.bias.length;
    else if (l.kind === 'scale') n += l.scale.length + l.shift.length;
  }
  return n;
}

/** Multiply-adds of one application of a layer's weights (convolutions and dense layers; 0 otherwise). */
export function multiplyAdds(layer: Layer): number {
  if (layer.kind === 'conv') return layer.weight.length * layer.outputShape[1] * layer.outputShape[2];
  if (layer.kind === 'dense') return layer.weight.length;
  return 0;
}

/** Multiply-adds of one forward pass (MNIST net: 0.4 M, CIFAR-10 net: 15 M, VGG-16: 15.5 G). */
export function networkMultiplyAdds(network: Network): number {
  return network.layers.reduce((total, layer) => total + multiplyAdds(layer), 0);
}

/** Output extent of a pooling or convolution window along one axis (ONNX semantics). */
export function windowOutputSize(
  input: number,
  kernel: number,
  stride: number,
  padBegin: number,
  padEnd: number,
  dilation = 1,
  ceilMode = false,
): number {
  const span = dilation * (kernel - 1) + 1;
  const numerator = input + padBegin + padEnd - span;
  const out = (ceilMode ? Math.ceil(numerator / stride) : Math.floor(numerator / stride)) + 1;
  if (ceilMode && (out - 1) * stride >= input + padBegin) return out - 1; // last window must start inside
  return out;
}
