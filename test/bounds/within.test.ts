/**
 * One evaluation certifies every smaller ball (docs/tightness.md §8; certifiedWithin and
 * marginChangesWithin in src/bounds/tight/index.ts, `within` in methods.ts): the margin falls a bound
 * of the ε-ball gives for the ε'-ball hold on sampled points of that ball (float64 forward pass, the
 * reference), on small networks of several layer kinds and two graphs; certifiedWithin returns the
 * largest ε' its terms pass at (checked on a bound built by hand with known limits, and against
 * marginRatioWithin just inside and outside it); no sampled point inside it changes the class.
 */
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { topTwo } from '../../src/bounds/certify.js';
import { nominalPass, SpectralSolver } from '../../src/bounds/layer-bounds.js';
import { PAPER } from '../../src/bounds/methods.js';
import { certifiedWithin, marginChangesWithin, marginRatio, marginRatioWithin, type TightBound, tightLocalBound } from '../../src/bounds/tight/index.js';
import type { NetworkBound } from '../../src/bounds/types.js';
import { forward64 } from '../../src/model/forward64.js';
import { type Network, size } from '../../src/model/ir.js';
import { Rng } from '../../src/random.js';
import { concatNetwork, residualNetwork } from '../helpers/graph-networks.js';
import { torchMlp } from '../helpers/planar-networks.js';
import { convPoolNet } from '../helpers/random-networks.js';
import { everyLayerNetwork, randomInput } from './small-networks.js';

const backend = createCpuBackend();
afterAll(() => backend.dispose());

// Each network with a radius ε well beyond what its bound certifies, so that the ε'-ball is the interesting part.
const cases: [string, () => Network, Float32Array | null, number][] = [
  ['MLP 2-16-16-16-4 (PyTorch initialisation)', () => torchMlp([2, 16, 16, 16, 4], 21), Float32Array.from([0.3, -0.4]), 1.5],
  ['conv, max pool, dense, dense', convPoolNet, null, 0.6],
  ['every layer kind', () => everyLayerNetwork(11), null, 0.4],
  ['graph: residual', () => residualNetwork(3), null, 0.6],
  ['graph: concat', () => concatNetwork(3), null, 0.3],
];

describe.each(cases)('%s', (_name, build, input, eps) => {
  const net = build();
  const n = size(net.inputShape);
  const x0 = input ?? randomInput(n, 5);
  const reference = forward64(net, x0);
  const cls = topTwo(reference.logits).cls;
  const gaps = Array.from(reference.logits, (v, j) => (j === cls ? Infinity : reference.logits[cls] - v));
  const rng = new Rng(17);
  /** Points of the ball of radius r: random directions, a third on the sphere (all on it for a 2-D input: a ring of rays). */
  const sample = (r: number, count: number) =>
    Array.from({ length: count }, (_, s) => {
      const d = n === 2 ? [Math.cos((2 * Math.PI * s) / count), Math.sin((2 * Math.PI * s) / count)] : Array.from({ length: n }, () => rng.gaussian());
      const length = (n === 2 || s % 3 === 0 ? 1 : rng.uniform()) * r / Math.hypot(...d);
      return forward64(net, Float64Array.from(x0, (v, i) => v + length * d[i]));
    });
  let bounds: Record<'fast' | 'radius', TightBound>;

  beforeAll(async () => {
    const nominal = await nominalPass(net, backend, x0);
    const solver = new SpectralSolver(backend, { tolerance: 1e-9, maxIterations: 5000 });
    bounds = {
      fast: await tightLocalBound(net, backend, nominal, eps, solver, cls),
      radius: await tightLocalBound(net, backend, nominal, eps, solver, cls, undefined, { refinement: 'radius' }),
    };
    solver.dispose();
  });

  test.each(['fast', 'radius'] as const)('%s sweep: the falls bounded for each smaller ball hold on sampled points of it', (sweep) => {
    const bound = bounds[sweep];
    expect(bound.marginFallScaling?.eps).toBe(eps);
    // At ε itself the split form is the bound's own.
    const atEps = marginChangesWithin(bound, eps, eps);
    atEps.forEach((change, j) => expect(change).toBeCloseTo(Math.min(eps * bound.marginBounds[j], bound.marginChange?.[j] ?? Infinity, bound.marginDecrease?.[j] ?? Infinity), 5));
    const violations: string[] = [];
    let checked = 0;
    for (const fraction of [0.15, 0.4, 0.7, 1]) {
      const within = eps * fraction;
      const changes = marginChangesWithin(bound, eps, within);
      for (const p of sample(within, 600)) {
        for (let j = 0; j < p.logits.length; j++) {
          const fall = reference.logits[cls] - reference.logits[j] - (p.logits[cls] - p.logits[j]);
          if (fall > changes[j] + 1e-5 * (1 + Math.abs(reference.logits[cls]))) violations.push(`ε' ${within}: margin ${j} falls ${fall} > ${changes[j]}`);
          checked++;
        }
      }
    }
    expect(violations.slice(0, 5)).toEqual([]);
    expect(checked).toBe(4 * 600 * reference.logits.length);
  });

  test.each(['fast', 'radius'] as const)('%s sweep: certifiedWithin is the largest ε\' the bound passes at, and no sampled point inside it changes the class', (sweep) => {
    const bound = bounds[sweep];
    expect(marginRatio(bound, gaps, eps)).toBeGreaterThan(1); // ε itself is not certified
    const within = certifiedWithin(bound, gaps, eps);
    expect(within).toBeGreaterThan(0);
    expect(within).toBeLessThan(eps);
    expect(marginRatioWithin(bound, gaps, eps, within)).toBeLessThan(1);
    expect(marginRatioWithin(bound, gaps, eps, Math.min(eps, within * (1 + 1e-4)))).toBeGreaterThanOrEqual(1);
    for (const p of sample(within, 1200)) expect(topTwo(p.logits).cls).toBe(cls);
  });
});

/** A TightBound with only the margin fields set (classes 0, 1, 2; c = 0), for the closed form. */
function handMade(fields: Pick<TightBound, 'marginBounds' | 'marginChange' | 'marginDecrease' | 'marginFallScaling'>): TightBound {
  return { bound: 1, quality: 'exact', layers: [], seconds: 0, productBound: 1, corrections: [], marginClass: 0, unitsLeft: 0, ...fields };
}

test('certifiedWithin: each class passes where one of its terms does, the radius is the smallest class limit', () => {
  const gaps = [Infinity, 1, 1];
  const eps = 1;
  // Class 1: Lipschitz limit 1/4, §5 line 0.5 + s·1.5 below 1 up to s = 1/3: the line decides, 1/3.
  // Class 2: Lipschitz limit 1, so no limit below ε (its lines 0.2 + 3s and 0.9 + 0.2s would stop at 0.27 and 0.5).
  const bound = handMade({
    marginBounds: [0, 4, 1],
    marginChange: [0, 5, 5],
    marginDecrease: [0, 2, 1.1],
    marginFallScaling: { eps, floor: [0, 10, 10], offset: [[], [0.5], [0.2, 0.9]], slope: [[], [1.5], [3, 0.2]] },
  });
  expect(marginRatio(bound, gaps, eps)).toBeCloseTo(2, 12);
  expect(certifiedWithin(bound, gaps, eps)).toBeCloseTo(1 / 3, 5);
  expect(certifiedWithin(bound, gaps, eps)).toBeLessThan(1 / 3);
  // A constant below the gap holds on every smaller ball: class 1's change bound 0.5 leaves class 2's limit, ε.
  expect(certifiedWithin({ ...bound, marginChange: [0, 0.5, 5] }, gaps, eps)).toBeGreaterThan(1 - 1e-5);
  // Without the split (a network with many outputs), only the Lipschitz form shrinks: class 1 stops at 1/4.
  expect(certifiedWithin({ ...bound, marginFallScaling: undefined }, gaps, eps)).toBeCloseTo(1 / 4, 5);
  // A passing bound certifies ε itself; a line whose constant alone reaches the gap gives nothing of its own.
  expect(certifiedWithin({ ...bound, marginBounds: [0, 0.5, 0.5] }, gaps, eps)).toBe(eps);
  expect(certifiedWithin({ ...bound, marginBounds: [0, Infinity, 1], marginFallScaling: { ...bound.marginFallScaling!, offset: [[], [1.2], [0.2]], slope: [[], [1], [3]] } }, gaps, eps)).toBe(0);
});

test("the paper's criterion is linear in ε' for a fixed L: within is ε/ratio", () => {
  const bound: NetworkBound = { bound: 4, quality: 'upper', layers: [], seconds: 0 };
  const gaps = [Infinity, 2, 3];
  // ratio at ε = 1: 1·4·√2/2 = 2√2.
  expect(PAPER.within(bound, gaps, 1)).toBeCloseTo(1 / (2 * Math.SQRT2), 5);
  expect(PAPER.within(bound, gaps, 1)).toBeLessThan(1 / (2 * Math.SQRT2));
  expect(PAPER.within(bound, gaps, 0.1)).toBe(0.1);
});
