/** Small seeded random networks in the IR, one per layer kind, for the dense-matrix tests. */
import type { Layer, Network } from '../../src/model/ir.js';
import { size, windowOutputSize } from '../../src/model/ir.js';
import { randomVector, type Rng } from '../../src/random.js';

let seedCounter = 100;
export function randomWeights(n: number, scale = 0.5): Float32Array {
  return Float32Array.from(randomVector(n, seedCounter++), (v) => v * scale);
}

export function conv(
  inputShape: [number, number, number],
  outChannels: number,
  kernel: [number, number],
  o: { strides?: [number, number]; pads?: [number, number, number, number]; dilations?: [number, number]; group?: number; relu?: boolean } = {},
): Layer {
  const strides = o.strides ?? [1, 1];
  const pads = o.pads ?? [0, 0, 0, 0];
  const dilations = o.dilations ?? [1, 1];
  const group = o.group ?? 1;
  const [c, h, w] = inputShape;
  const ho = windowOutputSize(h, kernel[0], strides[0], pads[0], pads[2], dilations[0]);
  const wo = windowOutputSize(w, kernel[1], strides[1], pads[1], pads[3], dilations[1]);
  return {
    kind: 'conv', name: 'conv', relu: o.relu ?? true, inputShape, outputShape: [outChannels, ho, wo],
    weight: randomWeights(outChannels * (c / group) * kernel[0] * kernel[1]), bias: randomWeights(outChannels, 0.3),
    kernel, strides, pads, dilations, group,
  };
}

export function dense(inputs: number, outputs: number, relu = true): Layer {
  return { kind: 'dense', name: 'dense', relu, inputShape: [inputs], outputShape: [outputs], weight: randomWeights(inputs * outputs), bias: randomWeights(outputs, 0.3) };
}

export function maxpool(inputShape: [number, number, number], kernel: [number, number], strides: [number, number], pads: [number, number, number, number] = [0, 0, 0, 0], dilations: [number, number] = [1, 1]): Layer {
  const [c, h, w] = inputShape;
  const ho = windowOutputSize(h, kernel[0], strides[0], pads[0], pads[2], dilations[0]);
  const wo = windowOutputSize(w, kernel[1], strides[1], pads[1], pads[3], dilations[1]);
  return { kind: 'maxpool', name: 'maxpool', inputShape, outputShape: [c, ho, wo], kernel, strides, pads, dilations };
}

export function avgpool(inputShape: [number, number, number], kernel: [number, number], strides: [number, number], pads: [number, number, number, number], countIncludePad: boolean, relu = false): Layer {
  const [c, h, w] = inputShape;
  const ho = windowOutputSize(h, kernel[0], strides[0], pads[0], pads[2]);
  const wo = windowOutputSize(w, kernel[1], strides[1], pads[1], pads[3]);
  return { kind: 'avgpool', name: 'avgpool', relu, inputShape, outputShape: [c, ho, wo], kernel, strides, pads, countIncludePad };
}

export function scale(shape: number[], relu = true): Layer {
  const channels = shape[0];
  return { kind: 'scale', name: 'scale', relu, inputShape: shape, outputShape: shape, scale: randomWeights(channels, 2), shift: randomWeights(channels, 0.3) };
}

export function flatten(shape: number[]): Layer {
  return { kind: 'flatten', name: 'flatten', inputShape: shape, outputShape: [shape.reduce((a, b) => a * b, 1)] };
}

export function network(layers: Layer[]): Network {
  return { name: 'test', inputName: 'input', inputShape: layers[0].inputShape, outputShape: layers[layers.length - 1].outputShape, layers };
}

/** A small network that exercises every layer kind, chained by shape. */
export function everyKindNetwork(): Network {
  const l1 = conv([2, 9, 9], 4, [3, 3], { strides: [1, 2], pads: [1, 0, 2, 1], dilations: [1, 1] });
  const l2 = scale(l1.outputShape, false);
  const l3 = maxpool(l2.outputShape as [number, number, number], [3, 2], [2, 1], [1, 0, 1, 0]);
  const l4 = conv(l3.outputShape as [number, number, number], 4, [2, 2], { group: 2, dilations: [1, 1], relu: false });
  const l5 = avgpool(l4.outputShape as [number, number, number], [2, 2], [1, 1], [0, 1, 0, 1], false, true);
  const l6 = flatten(l5.outputShape);
  const l7 = dense(l6.outputShape[0], 12);
  const l8 = dense(12, 5, false);
  return network([l1, l2, l3, l4, l5, l6, l7, l8]);
}

/** Convolution without ReLU, max pool, then a ReLU layer of its own, flatten and two dense layers. */
export function loneReluNet(): Network {
  const c1 = conv([2, 8, 8], 3, [3, 3], { relu: false, pads: [1, 1, 1, 1] });
  const p1 = maxpool(c1.outputShape as [number, number, number], [3, 3], [2, 2]);
  const r = { kind: 'relu' as const, name: 'relu', inputShape: p1.outputShape, outputShape: p1.outputShape };
  const f = flatten(p1.outputShape);
  return network([c1, p1, r, f, dense(f.outputShape[0], 8), dense(8, 4, false)]);
}

/** Convolution, max pool, flatten and two dense layers: the smallest conv net with a pool to split through. */
export function convPoolNet(): Network {
  const c1 = conv([1, 6, 6], 3, [3, 3]);
  const p1 = maxpool(c1.outputShape as [number, number, number], [2, 2], [2, 2]);
  const f = flatten(p1.outputShape);
  return network([c1, p1, f, dense(f.outputShape[0], 8), dense(8, 5, false)]);
}

/** `count` Gaussian rows at layer t's combined input (t = L: the network output), as a backward pass from t takes them. */
export function gaussianRowsAt(net: Network, t: number, count: number, rng: Rng): Float32Array {
  const width = t === net.layers.length ? size(net.outputShape) : size(net.layers[t].inputShape);
  return Float32Array.from({ length: count * width }, () => rng.gaussian());
}
