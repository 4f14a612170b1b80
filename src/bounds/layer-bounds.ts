/**
 * The per-layer bounds of Avant & Morgansen and the network products built from them:
 * - affine-ReLU layer: L ≤ ||Λ A D|| with the slopes λ of Theorem 1 and the bound of Theorem 2;
 * - affine layer without ReLU: ||A D||;
 * - max pool: sqrt(n_max) (Theorem 3, Proposition 5); flatten and lone ReLU: 1;
 * - network: L(x0, ε) ≤ Π_l L_l (Proposition 3) with ε_{l+1} = L_l ε_l (Proposition 2).
 */
import type { Backend, DeviceVector } from '../backend/backend.js';
import { invariant } from '../errors.js';
import { type AffineLayer, isAffine, type Layer, type MaxPoolLayer, type Network, size } from '../model/ir.js';
import { largestEigenvalue } from './spectral.js';
import { affineNorm, type NormSolver, worstQuality } from './norms.js';
import type { LayerBound, NetworkBound, SpectralNormReport } from './types.js';

export interface SpectralSettings {
  tolerance: number;
  maxIterations: number;
  signal?: AbortSignal;
  onIteration?: (layer: number, iteration: number) => void;
}

/** The nominal pass: each layer's input, and each affine layer's pre-activation y0 = A x0 + b. */
export interface NominalPass {
  inputs: Float32Array[];
  preActivations: (Float32Array | null)[];
  logits: Float32Array;
}

export function relu(x: Float32Array): Float32Array {
  return x.map((v) => (v > 0 ? v : 0));
}

export async function nominalPass(network: Network, backend: Backend, x0: Float32Array): Promise<NominalPass> {
  const inputs: Float32Array[] = [];
  const preActivations: (Float32Array | null)[] = [];
  let x = x0;
  for (const layer of network.layers) {
    inputs.push(x);
    if (isAffine(layer)) {
      const y = await backend.forward(layer, x);
      preActivations.push(y);
      x = layer.relu ? relu(y) : y;
    } else {
      preActivations.push(null);
      if (layer.kind === 'maxpool') x = await backend.maxPool(layer, x);
      else if (layer.kind === 'relu') x = relu(x);
    }
  }
  return { inputs, preActivations, logits: x };
}

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
      const previous = this.warmStarts.get(key);
      if (previous) this.backend.vectors.free(previous);
      this.warmStarts.set(key, result.vector);
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

function baseReport(index: number, layer: Layer): Omit<LayerBound, 'bound' | 'quality'> {
  return {
    index,
    kind: layer.kind,
    relu: isAffine(layer) ? layer.relu : layer.kind === 'relu',
    name: layer.name,
    inputShape: layer.inputShape,
    outputShape: layer.outputShape,
  };
}

/** The global bound: ||A|| per affine layer, 1 per ReLU and flatten, sqrt(n_max) per max pool. */
export async function globalBound(network: Network, solver: NormSolver, onLayer?: (index: number) => void): Promise<NetworkBound> {
  const start = performance.now();
  const layers: LayerBound[] = [];
  for (const [index, layer] of network.layers.entries()) {
    onLayer?.(index);
    if (isAffine(layer)) {
      const spectral = await affineNorm(solver, `global:${index}`, index, layer, null, null, 'coarse');
      layers.push({ ...baseReport(index, layer), bound: spectral.value, quality: spectral.quality, spectral });
    } else if (layer.kind === 'maxpool') {
      layers.push({ ...baseReport(index, layer), bound: maxPoolLipschitz(layer), quality: 'exact' });
    } else {
      layers.push({ ...baseReport(index, layer), bound: 1, quality: 'exact' });
    }
  }
  return {
    bound: layers.reduce((p, l) => p * l.bound, 1),
    quality: worstQuality(layers.map((l) => l.quality)),
    layers,
    seconds: (performance.now() - start) / 1000,
  };
}

/**
 * The local bound L(x0, ε) of Algorithm 1: layer by layer, the input mask D (known-inactive entries),
 * the slopes Λ from the pre-activation upper bounds ŷ = y0 + ε_l r, and ε_{l+1} = L_l ε_l.
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
  let mask: Float32Array | null = null; // D_1 = I
  let epsIn = eps;
  for (const [index, layer] of network.layers.entries()) {
    onLayer?.(index);
    const activeInputs = mask ? mask.reduce((a, v) => a + (v !== 0 ? 1 : 0), 0) : size(layer.inputShape);
    const base = { ...baseReport(index, layer), epsIn, activeInputs };
    let bound: number;
    if (isAffine(layer)) {
      const r2 = await backend.rowNormsSquared(layer, mask ?? new Float32Array(size(layer.inputShape)).fill(1));
      if (layer.relu) {
        const y0 = nominal.preActivations[index];
        invariant(y0 && y0.length === r2.length, 'pre-activation and row norms disagree in size');
        // Theorem 1: λ_i = 0 if ŷ_i ≤ 0 or r_i = 0; ŷ_i/(ŷ_i − y0_i) if y0_i ≤ 0 < ŷ_i; 1 if y0_i > 0.
        const slopeSquared = new Float32Array(r2.length);
        const nextMask = new Float32Array(r2.length);
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
          nextMask[i] = yHat > 0 ? 1 : 0;
        }
        const spectral = await affineNorm(solver, `local:${index}`, index, layer, mask, slopeSquared);
        layers.push({ ...base, bound: spectral.value, quality: spectral.quality, lambdaZero: zero, lambdaPartial: partial, lambdaOne: one, spectral });
        bound = spectral.value;
        mask = nextMask;
      } else {
        const spectral = await affineNorm(solver, `local:${index}`, index, layer, mask, null);
        layers.push({ ...base, bound: spectral.value, quality: spectral.quality, spectral });
        bound = spectral.value;
        // An average pool has no bias: an output is known zero iff its whole window is (r_i = 0).
        mask = layer.kind === 'avgpool' ? r2.map((v) => (v > 0 ? 1 : 0)) : null;
      }
    } else if (layer.kind === 'maxpool') {
      bound = maxPoolLipschitz(layer);
      layers.push({ ...base, bound, quality: 'exact' });
      mask = mask ? await backend.poolMask(layer, mask) : null;
    } else {
      bound = 1; // flatten (mask passes, reshaped) and a lone ReLU (mask passes)
      layers.push({ ...base, bound, quality: 'exact' });
    }
    epsIn *= bound;
  }
  return {
    bound: layers.reduce((p, l) => p * l.bound, 1),
    quality: worstQuality(layers.map((l) => l.quality)),
    layers,
    seconds: (performance.now() - start) / 1000,
  };
}
