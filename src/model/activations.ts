/**
 * The activations of the IR, evaluated: which activation a layer applies (`activationOf`), the
 * activation applied to a tensor in float32 (the nominal pass) and float64 (forward64), its
 * derivative (backprop) and its global Lipschitz constant sup|σ'| (the global bound). ReLU is the
 * paper's case and keeps its own code path everywhere; the others are LeakyReLU(α), PReLU (α per
 * channel), Clip(min, max) (ReLU6 = Clip(0, 6), HardTanh = Clip(−1, 1)), Sigmoid and Tanh — all
 * monotone, so the difference-quotient bounds of bounds/activation-slopes.ts hold (docs/graphs.md §3).
 */
import { type Activation, isActivated, type Layer, type Shape, size } from './ir.js';

/** ReLU, or one of the other activations. */
export type AnyActivation = { kind: 'relu' } | Activation;

export const RELU: AnyActivation = Object.freeze({ kind: 'relu' });

/** The activation a layer applies to its output: a lone ReLU or activation layer, or what follows an affine map or sum. */
export function activationOf(layer: Layer): AnyActivation | null {
  if (layer.kind === 'relu') return RELU;
  if (layer.kind === 'activation') return layer.activation;
  if (isActivated(layer)) return layer.relu ? RELU : (layer.activation ?? null);
  return null;
}

/** A short name: relu, leakyrelu(0.1), prelu, clip(0,6), sigmoid, tanh. */
export function activationName(activation: AnyActivation): string {
  switch (activation.kind) {
    case 'leakyrelu':
      return `leakyrelu(${activation.alpha})`;
    case 'clip':
      return `clip(${activation.min},${activation.max})`;
    default:
      return activation.kind;
  }
}

/**
 * The scalar activation of one unit: its kind with PReLU resolved to the unit's channel slope.
 * `unit` is the flat index in a tensor of `shape` (channels first).
 */
export type ScalarActivation = { kind: 'relu' } | { kind: 'leakyrelu'; alpha: number } | { kind: 'clip'; min: number; max: number } | { kind: 'sigmoid' } | { kind: 'tanh' };

/** For each unit of a tensor of `shape`, its scalar activation (one object per channel for PReLU). */
export function scalarActivations(activation: AnyActivation, shape: Shape): (unit: number) => ScalarActivation {
  if (activation.kind !== 'prelu') return () => activation;
  const alpha = activation.alpha;
  const perChannel = size(shape) / shape[0];
  const byChannel: ScalarActivation[] = Array.from({ length: shape[0] }, (_, c) => ({ kind: 'leakyrelu', alpha: alpha[alpha.length === 1 ? 0 : c] }));
  return (unit) => byChannel[Math.floor(unit / perChannel)];
}

export function sigmoid(y: number): number {
  return y >= 0 ? 1 / (1 + Math.exp(-y)) : Math.exp(y) / (1 + Math.exp(y));
}

/** σ(y) of one unit, in float64. */
export function applyScalar(a: ScalarActivation, y: number): number {
  switch (a.kind) {
    case 'relu':
      return y > 0 ? y : 0;
    case 'leakyrelu':
      return y >= 0 ? y : a.alpha * y;
    case 'clip':
      return y < a.min ? a.min : y > a.max ? a.max : y;
    case 'sigmoid':
      return sigmoid(y);
    case 'tanh':
      return Math.tanh(y);
  }
}

/** σ'(y) of one unit (at a kink: the right derivative, except ReLU and Clip, whose derivative there is taken as 0). */
export function derivativeScalar(a: ScalarActivation, y: number): number {
  switch (a.kind) {
    case 'relu':
      return y > 0 ? 1 : 0;
    case 'leakyrelu':
      return y >= 0 ? 1 : a.alpha;
    case 'clip':
      return y > a.min && y < a.max ? 1 : 0;
    case 'sigmoid': {
      const s = sigmoid(y);
      return s * (1 - s);
    }
    case 'tanh': {
      const t = Math.tanh(y);
      return 1 - t * t;
    }
  }
}

/** σ applied to every unit of `y` (a tensor of `shape`), in float32: a new array. */
export function activate(activation: AnyActivation, y: Float32Array, shape: Shape): Float32Array {
  if (activation.kind === 'relu') return y.map((v) => (v > 0 ? v : 0));
  const unit = scalarActivations(activation, shape);
  return y.map((v, i) => applyScalar(unit(i), v));
}

/** σ applied to every unit of `y`, in float64: a new array. */
export function activate64(activation: AnyActivation, y: Float64Array, shape: Shape): Float64Array {
  const unit = scalarActivations(activation, shape);
  return y.map((v, i) => applyScalar(unit(i), v));
}

/** g ⊙ σ'(y): a gradient through the activation at pre-activation y. */
export function activationVjp(activation: AnyActivation, y: ArrayLike<number>, g: Float32Array, shape: Shape): Float32Array {
  if (activation.kind === 'relu') return g.map((v, i) => (y[i] > 0 ? v : 0));
  const unit = scalarActivations(activation, shape);
  return g.map((v, i) => v * derivativeScalar(unit(i), y[i]));
}

/** sup |σ'| over the real line: the activation's global Lipschitz constant. */
export function globalSlope(activation: AnyActivation): number {
  switch (activation.kind) {
    case 'relu':
    case 'tanh':
      return 1;
    case 'clip':
      return activation.max > activation.min ? 1 : 0;
    case 'sigmoid':
      return 0.25;
    case 'leakyrelu':
      return Math.max(1, Math.abs(activation.alpha));
    case 'prelu':
      return Math.max(1, ...Array.from(activation.alpha, Math.abs));
  }
}
