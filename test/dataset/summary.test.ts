/**
 * The certified-accuracy step function and summary (src/dataset/summary.ts) on hand-made records,
 * against a direct count: the fraction of all images classified correctly with radius ≥ r.
 */
import { imageRecord, type ImageRecord } from '../../src/dataset/certify-image.js';
import { certifiedAccuracyAt, certifiedAccuracyCurve, summarise } from '../../src/dataset/summary.js';

const record = (index: number, label: number, predictedClass: number, radius: number | null, quality: ImageRecord['quality'] = 'upper', failureProbability?: number): ImageRecord => ({
  index,
  label,
  predictedClass,
  margin: 1,
  radius: predictedClass === label ? radius : 0,
  quality: predictedClass === label ? quality : 'exact',
  ...(failureProbability ? { failureProbability } : {}),
  local: [],
  seconds: 0.1,
});

// 8 images: 6 correct (radii 0.3, 0.1, 0.3, 0, 0.05, 0.2), 2 misclassified.
const RECORDS = [record(0, 1, 1, 0.3), record(1, 2, 2, 0.1), record(2, 0, 3, null), record(3, 4, 4, 0.3), record(4, 5, 5, 0), record(5, 6, 6, 0.05), record(6, 7, 2, null), record(7, 8, 8, 0.2)];
const direct = (r: number) => RECORDS.filter((x) => x.predictedClass === x.label && (x.radius as number) >= r).length / RECORDS.length;

describe('certified accuracy', () => {
  test('the curve: clean accuracy at 0, then each distinct radius once, increasing, non-increasing accuracy', () => {
    expect(certifiedAccuracyCurve(RECORDS)).toEqual([
      { radius: 0, accuracy: 6 / 8 },
      { radius: 0.05, accuracy: 5 / 8 },
      { radius: 0.1, accuracy: 4 / 8 },
      { radius: 0.2, accuracy: 3 / 8 },
      { radius: 0.3, accuracy: 2 / 8 },
    ]);
  });

  test('reading the curve at any radius equals counting the records directly', () => {
    const curve = certifiedAccuracyCurve(RECORDS)!;
    for (const r of [0, 1e-9, 0.01, 0.05, 0.0500001, 0.1, 0.15, 0.2, 0.25, 0.3, 0.30001, 5]) expect(certifiedAccuracyAt(curve, r)).toBeCloseTo(direct(r), 12);
  });

  test('the summary: accuracy, medians over all images (misclassified as 0) and over the correct ones', () => {
    const s = summarise(RECORDS);
    expect(s).toMatchObject({ count: 8, correct: 6, accuracy: 0.75, radiusQuality: 'upper', failureProbabilityTotal: 0 });
    expect(s.medianRadius).toBeCloseTo((0.05 + 0.1) / 2, 12); // sorted: 0 0 0 0.05 0.1 0.2 0.3 0.3
    expect(s.medianRadiusCorrect).toBeCloseTo((0.1 + 0.2) / 2, 12); // 0 0.05 0.1 0.2 0.3 0.3
  });

  test('what the radii are: estimates win over certificates; probabilistic failure probabilities add up', () => {
    expect(summarise([record(0, 1, 1, 0.1, 'upper', 0.002), record(1, 1, 1, 0.2, 'upper', 0.003)]).failureProbabilityTotal).toBeCloseTo(0.005, 12);
    const mixed = summarise([record(0, 1, 1, 0.1, 'upper', 0.002), record(1, 1, 1, 0.2, 'estimate')]);
    expect(mixed.radiusQuality).toBe('estimate');
    expect(mixed.failureProbabilityTotal).toBeNull();
  });

  test('without radii there is no curve, only accuracy', () => {
    const s = summarise([record(0, 1, 1, null, null), record(1, 1, 0, null)]);
    expect(s.accuracy).toBe(0.5);
    expect(s.certifiedAccuracy).toBeNull();
    expect(s.medianRadius).toBeNull();
  });

  test('imageRecord: a misclassified image gets radius 0 (exact) even when certify() found one', () => {
    const result = { class: 3, margin: 2, local: [{ eps: 0.01, bound: 5, quality: 'upper' as const, layers: [], seconds: 0, failureProbability: 0.004 }], seconds: 1 };
    const radius = { local: 0.2, localUpper: 0.21, global: 0.01, evaluations: 5, relativeTolerance: 1e-4, seconds: 1, quality: 'upper' as const, failureProbability: 0.006 };
    expect(imageRecord(7, 1, { ...result, radius })).toMatchObject({ index: 7, label: 1, predictedClass: 3, radius: 0, quality: 'exact' });
    expect(imageRecord(7, 3, { ...result, radius })).toMatchObject({ radius: 0.2, quality: 'upper', failureProbability: 0.006, local: [{ eps: 0.01, bound: 5, quality: 'upper', failureProbability: 0.004 }] });
    expect(imageRecord(7, 3, result)).toMatchObject({ radius: null, quality: null });
  });
});
