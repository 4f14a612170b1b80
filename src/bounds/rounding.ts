/**
 * The margins of the exact network (the same float32 weights and input, exact arithmetic) at x0,
 * bounded below, so that a certified radius never rests on a margin that rounding could erase
 * (docs/soundness.md §3). The logits come from a float64 pass (model/forward64.ts) with an
 * a-priori entrywise bound on its rounding: the standard model gives, for a sum of n products in
 * any order, |fl(wᵀx + b) − (wᵀx + b)| ≤ γ_{n+1}(|w|ᵀ|x| + |b|), γ_k = k·u/(1 − k·u), u = 2⁻⁵³
 * (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., §3.1, Lemma 3.4); an error e
 * in a layer's input adds |A|e; a ReLU is 1-Lipschitz (and zeroes the error of a unit that is ≤ 0
 * both ways), as is max pooling entrywise. For deep networks, where |A| amplifies errors far more
 * than A, the layers' Lipschitz bounds carry each layer's own rounding to the logits instead. A
 * margin the bounds do not resolve certifies nothing.
 */
import type { Backend } from '../backend/backend.js';
import { activationOf, type AnyActivation, applyScalar, scalarActivations } from '../model/activations.js';
import { forward64 } from '../model/forward64.js';
import { type AffineLayer, inputsOf, isAffine, type Network, size, stack } from '../model/ir.js';
import { slopeBound } from './activation-slopes.js';
import { absoluteLayer } from './certificates.js';
import { downstreamGains } from './graph-recursion.js';

/** Unit roundoff of float32 and float64. */
export const FLOAT32_ROUNDOFF = 2 ** -24;
export const FLOAT64_ROUNDOFF = 2 ** -53;
/** Smallest normal float32: flushing a subnormal to zero changes a result by less than this. */
const FLUSH = 2 ** -126;

function gamma(k: number, u: number): number {
  const ku = k * u;
  return ku < 0.5 ? ku / (1 - ku) : Infinity;
}

/** Terms per output of a layer: the dot-product length its rounding bound counts. */
function fanIn(layer: AffineLayer): number {
  switch (layer.kind) {
    case 'conv':
      return (layer.inputShape[0] / layer.group) * layer.kernel[0] * layer.kernel[1];
    case 'dense':
      return layer.inputShape[0];
    case 'avgpool':
      return layer.kernel[0] * layer.kernel[1] + 1; // the sum, then the division
    case 'scale':
      return 1;
  }
}

/** |b| of an affine layer, per output entry (zeros for average pooling). */
function absoluteBias(layer: AffineLayer, outputs: number): Float64Array {
  const out = new Float64Array(outputs);
  const per = (values: Float32Array) => {
    const spatial = outputs / values.length;
    for (let i = 0; i < outputs; i++) out[i] = Math.abs(values[Math.floor(i / spatial)]);
  };
  if (layer.kind === 'conv' || layer.kind === 'dense') per(layer.bias);
  else if (layer.kind === 'scale') per(layer.shift);
  return out;
}

/** float32 copy of nonnegative values, rounded up (so nothing shrinks in the conversion). */
function roundedUp(values: Float64Array): Float32Array {
  return Float32Array.from(values, (v) => {
    const f = Math.fround(v);
    return f < v ? f * (1 + 2 ** -23) + FLUSH : f;
  });
}

/** What a forward pass computed: each layer's input and each affine or Add layer's pre-activation. */
export interface ComputedPass {
  /** For an Add, its inputs stacked (as NominalPass and Forward64 hold them). */
  inputs: ArrayLike<number>[];
  preActivations: (ArrayLike<number> | null)[];
}

export interface RoundingBound {
  /** Entrywise bound on |computed − exact| of each logit (errors propagated through |A|). */
  logits: Float64Array;
  /**
   * Per layer, a bound on the 2-norm of the rounding that layer itself adds to its output
   * (the computed output minus the exact layer applied to the computed input); 0 for layers that
   * compute exactly (max pooling, flatten, ReLU, Concat).
   */
  local: number[];
}

/**
 * Relative error of one evaluation of a smooth activation (sigmoid, tanh) in units of the pass's
 * roundoff: Math.exp and Math.tanh are within 1 ulp on V8 (fdlibm), plus an add, a division and the
 * store; 8 leaves room.
 */
const SMOOTH_EVALUATION_ULPS = 8;

/**
 * Through an activation: the computed output σ(ŷ) (ŷ the computed pre-activation, e_i a bound on
 * |ŷ_i − y_i| for the exact y) differs from the exact σ(y) by at most λ_i·e_i plus the rounding of
 * evaluating σ, with λ_i the difference-quotient bound over [ŷ_i − e_i, ŷ_i + e_i]
 * (activation-slopes.ts). ReLU keeps its rule: 0 where ŷ + e ≤ 0 (both outputs are 0), else e.
 * Returns the propagated error and the activation's own rounding (to add to the layer's local part).
 */
function throughActivation(activation: AnyActivation, shape: number[], y: ArrayLike<number>, e: Float64Array, roundoff: number): { error: Float64Array; own: Float64Array } {
  const own = new Float64Array(e.length);
  if (activation.kind === 'relu') return { error: e.map((v, i) => (y[i] + v <= 0 ? 0 : v)), own };
  const unit = scalarActivations(activation, shape);
  const error = new Float64Array(e.length);
  for (let i = 0; i < e.length; i++) {
    const a = unit(i);
    const lambda = e[i] === 0 ? 0 : slopeBound(a, y[i], y[i] - e[i], y[i] + e[i]);
    const value = Math.abs(applyScalar(a, y[i]));
    // LeakyReLU/PReLU: one product α·y, rounded once; Clip: exact; sigmoid, tanh: see above.
    own[i] = a.kind === 'leakyrelu' ? roundoff * value + FLUSH : a.kind === 'sigmoid' || a.kind === 'tanh' ? SMOOTH_EVALUATION_ULPS * roundoff * value + FLUSH : 0;
    error[i] = lambda * e[i] + own[i];
  }
  return { error, own };
}

/**
 * Bounds on |computed − exact| for the pass `pass`, computed in a precision of unit roundoff
 * `roundoff` (2⁻⁵³ for forward64, 2⁻²⁴ for a float32 pass), the network input taken as exact.
 * Per affine layer, two applications of |A| on the backend (float32, rounded up). Over a DAG: an
 * Add's error is the sum of its inputs' plus its own rounding (γ_{k−1}·Σ_j |x̂_j| for k inputs), a
 * Concat's the stacked errors.
 */
export async function roundingErrorBound(network: Network, backend: Backend, pass: ComputedPass, roundoff: number): Promise<RoundingBound> {
  const inputError = new Float64Array(size(network.inputShape));
  const errors: (Float64Array | null)[] = [];
  const local: number[] = [];
  const lastReader = lastReaders(network);
  const errorOf = (j: number) => (j < 0 ? inputError : errors[j]!);
  const absolute = async (layer: AffineLayer, v: Float64Array) => {
    const applied = await backend.applyA(absoluteLayer(layer), roundedUp(v));
    // A float32 sum of nonnegative terms: exact ≤ computed/(1 − γ_n).
    const inflate = 1 / (1 - 2 * gamma(fanIn(layer), FLOAT32_ROUNDOFF));
    return Float64Array.from(applied, (a) => a * inflate);
  };
  for (const [index, layer] of network.layers.entries()) {
    const from = inputsOf(network, index);
    const x = pass.inputs[index];
    const activation = activationOf(layer);
    let error: Float64Array;
    let ownNorm = 0;
    if (isAffine(layer) || layer.kind === 'add') {
      let own: Float64Array;
      let propagated: Float64Array;
      if (layer.kind === 'add') {
        // k float additions: |fl(Σ) − Σ| ≤ γ_{k−1} Σ_j |x̂_j| (Higham, Lemma 3.4).
        const n = size(layer.outputShape);
        const g = gamma(from.length - 1, roundoff);
        own = new Float64Array(n);
        propagated = new Float64Array(n);
        from.forEach((j, k) => {
          const e = errorOf(j);
          for (let i = 0; i < n; i++) {
            own[i] += Math.abs(x[k * n + i]);
            propagated[i] += e[i];
          }
        });
        for (let i = 0; i < n; i++) own[i] = g * own[i] + from.length * FLUSH;
      } else {
        const n = fanIn(layer);
        const g = gamma(n + 1, roundoff);
        // This layer's own rounding: γ(|A||x̂| + |b|), plus subnormals flushed.
        own = await absolute(layer, Float64Array.from(x, Math.abs));
        const bias = absoluteBias(layer, own.length);
        for (let i = 0; i < own.length; i++) own[i] = g * (own[i] + bias[i]) + (n + 1) * FLUSH;
        propagated = await absolute(layer, errorOf(from[0]));
      }
      const y = pass.preActivations[index]!;
      const pre = own.map((v, i) => v + propagated[i]);
      if (!activation || activation.kind === 'relu') {
        ownNorm = norm2(own);
        error = activation ? throughActivation(activation, layer.outputShape, y, pre, roundoff).error : pre;
      } else {
        // The layer's own part: its rounding carried through σ, plus σ's own evaluation.
        const ownThrough = throughActivation(activation, layer.outputShape, y, own, roundoff).error;
        ownNorm = norm2(ownThrough);
        error = throughActivation(activation, layer.outputShape, y, pre, roundoff).error;
      }
    } else if (layer.kind === 'maxpool') {
      // |max(a) − max(b)| ≤ max_i |a_i − b_i| over each window.
      error = Float64Array.from(await backend.maxPool(layer, roundedUp(errorOf(from[0]))));
    } else if (layer.kind === 'concat') {
      error = stack(from.map(errorOf), (n) => new Float64Array(n));
    } else if (activation && activation.kind !== 'relu') {
      const through = throughActivation(activation, layer.outputShape, x, errorOf(from[0]), roundoff);
      ownNorm = norm2(through.own);
      error = through.error;
    } else {
      error = errorOf(from[0]); // flatten and a lone ReLU pass it on
    }
    local.push(ownNorm);
    errors.push(error);
    // Errors no later layer reads are dropped (deep networks keep few alive).
    for (const j of from) if (j >= 0 && lastReader[j] === index) errors[j] = null;
  }
  return { logits: errors.at(-1) ?? inputError, local };
}

/**
 * The 2-norm of a vector: Math.hypot over its entries (as before for every size that fits an
 * argument list), and for longer vectors a sum of squares scaled by the largest entry (ImageNet
 * activations have millions of entries; spreading them would overflow the stack).
 */
function norm2(v: Float64Array): number {
  if (v.length <= 1 << 15) return Math.hypot(...v);
  let max = 0;
  for (let i = 0; i < v.length; i++) max = Math.max(max, Math.abs(v[i]));
  if (max === 0 || !Number.isFinite(max)) return max;
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += (v[i] / max) ** 2;
  return max * Math.sqrt(sum) * (1 + v.length * FLOAT64_ROUNDOFF); // the sum's rounding, upwards
}

/** For each layer, the last layer that reads its output (its own index if none does). */
function lastReaders(network: Network): number[] {
  const last = network.layers.map((_, i) => i);
  network.layers.forEach((_, i) => {
    for (const j of inputsOf(network, i)) if (j >= 0) last[j] = Math.max(last[j], i);
  });
  return last;
}

export interface MarginCertificate {
  /** Lower bounds of the exact y_c − y_j at x0 (+Infinity at j = c); all > 0 iff c is certainly the exact top-1. */
  gaps: number[];
  /** The float64 logits the gaps come from. */
  logits: Float64Array;
  /** Per class j ≠ c, the bound on the rounding of y_c − y_j that was taken off. */
  gapError: number[];
}

/**
 * The exact network's gaps to class `cls` at x0, bounded below, from a float64 pass (forward64)
 * and two bounds of its rounding, whichever is smaller per gap:
 * - entrywise: |e_c| + |e_j| with e propagated through |A| (tight for shallow networks);
 * - through the layers' Lipschitz bounds `layerBounds` (e.g. the global bound's factors, when
 *   given): the exact network maps the computed layer-m output's own rounding s_m to a logit
 *   change of at most ||s_m||·Π_{k>m} L_k, so ||e|| ≤ Σ_m ||s_m|| Π_{k>m} L_k and
 *   |e_c − e_j| ≤ √2·||e|| (tight for deep networks, where |A| amplifies far more than A).
 * The second is as certain as `layerBounds` are (upper bounds, or estimates in estimate mode).
 */
export async function certifyMargins(network: Network, backend: Backend, x0: Float32Array, cls: number, layerBounds?: number[]): Promise<MarginCertificate> {
  const pass = forward64(network, x0);
  const gapError = gapRoundingErrors(network, await roundingErrorBound(network, backend, pass, FLOAT64_ROUNDOFF), cls, layerBounds);
  const gaps = gapError.map((e, j) => (j === cls ? Infinity : pass.logits[cls] - pass.logits[j] - e));
  return { gaps, logits: pass.logits, gapError };
}

/** Per class j, the smaller of the two bounds on the rounding of y_c − y_j (see certifyMargins); 0 at j = c. */
export function gapRoundingErrors(network: Network, bound: RoundingBound, cls: number, layerBounds?: number[]): number[] {
  let throughLayers = Infinity;
  if (layerBounds) {
    // Each layer's own rounding, carried to the output by the bound from its output onwards (the
    // product of the later factors on a chain; the DAG recursion otherwise: docs/graphs.md §4).
    const downstream = downstreamGains(network, layerBounds);
    throughLayers = 0;
    for (let m = 0; m < bound.local.length; m++) throughLayers += bound.local[m] * downstream[m];
    throughLayers *= Math.SQRT2;
  }
  return Array.from(bound.logits, (e, j) => (j === cls ? 0 : Math.min(bound.logits[cls] + e, throughLayers)));
}
