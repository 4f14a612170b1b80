/**
 * Layer norms ||Λ A D|| as every bound method asks for them: the `NormSolver` interface (the
 * estimating Lanczos solver of layer-bounds.ts, or the certifying one of certificates.ts) and the
 * closed forms that need no solver — a diagonal layer's norm is its largest |scale|·λ on D, and a
 * layer whose slopes or inputs are all zero has norm 0.
 */
import { LipcertError } from '../errors.js';
import { type AffineLayer, size } from '../model/ir.js';
import type { BoundQuality, SpectralNormReport } from './types.js';

/**
 * How precisely a certified norm is wanted: 'full' for the factors of a reported bound, 'coarse'
 * for norms whose few percent change the reported numbers little (the global bound's factors, the
 * tight method's correction spreads). Estimates ignore it; certificates are valid either way.
 */
export type NormPrecision = 'full' | 'coarse';

/** A source of ||Λ A D|| for one affine layer: estimates from below, or certified upper bounds. */
export interface NormSolver {
  /** Relative tolerance of its estimates (certificates report theirs in the result). */
  readonly tolerance: number;
  /**
   * ||Λ A D|| with D = domainMask and Λ² = slopeSquared (null: identity). `key` names the
   * quantity across calls (a solver may reuse work for the same key, never the result itself).
   */
  norm(key: string, layerIndex: number, layer: AffineLayer, domainMask: Float32Array | null, slopeSquared: Float32Array | null, precision?: NormPrecision): Promise<SpectralNormReport>;
  dispose(): void;
}

export function exactSpectral(value: number): SpectralNormReport {
  return { value, quality: 'exact', iterations: 0, relativeChange: 0, relativeResidual: 0, converged: true };
}

/** ||Λ S D|| of a diagonal layer: max_i λ_i |s_i| d_i, exactly. */
function diagonalNorm(layer: AffineLayer & { kind: 'scale' }, mask: Float32Array | null, slopeSquared: Float32Array | null): number {
  const n = size(layer.inputShape);
  const perChannel = n / layer.scale.length;
  let best = 0;
  for (let i = 0; i < n; i++) {
    if (mask && mask[i] === 0) continue;
    const s = Math.abs(layer.scale[Math.floor(i / perChannel)]);
    const lambda = slopeSquared ? Math.sqrt(slopeSquared[i]) : 1;
    best = Math.max(best, s * lambda);
  }
  return best;
}

/** ||Λ A D||: in closed form where one exists, else from the solver. */
export function affineNorm(
  solver: NormSolver,
  key: string,
  index: number,
  layer: AffineLayer,
  mask: Float32Array | null,
  slopeSquared: Float32Array | null,
  precision: NormPrecision = 'full',
): Promise<SpectralNormReport> {
  if (layer.kind === 'scale') return Promise.resolve(exactSpectral(diagonalNorm(layer, mask, slopeSquared)));
  if (slopeSquared && slopeSquared.every((v) => v === 0)) return Promise.resolve(exactSpectral(0));
  if (mask && mask.every((v) => v === 0)) return Promise.resolve(exactSpectral(0));
  return solver.norm(key, index, layer, mask, slopeSquared, precision);
}

/** The quality of a product: the worst of its factors' ('estimate' < 'upper' < 'exact'). */
export function worstQuality(qualities: Iterable<BoundQuality>): BoundQuality {
  let worst: BoundQuality = 'exact';
  for (const q of qualities) {
    if (q === 'estimate') return 'estimate';
    if (q === 'upper') worst = 'upper';
  }
  return worst;
}

/**
 * Stops a norm computation whose arithmetic left the finite range (float32 operators overflow near
 * 3.4e38): a NaN or infinity must never become a bound, least of all a 0 that reads as certified.
 */
export function requireFinite(value: number, what: string): number {
  if (!Number.isFinite(value)) {
    throw new LipcertError('NUMERIC_OVERFLOW', `the computation left the range of floating point (${what} in a spectral norm, float32): use a smaller eps, or a model with smaller weights`);
  }
  return value;
}
