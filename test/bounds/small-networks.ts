/**
 * Small networks built directly in the IR with seeded random weights, covering every layer kind
 * (conv with padding, stride, dilation and groups; overlapping and padded max pools; average pools
 * with and without padded counting; per-channel scale; lone ReLU; flatten; dense), plus a linear
 * classifier whose minimal adversarial perturbation is known in closed form.
 */
import { Rng } from '../../src/random.js';
import {
  type AvgPoolLayer,
  type ConvLayer,
  type DenseLayer,
  type Layer,
  type MaxPoolLayer,
  type Network,
  type ScaleLayer,
  type Shape,
  windowOutputSize,
} from '../../src/model/ir.js';

function gaussian(n: number, scale: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: n }, () => scale * rng.gaussian());
}

class Builder {
  readonly layers: Layer[] = [];
  constructor(
    private shape: Shape,
    private readonly rng: Rng,
  ) {}

  private push<L extends Layer>(layer: Omit<L, 'name' | 'inputShape'>): this {
    const full = { ...layer, name: `${layer.kind}${this.layers.length}`, inputShape: this.shape } as unknown as L;
    this.layers.push(full);
    this.shape = full.outputShape;
    return this;
  }

  conv(out: number, k: number, o: { stride?: number; pad?: number; dilation?: number; group?: number; relu?: boolean } = {}) {
    const [c, h, w] = this.shape;
    const [s, p, d, g] = [o.stride ?? 1, o.pad ?? 0, o.dilation ?? 1, o.group ?? 1];
    const fanIn = (c / g) * k * k;
    return this.push<ConvLayer>({
      kind: 'conv',
      relu: o.relu ?? true,
      weight: gaussian(out * fanIn, 1 / Math.sqrt(fanIn), this.rng),
      bias: gaussian(out, 0.1, this.rng),
      kernel: [k, k],
      strides: [s, s],
      pads: [p, p, p, p],
      dilations: [d, d],
      group: g,
      outputShape: [out, windowOutputSize(h, k, s, p, p, d), windowOutputSize(w, k, s, p, p, d)],
    });
  }

  maxpool(k: number, s: number, p = 0) {
    const [c, h, w] = this.shape;
    return this.push<MaxPoolLayer>({
      kind: 'maxpool',
      kernel: [k, k],
      strides: [s, s],
      pads: [p, p, p, p],
      dilations: [1, 1],
      outputShape: [c, windowOutputSize(h, k, s, p, p), windowOutputSize(w, k, s, p, p)],
    });
  }

  avgpool(k: number, s: number, p: number, countIncludePad: boolean, relu: boolean) {
    const [c, h, w] = this.shape;
    return this.push<AvgPoolLayer>({
      kind: 'avgpool',
      relu,
      kernel: [k, k],
      strides: [s, s],
      pads: [p, p, p, p],
      countIncludePad,
      outputShape: [c, windowOutputSize(h, k, s, p, p), windowOutputSize(w, k, s, p, p)],
    });
  }

  scale(relu: boolean) {
    const channels = this.shape[0];
    return this.push<ScaleLayer>({ kind: 'scale', relu, scale: gaussian(channels, 1, this.rng), shift: gaussian(channels, 0.1, this.rng), outputShape: this.shape });
  }

  relu() {
    return this.push({ kind: 'relu', outputShape: this.shape });
  }

  flatten() {
    return this.push({ kind: 'flatten', outputShape: [this.shape.reduce((a, b) => a * b, 1)] });
  }

  dense(out: number, relu: boolean) {
    const n = this.shape[0];
    return this.push<DenseLayer>({ kind: 'dense', relu, weight: gaussian(out * n, 1 / Math.sqrt(n), this.rng), bias: gaussian(out, 0.1, this.rng), outputShape: [out] });
  }

  build(name: string, inputShape: Shape): Network {
    return { name, inputName: 'input', inputShape, outputShape: this.shape, layers: this.layers };
  }
}

/** Every layer kind in one chain: [2,9,9] → 3 logits. */
export function everyLayerNetwork(seed: number): Network {
  const inputShape = [2, 9, 9];
  return new Builder(inputShape, new Rng(seed))
    .conv(4, 3, { pad: 1 })
    .maxpool(3, 2, 1) // overlapping, padded windows
    .scale(false)
    .relu()
    .avgpool(3, 1, 1, false, true)
    .conv(4, 3, { pad: 2, dilation: 2, group: 2, relu: false })
    .avgpool(2, 1, 0, true, false)
    .conv(6, 2, { stride: 2, relu: true })
    .maxpool(2, 1)
    .flatten()
    .dense(8, true)
    .scale(true)
    .dense(3, false)
    .build('every-layer', inputShape);
}

/** f(x) = W x + b on [n] inputs with k classes. */
export function linearClassifier(seed: number, n: number, k: number): Network {
  return new Builder([n], new Rng(seed)).dense(k, false).build('linear', [n]);
}

export function randomInput(n: number, seed: number): Float32Array {
  return gaussian(n, 1, new Rng(seed));
}
