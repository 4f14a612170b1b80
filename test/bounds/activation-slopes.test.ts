/**
 * Theorem 1 generalised (bounds/activation-slopes.ts, docs/graphs.md §3), against sampled
 * difference quotients as test/bounds/tight.test.ts checks slopeInterval: for every activation, on
 * random (y0, y̌, ŷ, y), the quotient (σ(y) − σ(y0))/(y − y0) lies in quotientRange, and the range
 * is attained (its ends are quotients or one-sided derivatives, found by dense sampling); λ for
 * ReLU is the paper's; constantOver only where σ is constant; the dense reference's case analysis
 * (test/helpers/dense.ts) gives the same λ.
 */
import { constantOver, quotientRange, slopeBound } from '../../src/bounds/activation-slopes.js';
import { slopeInterval } from '../../src/bounds/tight/index.js';
import { imageInterval, unitLinearisationError, unitSlopeInterval } from '../../src/bounds/tight/slopes.js';
import { applyScalar, type ScalarActivation } from '../../src/model/activations.js';
import type { Layer } from '../../src/model/ir.js';
import { Rng } from '../../src/random.js';
import { referenceSlope } from '../helpers/dense.js';

const ACTIVATIONS: [string, ScalarActivation][] = [
  ['relu', { kind: 'relu' }],
  ['leakyrelu(0.1)', { kind: 'leakyrelu', alpha: 0.1 }],
  ['leakyrelu(0)', { kind: 'leakyrelu', alpha: 0 }],
  ['leakyrelu(-0.5) (PReLU slopes may be negative)', { kind: 'leakyrelu', alpha: -0.5 }],
  ['leakyrelu(2)', { kind: 'leakyrelu', alpha: 2 }],
  ['clip(0,6) (ReLU6)', { kind: 'clip', min: 0, max: 6 }],
  ['clip(-1,1) (HardTanh)', { kind: 'clip', min: -1, max: 1 }],
  ['sigmoid', { kind: 'sigmoid' }],
  ['tanh', { kind: 'tanh' }],
];

/** A random point with a random range around it, at scales that cross the kinks (and sometimes not). */
function sample(rng: Rng): { y0: number; lo: number; hi: number } {
  const scale = [0.1, 1, 4, 20][Math.floor(rng.uniform() * 4)];
  const y0 = scale * (2 * rng.uniform() - 1) * 2;
  const lo = y0 - (rng.uniform() < 0.1 ? 0 : scale * rng.uniform());
  const hi = y0 + (rng.uniform() < 0.1 ? 0 : scale * rng.uniform());
  return { y0, lo, hi };
}

describe.each(ACTIVATIONS)('%s', (_name, a) => {
  test('every sampled difference quotient lies in quotientRange, and the range is tight', () => {
    const rng = new Rng(17);
    let attained = 0;
    const outside: string[] = [];
    for (let t = 0; t < 10_000; t++) {
      const { y0, lo, hi } = sample(rng);
      if (lo === hi) continue;
      const [qLo, qHi] = quotientRange(a, y0, lo, hi);
      if (slopeBound(a, y0, lo, hi) !== Math.max(Math.abs(qLo), Math.abs(qHi))) outside.push(`λ at ${y0} in [${lo}, ${hi}]`);
      let seenLo = Infinity;
      let seenHi = -Infinity;
      for (let k = 0; k <= 20; k++) {
        const y = k === 20 ? hi : lo + ((hi - lo) * k) / 20;
        if (Math.abs(y - y0) <= 1e-9 * (1 + Math.abs(y0))) continue; // a quotient of rounding noise
        const q = (applyScalar(a, y) - applyScalar(a, y0)) / (y - y0);
        const slack = 1e-9 * (1 + Math.abs(q));
        if (q < qLo - slack || q > qHi + slack) outside.push(`q(${y}) = ${q} at ${y0} in [${lo}, ${hi}]: range [${qLo}, ${qHi}]`);
        seenLo = Math.min(seenLo, q);
        seenHi = Math.max(seenHi, q);
      }
      // Quotients near y0 approach σ'(y0±): sample there too before judging tightness.
      for (const h of [1e-6, -1e-6]) {
        const y = y0 + h * Math.max(1, Math.abs(y0));
        if (y < lo || y > hi) continue;
        const q = (applyScalar(a, y) - applyScalar(a, y0)) / (y - y0);
        seenLo = Math.min(seenLo, q);
        seenHi = Math.max(seenHi, q);
      }
      if (a.kind !== 'sigmoid' && a.kind !== 'tanh' && Math.abs(seenHi - qHi) < 1e-5 * (1 + Math.abs(qHi)) && Math.abs(seenLo - qLo) < 1e-5 * (1 + Math.abs(qLo))) attained++;
    }
    expect(outside).toEqual([]);
    // Piecewise linear: the range is the exact range of quotients (up to the sampling of y) most of the time.
    if (a.kind !== 'sigmoid' && a.kind !== 'tanh') expect(attained).toBeGreaterThan(5_000);
  });

  test('constantOver only where σ is constant on the range', () => {
    const rng = new Rng(5);
    let constant = 0;
    let varying = 0;
    for (let t = 0; t < 20_000; t++) {
      const { y0, lo, hi } = sample(rng);
      if (!constantOver(a, lo, hi)) continue;
      constant++;
      const values = [lo, (lo + hi) / 2, hi, y0].map((y) => applyScalar(a, y));
      if (new Set(values).size !== 1) varying++;
    }
    expect(varying).toBe(0);
    if (a.kind === 'relu' || a.kind === 'clip' || (a.kind === 'leakyrelu' && a.alpha === 0)) expect(constant).toBeGreaterThan(100);
    else expect(constant).toBe(0);
  });
});

test('for ReLU, λ is the paper\'s (Theorem 1) and the tight method\'s slopeInterval upper end', () => {
  const rng = new Rng(3);
  let differ = 0;
  for (let t = 0; t < 20_000; t++) {
    const { y0, hi } = sample(rng);
    if (hi === y0) continue;
    const lo = y0 - (hi - y0);
    const paper = hi <= 0 ? 0 : y0 <= 0 ? hi / (hi - y0) : 1;
    const ours = constantOver({ kind: 'relu' }, lo, hi) ? 0 : slopeBound({ kind: 'relu' }, y0, lo, hi);
    if (Math.abs(ours - paper) > 1e-12 || Math.abs(ours - slopeInterval(y0, lo, hi)[1]) > 1e-12) differ++;
  }
  expect(differ).toBe(0);
});

test('the dense reference\'s case analysis gives the same λ (α in [0, 1])', () => {
  const rng = new Rng(8);
  const layerWith = (a: ScalarActivation): Layer =>
    ({ kind: 'activation', name: 'a', inputShape: [1], outputShape: [1], activation: a.kind === 'relu' ? { kind: 'leakyrelu', alpha: 0 } : a }) as Layer;
  for (const [, a] of ACTIVATIONS) {
    if (a.kind === 'leakyrelu' && (a.alpha < 0 || a.alpha > 1)) continue;
    let differ = 0;
    for (let t = 0; t < 5_000; t++) {
      const { y0, lo, hi } = sample(rng);
      if (lo === hi) continue;
      const reference = referenceSlope(layerWith(a), 0, y0, lo, hi);
      const constant = constantOver(a, lo, hi);
      if (constant !== reference.constant || (!constant && Math.abs(slopeBound(a, y0, lo, hi) - reference.lambda) > 1e-10 * (1 + reference.lambda))) differ++;
    }
    expect(differ).toBe(0);
  }
});

// The tight method's per-unit quantities (src/bounds/tight/slopes.ts, docs/graphs.md §7), against
// dense sampling of the range: the midpoint linearisation's error and σ's image.
describe.each(ACTIVATIONS)('tight method, %s', (_name, a) => {
  test('unitLinearisationError bounds |σ(y) − σ(y0) − m(y − y0)| and imageInterval contains σ over the range (both attained for piecewise linear σ)', () => {
    const rng = new Rng(29);
    let attained = 0;
    let trials = 0;
    for (let trial = 0; trial < 300; trial++) {
      const { y0, lo, hi } = sample(rng);
      const slopes = unitSlopeInterval(a, y0, lo, hi);
      const m = (slopes[0] + slopes[1]) / 2;
      const error = unitLinearisationError(a, y0, lo, hi, m, slopes);
      const [imageLo, imageHi] = imageInterval(a, lo, hi);
      const s0 = applyScalar(a, y0);
      let worst = 0;
      let min = Infinity;
      let max = -Infinity;
      // A grid of the range, and the kinks inside it.
      const kinks = a.kind === 'clip' ? [a.min, a.max] : a.kind === 'sigmoid' || a.kind === 'tanh' ? [] : [0];
      const points = [...Array.from({ length: 401 }, (_, k) => lo + ((hi - lo) * k) / 400), ...kinks.filter((k) => k > lo && k < hi)];
      for (const y of points) {
        const v = applyScalar(a, y);
        worst = Math.max(worst, Math.abs(v - s0 - m * (y - y0)));
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      expect(worst).toBeLessThanOrEqual(error * (1 + 1e-12) + 1e-12);
      expect(imageLo).toBeLessThanOrEqual(min + 1e-12);
      expect(imageHi).toBeGreaterThanOrEqual(max - 1e-12);
      if (a.kind !== 'sigmoid' && a.kind !== 'tanh' && hi > lo) {
        trials++;
        if (Math.abs(worst - error) <= 1e-9 * (1 + error)) attained++;
        expect(imageHi - imageLo).toBeCloseTo(max - min, 9);
      }
    }
    // The ends and kinks are sampled: for piecewise linear σ the error is attained there.
    if (trials > 0) expect(attained).toBe(trials);
  });
});
