/**
 * The per-layer bounds of Avant & Morgansen and the network bounds built from them:
 * - affine-ReLU layer: L ≤ ||Λ A D|| with the slopes λ of Theorem 1 and the bound of Theorem 2;
 * - affine layer without ReLU: ||A D||;
 * - max pool: sqrt(n_max) (Theorem 3, Proposition 5); flatten and lone ReLU: 1;
 * - network: L(x0, ε) ≤ Π_l L_l (Proposition 3) with ε_{l+1} = L_l ε_l (Proposition 2).
 * Beyond the paper (docs/graphs.md): other monotone activations (λ from activation-slopes.ts, the
 * same Theorem 2), lone activations and activations after a sum (λ per unit from the entry's range),
 * and networks that are DAGs: each layer's radius and mask come from the layers it reads (Add: sum
 * of radii, AND of masks; Concat: root-sum-of-squares, masks stacked), and the network's bound is
 * the recursion of graph-recursion.ts, which is the product on a chain.
 */
import type { Backend, DeviceVector } from '../backend/backend.js';
import { invariant } from '../errors.js';
import { activationName, activationOf, type AnyActivation, globalSlope, scalarActivations } from '../model/activations.js';
import { type AffineLayer, inputsOf, isActivated, isAffine, type Layer, type MaxPoolLayer, type Network, size } from '../model/ir.js';
import { constantOver, slopeBound } from './activation-slopes.js';
import { combineRadii, networkGain } from './graph-recursion.js';
import type { NominalPass } from './nominal.js';
import { largestEigenvalue } from './spectral.js';
import { affineNorm, type NormSolver, worstQuality } from './norms.js';
import type { LayerBound, NetworkBound, SpectralNormReport } from './types.js';

export interface SpectralSettings {
  tolerance: number;
  maxIterations: number;
  signal?: AbortSignal;
  onIteration?: (layer: number, iteration: number) => void;
}

export { type NominalPass, nominalPass, relu } from './nominal.js';

/** Most windows of a pooling layer that any one input entry belongs to, per axis, multiplied. */
export function maxPoolOverlap(layer: MaxPoolLayer): number {
  const [, h, w] = layer.inputShape;
  const [, ho, wo] = layer.outputShape;
  const perAxis = (n: number, out: number, k: number, s: number, d: number, pad: number) => {
    const counts = new Array(n).fill(0);
    for (let o = 0; o < out; o++) {
      for (let j = 0; j < k; j++) {
        const p = o * s - pad + j * d;
        if (p >= 0 && p < n) counts[p]++;
      }
    }
    return Math.max(1, ...counts);
  };
  return (
    perAxis(h, ho, layer.kernel[0], layer.strides[0], layer.dilations[0], layer.pads[0]) *
    perAxis(w, wo, layer.kernel[1], layer.strides[1], layer.dilations[1], layer.pads[1])
  );
}

/** Theorem 3 / Proposition 5: a max pool is sqrt(n_max)-Lipschitz in the 2-norm. */
export function maxPoolLipschitz(layer: MaxPoolLayer): number {
  return Math.sqrt(maxPoolOverlap(layer));
}

/**
 * Spectral norms with warm starts: the last Ritz vector of each layer seeds its next iteration
 * (the next ε, the next bisection step).
 */
export class SpectralSolver implements NormSolver {
  constructor(
    private readonly backend: Backend,
    private readonly settings: SpectralSettings,
    private readonly warmStarts = new Map<string, DeviceVector>(),
  ) {}

  /** This solver at another tolerance, sharing its warm starts (disposing either frees them). */
  withTolerance(tolerance: number): SpectralSolver {
    return new SpectralSolver(this.backend, { ...this.settings, tolerance }, this.warmStarts);
  }

  get tolerance(): number {
    return this.settings.tolerance;
  }

  /**
   * Use `vector` (taken over) as the warm start of `key`'s next estimate, in place of the last
   * one: e.g. the top Ritz vector of a certificate of the same norm at a nearby ε. Like every warm
   * start it is mixed with the random start and only speeds convergence up.
   */
  seed(key: string, vector: DeviceVector): void {
    const previous = this.warmStarts.get(key);
    if (previous) this.backend.vectors.free(previous);
    this.warmStarts.set(key, vector);
  }

  /** ||Λ A D||, where D = domainMask and Λ² = slopeSquared (null: identity). */
  async norm(key: string, layerIndex: number, layer: AffineLayer, domainMask: Float32Array | null, slopeSquared: Float32Array | null): Promise<SpectralNormReport> {
    const op = await this.backend.gramOperator(layer, domainMask, slopeSquared);
    try {
      const result = await largestEigenvalue(op, this.backend.vectors, {
        tolerance: this.settings.tolerance,
        maxIterations: this.settings.maxIterations,
        start: this.warmStarts.get(key),
        seed: layerIndex + 1,
        signal: this.settings.signal,
        onIteration: (it) => this.settings.onIteration?.(layerIndex, it),
      });
      this.seed(key, result.vector);
      return {
        value: Math.sqrt(result.eigenvalue),
        quality: 'estimate',
        iterations: result.iterations,
        relativeChange: result.relativeChange,
        relativeResidual: result.relativeResidual,
        converged: result.converged,
      };
    } finally {
      op.dispose();
    }
  }

  dispose() {
    for (const v of this.warmStarts.values()) this.backend.vectors.free(v);
    this.warmStarts.clear();
  }
}

/** The fields of a layer's report that do not depend on the bound (kind, activation, inputs, shapes). */
export function baseReport(network: Network, index: number, layer: Layer): Omit<LayerBound, 'bound' | 'quality'> {
  const activation = activationOf(layer);
  return {
    index,
    kind: layer.kind,
    relu: isActivated(layer) ? layer.relu : layer.kind === 'relu',
    ...(activation && activation.kind !== 'relu' ? { activation: activationName(activation) } : {}),
    inputs: inputsOf(network, index),
    name: layer.name,
    inputShape: layer.inputShape,
    outputShape: layer.outputShape,
  };
}

/**
 * The global bound: ||A||·sup|σ'| per affine layer (sup|σ'| = 1 for ReLU), sup|σ'| per lone
 * activation and per Add's activation, 1 per flatten and Concat, sqrt(n_max) per max pool; combined
 * by the DAG recursion (the product on a chain).
 */
export async function globalBound(network: Network, solver: NormSolver, onLayer?: (index: number) => void): Promise<NetworkBound> {
  const start = performance.now();
  const layers: LayerBound[] = [];
  for (const [index, layer] of network.layers.entries()) {
    onLayer?.(index);
    const activation = activationOf(layer);
    // ReLU's factor is 1 and is left out, so chains keep their numbers to the last bit.
    const slope = activation && activation.kind !== 'relu' ? globalSlope(activation) : 1;
    const base = baseReport(network, index, layer);
    if (isAffine(layer)) {
      const spectral = await affineNorm(solver, `global:${index}`, index, layer, null, null, 'coarse');
      layers.push({ ...base, bound: slope === 1 ? spectral.value : slope * spectral.value, quality: spectral.quality, spectral });
    } else if (layer.kind === 'maxpool') {
      layers.push({ ...base, bound: maxPoolLipschitz(layer), quality: 'exact' });
    } else {
      layers.push({ ...base, bound: slope, quality: 'exact' });
    }
  }
  return {
    bound: networkGain(network, layers.map((l) => l.bound)),
    quality: worstQuality(layers.map((l) => l.quality)),
    layers,
    seconds: (performance.now() - start) / 1000,
  };
}

/** The mask of what a layer reads: its input's for one input; stacked for a Concat; for an Add, constant only where every input is. */
export function readMask(layer: Layer, masks: (Float32Array | null)[], sizes: number[]): Float32Array | null {
  if (masks.length === 1) return masks[0];
  if (masks.every((m) => m === null)) return null;
  if (layer.kind === 'concat') {
    const out = new Float32Array(sizes.reduce((a, b) => a + b, 0)).fill(1);
    let offset = 0;
    masks.forEach((m, k) => {
      if (m) out.set(m, offset);
      offset += sizes[k];
    });
    return out;
  }
  // Add: Σ_j x_j is constant where every x_j is (docs/graphs.md §2).
  if (masks.some((m) => m === null)) return null;
  const out = new Float32Array(sizes[0]);
  for (let i = 0; i < out.length; i++) out[i] = masks.some((m) => m![i] !== 0) ? 1 : 0;
  return out;
}

interface SlopeCounts {
  zero: number;
  partial: number;
  one: number;
}

function countSlope(counts: SlopeCounts, lambda: number) {
  if (lambda === 0) counts.zero++;
  else if (lambda >= 1) counts.one++;
  else counts.partial++;
}

/**
 * Theorem 1 generalised, per unit: λ_i over [y0_i − ρ_i, y0_i + ρ_i] (ρ_i bounds |y_i − y0_i| over
 * the set; ρ_i = 0: the unit is constant), and the next mask: 0 where the unit is constant.
 */
function unitSlopes(activation: AnyActivation, shape: number[], y0: ArrayLike<number>, radius: (i: number) => number) {
  const unit = scalarActivations(activation, shape);
  const lambda = new Float32Array(y0.length);
  const nextMask = new Float32Array(y0.length);
  const counts: SlopeCounts = { zero: 0, partial: 0, one: 0 };
  for (let i = 0; i < y0.length; i++) {
    const rho = radius(i);
    const lo = y0[i] - rho;
    const hi = y0[i] + rho;
    const a = unit(i);
    const constant = rho === 0 || constantOver(a, lo, hi);
    lambda[i] = constant ? 0 : slopeBound(a, y0[i], lo, hi);
    nextMask[i] = constant ? 0 : 1;
    countSlope(counts, lambda[i]);
  }
  return { lambda, nextMask, counts };
}

/**
 * The local bound L(x0, ε) of Algorithm 1, node by node over the DAG: each layer's input mask D
 * (entries known constant over the set) and radius ε_l come from the layers it reads; slopes Λ from
 * the pre-activation bounds ŷ = y0 + ε_l r; ε_out = L_l ε_l.
 */
export async function localBound(
  network: Network,
  backend: Backend,
  nominal: NominalPass,
  eps: number,
  solver: NormSolver,
  onLayer?: (index: number) => void,
): Promise<NetworkBound> {
  const start = performance.now();
  const layers: LayerBound[] = [];
  const masks: (Float32Array | null)[] = []; // each layer's output mask (null: nothing known constant)
  const radii: number[] = []; // each layer's output radius ε_out
  const maskOf = (j: number) => (j < 0 ? null : masks[j]);
  const radiusOf = (j: number) => (j < 0 ? eps : radii[j]);
  const sizeOf = (j: number) => size(j < 0 ? network.inputShape : network.layers[j].outputShape);
  for (const [index, layer] of network.layers.entries()) {
    onLayer?.(index);
    const from = inputsOf(network, index);
    const epsIn = combineRadii(layer, from.map(radiusOf));
    const mask = readMask(layer, from.map(maskOf), from.map(sizeOf)); // D_l
    const activeInputs = mask ? mask.reduce((a, v) => a + (v !== 0 ? 1 : 0), 0) : size(layer.inputShape);
    const base = { ...baseReport(network, index, layer), epsIn, activeInputs };
    const activation = activationOf(layer);
    let bound: number;
    let nextMask: Float32Array | null;
    if (isAffine(layer)) {
      const r2 = await backend.rowNormsSquared(layer, mask ?? new Float32Array(size(layer.inputShape)).fill(1));
      const y0 = nominal.preActivations[index];
      invariant(y0 && y0.length === r2.length, 'pre-activation and row norms disagree in size');
      if (layer.relu) {
        // Theorem 1: λ_i = 0 if ŷ_i ≤ 0 or r_i = 0; ŷ_i/(ŷ_i − y0_i) if y0_i ≤ 0 < ŷ_i; 1 if y0_i > 0.
        const slopeSquared = new Float32Array(r2.length);
        const reluMask = new Float32Array(r2.length);
        let zero = 0;
        let partial = 0;
        let one = 0;
        for (let i = 0; i < r2.length; i++) {
          const r = Math.sqrt(r2[i]);
          const yHat = y0[i] + epsIn * r;
          let lambda: number;
          if (yHat <= 0 || r === 0) lambda = 0; // inactive, or constant over the set
          else if (y0[i] <= 0) lambda = yHat / (yHat - y0[i]);
          else lambda = 1;
          if (lambda === 0) zero++;
          else if (lambda === 1) one++;
          else partial++;
          slopeSquared[i] = lambda * lambda;
          reluMask[i] = yHat > 0 ? 1 : 0;
        }
        const spectral = await affineNorm(solver, `local:${index}`, index, layer, mask, slopeSquared);
        layers.push({ ...base, bound: spectral.value, quality: spectral.quality, lambdaZero: zero, lambdaPartial: partial, lambdaOne: one, spectral });
        bound = spectral.value;
        nextMask = reluMask;
      } else if (activation) {
        // Theorem 1 generalised (activation-slopes.ts) with |y_i − y0_i| ≤ ε_l r_i, then Theorem 2.
        const { lambda, nextMask: activeMask, counts } = unitSlopes(activation, layer.outputShape, y0, (i) => epsIn * Math.sqrt(r2[i]));
        const spectral = await affineNorm(solver, `local:${index}`, index, layer, mask, lambda.map((l) => l * l));
        layers.push({ ...base, bound: spectral.value, quality: spectral.quality, lambdaZero: counts.zero, lambdaPartial: counts.partial, lambdaOne: counts.one, spectral });
        bound = spectral.value;
        nextMask = activeMask;
      } else {
        const spectral = await affineNorm(solver, `local:${index}`, index, layer, mask, null);
        layers.push({ ...base, bound: spectral.value, quality: spectral.quality, spectral });
        bound = spectral.value;
        // An average pool has no bias: an output is known zero iff its whole window is (r_i = 0).
        nextMask = layer.kind === 'avgpool' ? r2.map((v) => (v > 0 ? 1 : 0)) : null;
      }
    } else if (layer.kind === 'maxpool') {
      bound = maxPoolLipschitz(layer);
      layers.push({ ...base, bound, quality: 'exact' });
      nextMask = mask ? await backend.poolMask(layer, mask) : null;
    } else if ((layer.kind === 'add' && activation) || layer.kind === 'activation') {
      // A diagonal map: L = max_i λ_i, each unit's range from |x_i − x0_i| ≤ ‖x − x0‖. For an Add,
      // |y_i − y0_i| ≤ Σ_j |x_{j,i} − x0_{j,i}| ≤ Σ over the inputs not constant at i of ε_j.
      const y0 = layer.kind === 'add' ? nominal.preActivations[index] : nominal.inputs[index];
      invariant(y0 && y0.length === size(layer.outputShape), 'activation input missing from the nominal pass');
      const inputMasks = from.map(maskOf);
      const inputRadii = from.map(radiusOf);
      const radius =
        layer.kind === 'add'
          ? (i: number) => inputRadii.reduce((a, e, k) => a + (inputMasks[k] && inputMasks[k]![i] === 0 ? 0 : e), 0)
          : (i: number) => (mask && mask[i] === 0 ? 0 : epsIn);
      const { lambda, nextMask: activeMask, counts } = unitSlopes(activation!, layer.outputShape, y0, radius);
      bound = lambda.reduce((a, l) => Math.max(a, l), 0);
      layers.push({ ...base, bound, quality: 'exact', lambdaZero: counts.zero, lambdaPartial: counts.partial, lambdaOne: counts.one });
      nextMask = activeMask;
    } else {
      // Flatten (mask reshaped), a lone ReLU (mask passes: the paper's rule), Concat (masks
      // stacked), an Add without activation (constant where every input is).
      bound = 1;
      layers.push({ ...base, bound, quality: 'exact' });
      nextMask = mask;
    }
    masks.push(nextMask);
    radii.push(epsIn * bound);
  }
  return {
    bound: networkGain(network, layers.map((l) => l.bound)),
    quality: worstQuality(layers.map((l) => l.quality)),
    layers,
    seconds: (performance.now() - start) / 1000,
  };
}
