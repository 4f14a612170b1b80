/**
 * The network IR: a DAG of layers in topological order as the bound computation sees them (one
 * entry per node of docs/graphs.md's recursion; on a chain, one factor of Proposition 3's product).
 * A layer reads the outputs of the layers listed in `inputs` (−1: the network input); without
 * `inputs` it reads the layer before it, so a chain needs none. The network's output is the last
 * layer's. An affine layer (conv, dense, average pool, diagonal scale) and an `add` carry their
 * activation: the `relu` flag when a ReLU directly follows (so the paper's "affine-ReLU layer" is
 * one entry), or `activation` for the other monotone activations (LeakyReLU, PReLU, Clip, Sigmoid,
 * Tanh; never both). Shapes never include the batch dimension. Weights are float32, row-major as
 * in ONNX.
 */

/** [C, H, W] for images, [N] for vectors. */
export type Shape = number[];

/**
 * A monotone activation other than ReLU (ReLU is the `relu` flag, or a layer of kind 'relu': the
 * paper's case, kept as it was). PReLU's slopes are per channel (one value: shared). Parameters are
 * float32 values, as ONNX stores them (an exported model then computes the same function).
 */
export type Activation =
  | { kind: 'leakyrelu'; alpha: number }
  | { kind: 'prelu'; alpha: Float32Array }
  | { kind: 'clip'; min: number; max: number }
  | { kind: 'sigmoid' }
  | { kind: 'tanh' };

interface LayerBase {
  /** Name of the ONNX node it came from (or a generated one). */
  name: string;
  /**
   * Indices of the layers whose outputs this layer reads, each smaller than its own index; −1 is
   * the network input. Absent: the previous layer (index − 1), as in a chain.
   */
  inputs?: number[];
  inputShape: Shape;
  outputShape: Shape;
}

/** What follows an affine map or a sum: a ReLU (`relu`), another activation, or nothing. */
interface Activated {
  relu: boolean;
  /** An activation other than ReLU; only when `relu` is false. */
  activation?: Activation;
}

export interface ConvLayer extends LayerBase, Activated {
  kind: 'conv';
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

export interface DenseLayer extends LayerBase, Activated {
  kind: 'dense';
  /** [outFeatures, inFeatures], row-major: y = W x + b. */
  weight: Float32Array;
  bias: Float32Array;
}

/** Average pooling: affine without bias, A averages a window (count_include_pad decides the divisor). */
export interface AvgPoolLayer extends LayerBase, Activated {
  kind: 'avgpool';
  kernel: [number, number];
  strides: [number, number];
  pads: [number, number, number, number];
  countIncludePad: boolean;
}

/** Per-channel y = scale_c x + shift_c: a batch normalisation that could not be folded. */
export interface ScaleLayer extends LayerBase, Activated {
  kind: 'scale';
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

/** A lone activation other than ReLU (after a max pool, a concatenation, or a tensor read twice). */
export interface ActivationLayer extends LayerBase {
  kind: 'activation';
  activation: Activation;
}

/** The elementwise sum of two or more inputs of the same shape (a residual connection). */
export interface AddLayer extends LayerBase, Activated {
  kind: 'add';
  /** At least two; `inputShape` is the shape of each. */
  inputs: number[];
}

/**
 * Concatenation of two or more inputs along the channel axis (axis 0 without the batch: channels
 * of images, features of vectors). `inputShape` is the output's (the inputs stacked).
 */
export interface ConcatLayer extends LayerBase {
  kind: 'concat';
  inputs: number[];
}

export type AffineLayer = ConvLayer | DenseLayer | AvgPoolLayer | ScaleLayer;
export type Layer = AffineLayer | MaxPoolLayer | FlattenLayer | ReluLayer | ActivationLayer | AddLayer | ConcatLayer;
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

/** Layers an activation can follow in one entry (`relu` or `activation`). */
export type ActivatedLayer = AffineLayer | AddLayer;

export function isActivated(layer: Layer): layer is ActivatedLayer {
  return isAffine(layer) || layer.kind === 'add';
}

/** The indices of the layers `network.layers[index]` reads (−1: the network input). */
export function inputsOf(network: Network, index: number): number[] {
  return network.layers[index].inputs ?? [index - 1];
}

/** Whether the network is a chain: every layer reads only the layer before it. */
export function isChain(network: Network): boolean {
  return network.layers.every((l, i) => l.kind !== 'add' && l.kind !== 'concat' && inputsOf(network, i).length === 1 && inputsOf(network, i)[0] === i - 1);
}

/** Arrays one after another: channel concatenation in the (C, H, W) layout (a Concat's output, an Add's stacked inputs). */
export function stack<T extends Float32Array | Float64Array>(parts: T[], make: (length: number) => T): T {
  const out = make(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

export function size(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function parameterCount(network: Network): number {
  let n = 0;
  for (const l of network.layers) {
    if (l.kind === 'conv' || l.kind === 'dense') n += l.weight.length + l.bias.length;
    else if (l.kind === 'scale') n += l.scale.length + l.shift.length;
    const activation = l.kind === 'activation' ? l.activation : isActivated(l) ? l.activation : undefined;
    if (activation?.kind === 'prelu') n += activation.alpha.length;
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
