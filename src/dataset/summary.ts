/**
 * Certified accuracy of a test set from its per-image records (pure functions, no I/O): the
 * fraction of ALL images that are classified correctly and certified at radius r.
 *
 * The curve lists the step function exactly: a point at radius 0 (the clean accuracy: every correct
 * image counts) and one point at each distinct positive certified radius r_j, in increasing order,
 * with the fraction of images whose radius is ≥ r_j. An image is certified at r when r ≤ its radius
 * (Proposition 6 certifies the closed ball of that radius). For any r between two listed radii,
 * r_{j−1} < r ≤ r_j, the certified accuracy is that of r_j; beyond the last listed radius it is 0.
 * Misclassified images have radius 0 and count at no radius.
 */
import type { BoundQuality } from '../bounds/types.js';
import type { ImageRecord } from './certify-image.js';

export interface AccuracyPoint {
  radius: number;
  accuracy: number;
}

export interface DatasetSummary {
  count: number;
  correct: number;
  /** Fraction of the images classified correctly. */
  accuracy: number;
  /** The step function above; null when some correctly classified image has no radius (not asked for). */
  certifiedAccuracy: AccuracyPoint[] | null;
  /** Median radius over all images (misclassified ones count as 0); null without radii. */
  medianRadius: number | null;
  /** Median radius over the correctly classified images; null without radii or correct images. */
  medianRadiusCorrect: number | null;
  /**
   * The weakest quality among the positive radii: 'upper' when every one is certified, 'estimate'
   * when any comes from spectral norm estimates; null when no image has a positive radius.
   */
  radiusQuality: BoundQuality | null;
  /**
   * Sum over images of each radius certificate's failure probability: it bounds the expected number
   * of images wrongly counted as certified (and, when below 1, the probability that any is).
   * 0 for deterministic certificates; null when any radius is an estimate or none was computed.
   */
  failureProbabilityTotal: number | null;
}

const correctOf = (r: ImageRecord) => r.predictedClass === r.label;

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The certified-accuracy step function (see the header); null when a correct image has no radius. */
export function certifiedAccuracyCurve(records: readonly ImageRecord[]): AccuracyPoint[] | null {
  if (records.some((r) => correctOf(r) && r.radius === null)) return null;
  const count = records.length;
  const correct = records.filter(correctOf).length;
  // Positive radii belong to correctly classified images only (imageRecord sets 0 for the others).
  const radii = records.filter((r) => correctOf(r) && (r.radius ?? 0) > 0).map((r) => r.radius as number).sort((a, b) => a - b);
  const curve: AccuracyPoint[] = [{ radius: 0, accuracy: count ? correct / count : 0 }];
  for (let i = 0; i < radii.length; i++) {
    if (i > 0 && radii[i] === radii[i - 1]) continue;
    curve.push({ radius: radii[i], accuracy: (radii.length - i) / count }); // radii[i..] are ≥ radii[i]
  }
  return curve;
}

/** Certified accuracy at radius r read off the curve (0 beyond its last point). */
export function certifiedAccuracyAt(curve: readonly AccuracyPoint[], r: number): number {
  if (r <= 0) return curve[0]?.accuracy ?? 0;
  return curve.find((p) => p.radius >= r)?.accuracy ?? 0;
}

export function summarise(records: readonly ImageRecord[]): DatasetSummary {
  const count = records.length;
  const correct = records.filter(correctOf).length;
  const curve = certifiedAccuracyCurve(records);
  const positive = records.filter((r) => correctOf(r) && (r.radius ?? 0) > 0);
  const radiusQuality: BoundQuality | null = positive.length === 0 ? null : positive.some((r) => r.quality === 'estimate') ? 'estimate' : 'upper';
  return {
    count,
    correct,
    accuracy: count ? correct / count : 0,
    certifiedAccuracy: curve,
    medianRadius: curve ? median(records.map((r) => (correctOf(r) ? (r.radius as number) : 0))) : null,
    medianRadiusCorrect: curve ? median(records.filter(correctOf).map((r) => r.radius as number)) : null,
    radiusQuality,
    failureProbabilityTotal: curve && radiusQuality !== 'estimate' && positive.length > 0 ? positive.reduce((a, r) => a + (r.failureProbability ?? 0), 0) : null,
  };
}
