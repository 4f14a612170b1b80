/**
 * Building a network IR from a torchvision-style layer list, with seeded He-initialised weights:
 * weights ~ N(0, 2/fan_in) (He et al. 2015), biases ~ U(±1/sqrt(fan_in)) (PyTorch's default for
 * biases). The IR is built the way importOnnx would build it from torch.onnx.export's graph: a ReLU
 * folds into the affine layer before it, Dropout is the identity and leaves nothing, and an adaptive
 * average pool is nothing where it is an identity, else an AveragePool with kernel = stride = in/out.
 */
import { invariant } from '../../errors.js';
import { type Layer, type Network, type Shape, size, windowOutputSize } from '../ir.js';
import { SeededRandom } from './random.js';

export type LayerSpec =
  | { op: 'conv'; out: number; kernel: number; stride?: number; pad?: number }
  | { op: 'relu' }
  | { op: 'maxpool'; kernel: number; stride: number; pad?: number }
  | { op: 'adaptiveavgpool'; out: [number, number] }
  | { op: 'flatten' }
  | { op: 'dropout' }
  | { op: 'dense'; out: number };

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

export function buildNetwork(arch: Architecture, seed = 0, options: BuildOptions = {}): Network {
  const initialise = options.initialise ?? true;
  const normal = (random: SeededRandom, n: number, std: number) => (initialise ? random.fillNormal(new Float32Array(n), std) : new Float32Array(n));
  const uniform = (random: SeededRandom, n: number, bound: number) => (initialise ? random.fillUniform(new Float32Array(n), bound) : new Float32Array(n));
  const layers: Layer[] = [];
  let shape: Shape = arch.inputShape.slice();
  const fail = (index: number, message: string): never => {
    throw new Error(`zoo model ${arch.name}, layer ${index}: ${message}`);
  };
  for (const [index, spec] of arch.layers.entries()) {
    const name = `${arch.name}.${index}.${spec.op}`;
    switch (spec.op) {
      case 'conv': {
        if (shape.length !== 3) fail(index, `conv needs [C,H,W], got [${shape}]`);
        const [c, h, w] = shape;
        const k = spec.kernel;
        const s = spec.stride ?? 1;
        const p = spec.pad ?? 0;
        const ho = windowOutputSize(h, k, s, p, p);
        const wo = windowOutputSize(w, k, s, p, p);
        if (ho <= 0 || wo <= 0) fail(index, `input ${h}×${w} is too small for a ${k}×${k} convolution`);
        const fanIn = c * k * k;
        const random = new SeededRandom(layerSeed(seed, index));
        layers.push({
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
          group: 1,
        });
        shape = [spec.out, ho, wo];
        break;
      }
      case 'dense': {
        if (shape.length !== 1) fail(index, `dense needs a flat input, got [${shape}]`);
        const fanIn = shape[0];
        const random = new SeededRandom(layerSeed(seed, index));
        layers.push({
          kind: 'dense',
          name,
          relu: false,
          inputShape: shape,
          outputShape: [spec.out],
          weight: normal(random, spec.out * fanIn, Math.sqrt(2 / fanIn)),
          bias: uniform(random, spec.out, 1 / Math.sqrt(fanIn)),
        });
        shape = [spec.out];
        break;
      }
      case 'relu': {
        const last = layers[layers.length - 1];
        if (last && (last.kind === 'conv' || last.kind === 'dense') && !last.relu) last.relu = true;
        else layers.push({ kind: 'relu', name, inputShape: shape, outputShape: shape });
        break;
      }
      case 'maxpool': {
        if (shape.length !== 3) fail(index, `max pool needs [C,H,W], got [${shape}]`);
        const [c, h, w] = shape;
        const p = spec.pad ?? 0;
        const ho = windowOutputSize(h, spec.kernel, spec.stride, p, p);
        const wo = windowOutputSize(w, spec.kernel, spec.stride, p, p);
        if (ho <= 0 || wo <= 0) fail(index, `input ${h}×${w} is too small for a ${spec.kernel}×${spec.kernel} max pool`);
        layers.push({
          kind: 'maxpool',
          name,
          inputShape: shape,
          outputShape: [c, ho, wo],
          kernel: [spec.kernel, spec.kernel],
          strides: [spec.stride, spec.stride],
          pads: [p, p, p, p],
          dilations: [1, 1],
        });
        shape = [c, ho, wo];
        break;
      }
      case 'adaptiveavgpool': {
        if (shape.length !== 3) fail(index, `adaptive pool needs [C,H,W], got [${shape}]`);
        const [c, h, w] = shape;
        const [oh, ow] = spec.out;
        if (oh === h && ow === w) break; // the identity: torch.onnx.export leaves nothing (or a 1×1 AveragePool)
        if (h % oh !== 0 || w % ow !== 0) fail(index, `adaptive pool from ${h}×${w} to ${oh}×${ow} is not a plain average pool`);
        const kernel: [number, number] = [h / oh, w / ow];
        layers.push({
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
        shape = [c, oh, ow];
        break;
      }
      case 'flatten':
        if (shape.length > 1) {
          layers.push({ kind: 'flatten', name, inputShape: shape, outputShape: [size(shape)] });
          shape = [size(shape)];
        }
        break;
      case 'dropout':
        break; // the identity at inference
      default:
        invariant(false, `unknown zoo layer ${(spec as LayerSpec).op}`);
    }
  }
  return { name: arch.name, inputName: 'input', inputShape: arch.inputShape.slice(), outputShape: shape, layers };
}
