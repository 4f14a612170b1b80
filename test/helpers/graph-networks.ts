/**
 * Small seeded networks that are graphs or use activations other than ReLU, built directly in the
 * IR (no import): residual blocks with identity and projection shortcuts, channel concatenation,
 * lone activations, LeakyReLU, PReLU, Clip (ReLU6, HardTanh), sigmoid and tanh. For the bound tests
 * (dense references, sampled ratios, audits) and the export round trip.
 */
import type { Activation, Layer, Network, Shape } from '../../src/model/ir.js';
import { size, windowOutputSize } from '../../src/model/ir.js';
import { Rng } from '../../src/random.js';

/** A layer's output (−1: the network input) and its shape. */
export interface Ref {
  layer: number;
  shape: Shape;
}

type Act = 'relu' | Activation | undefined;

export class GraphBuilder {
  readonly layers: Layer[] = [];
  private readonly rng: Rng;

  constructor(
    readonly inputShape: Shape,
    seed: number,
    /** Scale of the weights relative to 1/sqrt(fan_in). */
    private readonly gain = 1,
  ) {
    this.rng = new Rng(seed);
  }

  get input(): Ref {
    return { layer: -1, shape: this.inputShape };
  }

  private gaussian(n: number, scale: number): Float32Array {
    return Float32Array.from({ length: n }, () => scale * this.rng.gaussian());
  }

  private push(layer: Layer, from: Ref[]): Ref {
    const reads = from.map((r) => r.layer);
    if (layer.kind === 'add' || layer.kind === 'concat' || reads.length !== 1 || reads[0] !== this.layers.length - 1) layer.inputs = reads;
    this.layers.push(layer);
    return { layer: this.layers.length - 1, shape: layer.outputShape };
  }

  private static activated(act: Act): { relu: boolean; activation?: Activation } {
    return act === 'relu' ? { relu: true } : act ? { relu: false, activation: act } : { relu: false };
  }

  conv(from: Ref, out: number, k: number, o: { stride?: number; pad?: number; group?: number; act?: Act } = {}): Ref {
    const [c, h, w] = from.shape;
    const [s, p, g] = [o.stride ?? 1, o.pad ?? 0, o.group ?? 1];
    const fanIn = (c / g) * k * k;
    return this.push(
      {
        kind: 'conv',
        name: `conv${this.layers.length}`,
        ...GraphBuilder.activated(o.act),
        inputShape: from.shape,
        outputShape: [out, windowOutputSize(h, k, s, p, p), windowOutputSize(w, k, s, p, p)],
        weight: this.gaussian(out * fanIn, this.gain / Math.sqrt(fanIn)),
        bias: this.gaussian(out, 0.1),
        kernel: [k, k],
        strides: [s, s],
        pads: [p, p, p, p],
        dilations: [1, 1],
        group: g,
      },
      [from],
    );
  }

  dense(from: Ref, out: number, act?: Act): Ref {
    const n = from.shape[0];
    return this.push(
      { kind: 'dense', name: `dense${this.layers.length}`, ...GraphBuilder.activated(act), inputShape: from.shape, outputShape: [out], weight: this.gaussian(out * n, this.gain / Math.sqrt(n)), bias: this.gaussian(out, 0.1) },
      [from],
    );
  }

  add(from: Ref[], act?: Act): Ref {
    return this.push({ kind: 'add', name: `add${this.layers.length}`, ...GraphBuilder.activated(act), inputs: [], inputShape: from[0].shape, outputShape: from[0].shape }, from);
  }

  concat(from: Ref[]): Ref {
    const shape = [from.reduce((n, r) => n + r.shape[0], 0), ...from[0].shape.slice(1)];
    return this.push({ kind: 'concat', name: `concat${this.layers.length}`, inputs: [], inputShape: shape, outputShape: shape }, from);
  }

  maxpool(from: Ref, k: number, s: number, p = 0): Ref {
    const [c, h, w] = from.shape;
    return this.push(
      { kind: 'maxpool', name: `maxpool${this.layers.length}`, inputShape: from.shape, outputShape: [c, windowOutputSize(h, k, s, p, p), windowOutputSize(w, k, s, p, p)], kernel: [k, k], strides: [s, s], pads: [p, p, p, p], dilations: [1, 1] },
      [from],
    );
  }

  globalAverage(from: Ref): Ref {
    const [c, h, w] = from.shape;
    return this.push({ kind: 'avgpool', name: `avgpool${this.layers.length}`, relu: false, inputShape: from.shape, outputShape: [c, 1, 1], kernel: [h, w], strides: [1, 1], pads: [0, 0, 0, 0], countIncludePad: false }, [from]);
  }

  activation(from: Ref, act: 'relu' | Activation): Ref {
    if (act === 'relu') return this.push({ kind: 'relu', name: `relu${this.layers.length}`, inputShape: from.shape, outputShape: from.shape }, [from]);
    return this.push({ kind: 'activation', name: `act${this.layers.length}`, activation: act, inputShape: from.shape, outputShape: from.shape }, [from]);
  }

  flatten(from: Ref): Ref {
    return this.push({ kind: 'flatten', name: `flatten${this.layers.length}`, inputShape: from.shape, outputShape: [size(from.shape)] }, [from]);
  }

  build(name: string, output: Ref): Network {
    if (output.layer !== this.layers.length - 1) throw new Error('the output must be the last layer');
    return { name, inputName: 'input', inputShape: this.inputShape, outputShape: output.shape, layers: this.layers };
  }
}

const RELU6: Activation = { kind: 'clip', min: 0, max: 6 };
const HARDTANH: Activation = { kind: 'clip', min: -1, max: 1 };

/** Two residual blocks (identity, then a stride-2 projection shortcut), ReLU after each Add: [2,6,6] → 3. */
export function residualNetwork(seed: number, gain = 1.2): Network {
  const b = new GraphBuilder([2, 6, 6], seed, gain);
  const stem = b.conv(b.input, 4, 3, { pad: 1, act: 'relu' });
  const a = b.conv(b.conv(stem, 4, 3, { pad: 1, act: 'relu' }), 4, 3, { pad: 1 });
  const block1 = b.add([a, stem], 'relu');
  const main = b.conv(b.conv(block1, 6, 3, { stride: 2, pad: 1, act: 'relu' }), 6, 3, { pad: 1 });
  const shortcut = b.conv(block1, 6, 1, { stride: 2 });
  const block2 = b.add([main, shortcut], 'relu');
  return b.build('residual', b.dense(b.flatten(b.globalAverage(block2)), 3));
}

/** Residual MLP blocks whose Add has no activation, and x + F(x) twice: [6] → 4. */
export function residualMlp(seed: number): Network {
  const b = new GraphBuilder([6], seed, 1.5);
  const h = b.dense(b.input, 8, 'relu');
  const r1 = b.add([h, b.dense(b.dense(h, 8, 'relu'), 8)]);
  const r2 = b.add([r1, b.dense(r1, 8, 'relu'), r1]);
  return b.build('residual-mlp', b.dense(r2, 4));
}

/**
 * LeakyReLU(0.1), PReLU per feature, and LeakyReLU(0.3) as a lone layer on a tensor that is also
 * added to its output (so it cannot fold into the dense layer): [6] → 3.
 */
export function leakyMlp(seed: number): Network {
  const b = new GraphBuilder([6], seed, 1.5);
  const alpha = Float32Array.from({ length: 8 }, (_, i) => 0.05 * i);
  const h1 = b.dense(b.input, 8, { kind: 'leakyrelu', alpha: Math.fround(0.1) });
  const h2 = b.dense(h1, 8, { kind: 'prelu', alpha });
  const pre = b.dense(h2, 8);
  const h3 = b.activation(pre, { kind: 'leakyrelu', alpha: Math.fround(0.3) });
  return b.build('leaky', b.dense(b.add([h3, pre]), 3));
}

/** ReLU6 and HardTanh convolutions, a max pool, ReLU6 on a dense layer: [2,6,6] → 3. */
export function relu6Network(seed: number): Network {
  const b = new GraphBuilder([2, 6, 6], seed, 3);
  const c1 = b.conv(b.input, 4, 3, { pad: 1, act: RELU6 });
  const c2 = b.conv(b.maxpool(c1, 2, 2), 4, 3, { pad: 1, act: HARDTANH });
  const d = b.dense(b.flatten(c2), 10, RELU6);
  return b.build('relu6', b.dense(d, 3));
}

/** Fire-module Concat of a ReLU and a sigmoid branch, a lone tanh, a depthwise convolution, tanh MLP: [3,5,5] → 3. */
export function concatNetwork(seed: number): Network {
  const b = new GraphBuilder([3, 5, 5], seed, 2);
  const squeeze = b.conv(b.input, 2, 1, { act: 'relu' });
  const e1 = b.conv(squeeze, 3, 1, { act: 'relu' });
  const e3 = b.conv(squeeze, 3, 3, { pad: 1, act: { kind: 'sigmoid' } });
  const fire = b.concat([e1, e3, b.input]);
  const t = b.activation(fire, { kind: 'tanh' });
  const depthwise = b.conv(t, 9, 3, { group: 9, act: { kind: 'tanh' } });
  const h = b.dense(b.flatten(depthwise), 8, { kind: 'sigmoid' });
  return b.build('concat', b.dense(h, 3));
}

/** Every graph network of this file. */
export const GRAPH_NETWORKS: [string, (seed: number) => Network][] = [
  ['residual', residualNetwork],
  ['residual MLP', residualMlp],
  ['leaky', leakyMlp],
  ['relu6', relu6Network],
  ['concat', concatNetwork],
];
