/**
 * Building a network IR from a torchvision-style layer list, with seeded He-initialised weights:
 * weights ~ N(0, 2/fan_in) (He et al. 2015), biases ~ U(±1/sqrt(fan_in)) (PyTorch's default for
 * biases; for a convolution that torchvision follows with BatchNorm, the bias stands for the folded
 * BatchNorm's shift). The IR is built the way importOnnx would build it from torch.onnx.export's
 * graph: an activation folds into the affine layer or sum before it, Dropout is the identity and
 * leaves nothing, and an adaptive average pool is nothing where it is an identity, else an
 * AveragePool with kernel = stride = in/out. A spec reads the previous spec's output, or the specs
 * named in `from` (by their `id`; 'input' is the network input): residual blocks add two of them,
 * Fire modules concatenate them.
 */
import { invariant } from '../../errors.js';
import { type Activation, isActivated, type Layer, type Network, type Shape, size, windowOutputSize } from '../ir.js';
import { SeededRandom } from './random.js';

/** Where a spec reads from and how later specs name its output. */
interface Wiring {
  /** A name for this spec's output. */
  id?: string;
  /** The outputs it reads (ids; 'input' is the network input). Default: the previous spec's. */
  from?: string | string[];
}

export type LayerSpec = Wiring &
  (
    | { op: 'conv'; out: number; kernel: number; stride?: number; pad?: number; group?: number }
    | { op: 'relu' }
    | { op: 'relu6' }
    | { op: 'maxpool'; kernel: number; stride: number; pad?: number }
    | { op: 'adaptiveavgpool'; out: [number, number] }
    | { op: 'flatten' }
    | { op: 'dropout' }
    | { op: 'dense'; out: number }
    | { op: 'add' }
    | { op: 'concat' }
  );

export interface Architecture {
  name: string;
  /** [C, H, W] */
  inputShape: Shape;
  layers: LayerSpec[];
}

/** Seed of one layer's weights: layers draw from independent streams, so they build in any order. */
function layerSeed(seed: number, index: number): number {
  return (Math.imul(seed + 1, 0x27d4eb2d) ^ Math.imul(index + 1, 0x165667b1)) >>> 0;
}

export interface BuildOptions {
  /** false: zero weights, for shapes and sizes only (no random draws; pages never touched). */
  initialise?: boolean;
}

const RELU6: Activation = { kind: 'clip', min: 0, max: 6 };

export function buildNetwork(arch: Architecture, seed = 0, options: BuildOptions = {}): Network {
  const initialise = options.initialise ?? true;
  const normal = (random: SeededRandom, n: number, std: number) => (initialise ? random.fillNormal(new Float32Array(n), std) : new Float32Array(n));
  const uniform = (random: SeededRandom, n: number, bound: number) => (initialise ? random.fillUniform(new Float32Array(n), bound) : new Float32Array(n));
  const layers: Layer[] = [];
  /** A spec's output: the layer holding it (−1: the network input) and its shape. */
  type Output = { layer: number; shape: Shape };
  const named = new Map<string, Output>([['input', { layer: -1, shape: arch.inputShape.slice() }]]);
  let previous: Output = named.get('input')!;
  const fail = (index: number, message: string): never => {
    throw new Error(`zoo model ${arch.name}, layer ${index}: ${message}`);
  };
  for (const [index, spec] of arch.layers.entries()) {
    const name = `${arch.name}.${index}.${spec.op}`;
    const sources = spec.from === undefined ? [previous] : [spec.from].flat().map((id) => named.get(id) ?? fail(index, `reads '${id}', which no earlier layer names`));
    let shape = sources[0].shape;
    let current = sources[0].layer;
    const push = (layer: Layer) => {
      const reads = sources.map((t) => t.layer);
      if (layer.kind === 'add' || layer.kind === 'concat' || reads.length !== 1 || reads[0] !== layers.length - 1) layer.inputs = reads;
      layers.push(layer);
      current = layers.length - 1;
      shape = layer.outputShape;
    };
    const activate = (activation: Activation | 'relu') => {
      const last = current >= 0 ? layers[current] : undefined;
      if (last && isActivated(last) && !last.relu && !last.activation) {
        if (activation === 'relu') last.relu = true;
        else last.activation = activation;
      } else if (activation === 'relu') push({ kind: 'relu', name, inputShape: shape, outputShape: shape });
      else push({ kind: 'activation', name, activation, inputShape: shape, outputShape: shape });
    };
    if (sources.length > 1 && spec.op !== 'add' && spec.op !== 'concat') fail(index, `${spec.op} reads one input, not ${sources.length}`);
    switch (spec.op) {
      case 'conv': {
        if (shape.length !== 3) fail(index, `conv needs [C,H,W], got [${shape}]`);
        const [c, h, w] = shape;
        const k = spec.kernel;
        const s = spec.stride ?? 1;
        const p = spec.pad ?? 0;
        const group = spec.group ?? 1;
        if (c % group !== 0 || spec.out % group !== 0) fail(index, `${c} → ${spec.out} channels do not split into ${group} groups`);
        const ho = windowOutputSize(h, k, s, p, p);
        const wo = windowOutputSize(w, k, s, p, p);
        if (ho <= 0 || wo <= 0) fail(index, `input ${h}×${w} is too small for a ${k}×${k} convolution`);
        const fanIn = (c / group) * k * k;
        const random = new SeededRandom(layerSeed(seed, index));
        push({
          kind: 'conv',
          name,
          relu: false,
          inputShape: shape,
          outputShape: [spec.out, ho, wo],
          weight: normal(random, spec.out * fanIn, Math.sqrt(2 / fanIn)),
          bias: uniform(random, spec.out, 1 / Math.sqrt(fanIn)),
          kernel: [k, k],
          strides: [s, s],
          pads: [p, p, p, p],
          dilations: [1, 1],
          group,
        });
        break;
      }
      case 'dense': {
        if (shape.length !== 1) fail(index, `dense needs a flat input, got [${shape}]`);
        const fanIn = shape[0];
        const random = new SeededRandom(layerSeed(seed, index));
        push({
          kind: 'dense',
          name,
          relu: false,
          inputShape: shape,
          outputShape: [spec.out],
          weight: normal(random, spec.out * fanIn, Math.sqrt(2 / fanIn)),
          bias: uniform(random, spec.out, 1 / Math.sqrt(fanIn)),
        });
        break;
      }
      case 'relu':
        activate('relu');
        break;
      case 'relu6':
        activate(RELU6);
        break;
      case 'maxpool': {
        if (shape.length !== 3) fail(index, `max pool needs [C,H,W], got [${shape}]`);
        const [c, h, w] = shape;
        const p = spec.pad ?? 0;
        const ho = windowOutputSize(h, spec.kernel, spec.stride, p, p);
        const wo = windowOutputSize(w, spec.kernel, spec.stride, p, p);
        if (ho <= 0 || wo <= 0) fail(index, `input ${h}×${w} is too small for a ${spec.kernel}×${spec.kernel} max pool`);
        push({
          kind: 'maxpool',
          name,
          inputShape: shape,
          outputShape: [c, ho, wo],
          kernel: [spec.kernel, spec.kernel],
          strides: [spec.stride, spec.stride],
          pads: [p, p, p, p],
          dilations: [1, 1],
        });
        break;
      }
      case 'adaptiveavgpool': {
        if (shape.length !== 3) fail(index, `adaptive pool needs [C,H,W], got [${shape}]`);
        const [c, h, w] = shape;
        const [oh, ow] = spec.out;
        if (oh === h && ow === w) break; // the identity: torch.onnx.export leaves nothing (or a 1×1 AveragePool)
        if (h % oh !== 0 || w % ow !== 0) fail(index, `adaptive pool from ${h}×${w} to ${oh}×${ow} is not a plain average pool`);
        const kernel: [number, number] = [h / oh, w / ow];
        push({
          kind: 'avgpool',
          name,
          relu: false,
          inputShape: shape,
          outputShape: [c, oh, ow],
          kernel,
          strides: kernel,
          pads: [0, 0, 0, 0],
          countIncludePad: false,
        });
        break;
      }
      case 'flatten':
        if (shape.length > 1) push({ kind: 'flatten', name, inputShape: shape, outputShape: [size(shape)] });
        break;
      case 'dropout':
        break; // the identity at inference
      case 'add':
        if (sources.length < 2) fail(index, 'add reads at least two outputs');
        if (sources.some((t) => t.shape.join() !== shape.join())) fail(index, `add of shapes ${sources.map((t) => `[${t.shape}]`).join(', ')}`);
        push({ kind: 'add', name, relu: false, inputs: [], inputShape: shape, outputShape: shape });
        break;
      case 'concat': {
        if (sources.length < 2) fail(index, 'concat reads at least two outputs');
        if (sources.some((t) => t.shape.slice(1).join() !== shape.slice(1).join())) fail(index, `concat of shapes ${sources.map((t) => `[${t.shape}]`).join(', ')}`);
        const out = [sources.reduce((n, t) => n + t.shape[0], 0), ...shape.slice(1)];
        push({ kind: 'concat', name, inputs: [], inputShape: out, outputShape: out });
        break;
      }
      default:
        invariant(false, `unknown zoo layer ${(spec as LayerSpec).op}`);
    }
    previous = { layer: current, shape };
    if (spec.id) named.set(spec.id, previous);
  }
  invariant(previous.layer === layers.length - 1, `zoo model ${arch.name}: the last spec is not the last layer`);
  return { name: arch.name, inputName: 'input', inputShape: arch.inputShape.slice(), outputShape: previous.shape, layers };
}
