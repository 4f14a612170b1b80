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
import { forward64 } from '../model/forward64.js';
import { type AffineLayer, isAffine, type Network } from '../model/ir.js';
import { absoluteLayer } from './certificates.js';

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

/** What a forward pass computed: each layer's input and each affine layer's pre-activation. */
export interface ComputedPass {
  inputs: ArrayLike<number>[];
  preActivations: (ArrayLike<number> | null)[];
}

export interface RoundingBound {
  /** Entrywise bound on |computed − exact| of each logit (errors propagated through |A|). */
  logits: Float64Array;
  /**
   * Per layer, a bound on the 2-norm of the rounding that layer itself adds to its output
   * (the computed output minus the exact layer applied to the computed input); 0 for layers that
   * compute exactly (max pooling, flatten, ReLU).
   */
  local: number[];
}

/**
 * Bounds on |computed − exact| for the pass `pass`, computed in a precision of unit roundoff
 * `roundoff` (2⁻⁵³ for forward64, 2⁻²⁴ for a float32 pass), the network input taken as exact.
 * Per affine layer, two applications of |A| on the backend (float32, rounded up).
 */
export async function roundingErrorBound(network: Network, backend: Backend, pass: ComputedPass, roundoff: number): Promise<RoundingBound> {
  let error = new Float64Array(pass.inputs[0].length);
  const local: number[] = [];
  const absolute = async (layer: AffineLayer, v: Float64Array) => {
    const applied = await backend.applyA(absoluteLayer(layer), roundedUp(v));
    // A float32 sum of nonnegative terms: exact ≤ computed/(1 − γ_n).
    const inflate = 1 / (1 - 2 * gamma(fanIn(layer), FLOAT32_ROUNDOFF));
    return Float64Array.from(applied, (a) => a * inflate);
  };
  for (const [index, layer] of network.layers.entries()) {
    const x = pass.inputs[index];
    if (isAffine(layer)) {
      const n = fanIn(layer);
      const g = gamma(n + 1, roundoff);
      // This layer's own rounding: γ(|A||x̂| + |b|), plus subnormals flushed.
      const own = await absolute(layer, Float64Array.from(x, Math.abs));
      const bias = absoluteBias(layer, own.length);
      for (let i = 0; i < own.length; i++) own[i] = g * (own[i] + bias[i]) + (n + 1) * FLUSH;
      local.push(Math.hypot(...own));
      const propagated = await absolute(layer, error);
      const y = pass.preActivations[index]!;
      const next = new Float64Array(own.length);
      for (let i = 0; i < own.length; i++) {
        const e = own[i] + propagated[i];
        // Through a ReLU: a unit whose computed and exact pre-activations are both ≤ 0 outputs 0
        // in both; otherwise the ReLU is 1-Lipschitz.
        next[i] = layer.relu && y[i] + e <= 0 ? 0 : e;
      }
      error = next;
    } else {
      local.push(0);
      // |max(a) − max(b)| ≤ max_i |a_i − b_i| over each window; flatten and ReLU pass it on.
      if (layer.kind === 'maxpool') error = Float64Array.from(await backend.maxPool(layer, roundedUp(error)));
    }
  }
  return { logits: error, local };
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
  const gapError = gapRoundingErrors(await roundingErrorBound(network, backend, pass, FLOAT64_ROUNDOFF), cls, layerBounds);
  const gaps = gapError.map((e, j) => (j === cls ? Infinity : pass.logits[cls] - pass.logits[j] - e));
  return { gaps, logits: pass.logits, gapError };
}

/** Per class j, the smaller of the two bounds on the rounding of y_c − y_j (see certifyMargins); 0 at j = c. */
export function gapRoundingErrors(bound: RoundingBound, cls: number, layerBounds?: number[]): number[] {
  let throughLayers = Infinity;
  if (layerBounds) {
    throughLayers = 0;
    for (let m = 0; m < bound.local.length; m++) {
      let downstream = 1;
      for (let k = m + 1; k < bound.local.length; k++) downstream *= layerBounds[k];
      throughLayers += bound.local[m] * downstream;
    }
    throughLayers *= Math.SQRT2;
  }
  return Array.from(bound.logits, (e, j) => (j === cls ? 0 : Math.min(bound.logits[cls] + e, throughLayers)));
}
