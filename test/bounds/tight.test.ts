/**
 * The 'tight' method on small random networks: sound (no sampled point of the ball has a larger
 * ratio ||f(x) − f(x0)|| / ||x − x0||, no sampled point inside the certified radius changes the class,
 * including points along each margin's gradient), never above the paper's bound, and at least the
 * exact Jacobian norm at x0 (a lower bound of L). References are float64 dense matrices.
 */
import { jest } from '@jest/globals';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { certify, DEFAULT_RADIUS_TOLERANCE } from '../../src/bounds/certify.js';
import { CERTIFICATE_SLACK, CERTIFIED_SEARCH_TOLERANCE, TIGHT } from '../../src/bounds/methods.js';
import { nominalPass, SpectralSolver } from '../../src/bounds/layer-bounds.js';
import { Rng } from '../../src/random.js';
import { slopeInterval, type TightBound, tightSweep } from '../../src/bounds/tight/index.js';
import { type Network, size } from '../../src/model/ir.js';
import type { NetworkBound } from '../../src/bounds/types.js';
import { everyLayerNetwork, randomInput } from './small-networks.js';
import { denseEvaluator } from '../helpers/dense.js';
import { conv, dense, everyKindNetwork, flatten, loneReluNet, maxpool, network, randomWeights } from '../helpers/random-networks.js';

const backend = createCpuBackend();
afterAll(() => backend.dispose());

function lenetLike(): Network {
  const c1 = conv([1, 10, 10], 3, [3, 3]);
  const p1 = maxpool(c1.outputShape as [number, number, number], [2, 2], [2, 2]);
  const c2 = conv(p1.outputShape as [number, number, number], 4, [2, 2]);
  const f = flatten(c2.outputShape);
  return network([c1, p1, c2, f, dense(f.outputShape[0], 10), dense(10, 6, false)]);
}

const cases: [string, () => Network][] = [
  ['every layer kind', everyKindNetwork],
  ['conv–pool–conv–dense', lenetLike],
  ['conv, max pool, lone ReLU', loneReluNet],
];

const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((a, x) => a + x * x, 0));
const argmax = (v: ArrayLike<number>) => Array.from(v).reduce((b, x, i, a) => (x > a[b] ? i : b), 0);

test('slopeInterval contains every difference quotient of the ReLU over [y̌, ŷ]', () => {
  const rng = new Rng(5);
  const g = () => rng.gaussian();
  let outside = 0;
  let checked = 0;
  for (let t = 0; t < 2000; t++) {
    const y0 = g();
    const yCheck = y0 - Math.abs(g());
    const yHat = y0 + Math.abs(g());
    const [lo, hi] = slopeInterval(y0, yCheck, yHat);
    for (let s = 0; s <= 20; s++) {
      const y = yCheck + ((yHat - yCheck) * s) / 20;
      if (y === y0) continue;
      const q = (Math.max(0, y) - Math.max(0, y0)) / (y - y0);
      checked++;
      if (q < lo - 1e-12 || q > hi + 1e-12) outside++;
    }
  }
  expect(checked).toBeGreaterThan(30000);
  expect(outside).toBe(0);
});

test("the radius search and its certification evaluate the 'radius' sweep: §5 without §4, which the bounds at the user's ε keep", async () => {
  const net = everyLayerNetwork(1);
  const x0 = randomInput(size(net.inputShape), 5);
  // §4 acts at this ε (on 5 units): the 'fast' sweep's intervals differ from the 'radius' sweep's.
  const nominal = await nominalPass(net, backend, x0);
  const solver = new SpectralSolver(backend, { tolerance: 1e-9, maxIterations: 5000 });
  const [fast, radius] = [await tightSweep(net, backend, nominal, 0.02, solver), await tightSweep(net, backend, nominal, 0.02, solver, undefined, { refinement: 'radius' })];
  solver.dispose();
  let differing = 0;
  fast.states.forEach((state, l) => state.preActivationUpper?.forEach((u, i) => (differing += u !== radius.states[l].preActivationUpper![i] || state.preActivationLower![i] !== radius.states[l].preActivationLower![i] ? 1 : 0)));
  expect(differing).toBeGreaterThan(0);
  // Every radius evaluation (search and certification) is a 'radius' sweep; each ε's bound a 'fast' one.
  const searched = jest.spyOn(TIGHT, 'searched');
  const local = jest.spyOn(TIGHT, 'local');
  try {
    const result = await certify(net, x0, backend, { eps: [0.01, 0.02], radius: true, seed: 2 });
    expect(result.radius!.quality).toBe('upper');
    expect(searched).toHaveBeenCalledTimes(result.radius!.evaluations);
    expect(local).toHaveBeenCalledTimes(2);
  } finally {
    searched.mockRestore();
    local.mockRestore();
  }
});

describe.each(cases)('%s', (_name, build) => {
  const net = build();
  const forwardDense = (_net: Network, x: ArrayLike<number>) => evaluate(x);
  const evaluate = denseEvaluator(net);
  const n = net.inputShape.reduce((a, b) => a * b, 1);
  const x0 = randomWeights(n, 1);
  const f0 = forwardDense(net, x0);
  const cls = argmax(f0);
  const rng = new Rng(99);
  const gauss = () => rng.gaussian();
  const direction = () => {
    const d = Float64Array.from({ length: n }, () => gauss());
    const s = norm(d);
    return d.map((v) => v / s);
  };
  const at = (d: Float64Array, t: number) => Float64Array.from(x0, (v, i) => v + t * d[i]);

  test.each([0.01, 0.1, 0.5])('eps %p: sound (sampled ratios, Jacobian direction), layer factors never above the paper\'s', async (eps) => {
    const options = { eps: [eps], seed: 3, tolerance: 1e-9 };
    const [paper, estimated, tight] = await Promise.all([
      certify(net, x0, backend, { ...options, method: 'paper', certificate: 'estimate' }),
      certify(net, x0, backend, { ...options, method: 'tight', certificate: 'estimate' }),
      certify(net, x0, backend, { ...options, method: 'tight', certificate: 'probabilistic' }),
    ]);
    // Sharper slopes and masks: every layer factor, hence the product, at or below the paper's.
    const e = estimated.local[0] as unknown as TightBound;
    e.layers.forEach((l, i) => expect(l.bound).toBeLessThanOrEqual(paper.local[0].layers[i].bound * (1 + 1e-6)));
    expect(e.productBound).toBeLessThanOrEqual(paper.local[0].bound * (1 + 1e-5));
    const t = tight.local[0] as unknown as TightBound;
    expect(t.quality).toBe('upper');
    expect(t.bound).toBeLessThanOrEqual(t.productBound);
    // Sampled ratios in the ball (random radii and on the sphere) and along a finite-difference
    // Jacobian direction: all at or below the bound.
    let worst = 0;
    let marginViolations = 0;
    expect(t.marginClass).toBe(cls);
    for (let s = 0; s < 300; s++) {
      const d = direction();
      const r = s % 3 === 0 ? eps : eps * Math.random();
      if (r === 0) continue;
      const f = forwardDense(net, at(d, r));
      worst = Math.max(worst, norm(f.map((v, i) => v - f0[i])) / r);
      // Margin bounds (§3): the change of each y_c − y_j, as a ratio and over the ball.
      for (let j = 0; j < f.length; j++) {
        const signed = f[t.marginClass] - f[j] - (f0[t.marginClass] - f0[j]);
        const change = Math.abs(signed);
        if (change > r * t.marginBounds[j] * (1 + 1e-6) || change > t.marginChange![j] * (1 + 1e-6) + 1e-12) marginViolations++;
        // The relaxation's bound of how far the margin can fall (§5).
        if (-signed > t.marginDecrease![j] * (1 + 1e-6) + 1e-12) marginViolations++;
      }
    }
    expect(marginViolations).toBe(0);
    // Power iteration on JᵀJ with central differences at a small step: a ratio actually attained.
    let v = direction();
    const h = Math.min(eps, 1e-4);
    for (let it = 0; it < 30; it++) {
      const jv = forwardDense(net, at(v, h)).map((y, i) => (y - f0[i]) / h);
      const g = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const e = new Float64Array(n);
        e[i] = 1;
        const col = forwardDense(net, at(e, h)).map((y, k) => (y - f0[k]) / h);
        g[i] = col.reduce((a, c, k) => a + c * jv[k], 0);
      }
      const s = norm(g);
      if (s === 0) break;
      v = g.map((x) => x / s);
      if (it > 3) break;
    }
    worst = Math.max(worst, norm(forwardDense(net, at(v, h)).map((y, i) => y - f0[i])) / h);
    expect(worst).toBeLessThanOrEqual(t.bound * (1 + 1e-6));
    expect(worst).toBeGreaterThan(0);
  });

  test('certified radius: its estimate search stops at CERTIFIED_SEARCH_TOLERANCE; one certified evaluation at its lower end certifies the radius, within CERTIFICATE_SLACK of it', async () => {
    const searched = jest.spyOn(TIGHT, 'searched');
    let estimate: Awaited<ReturnType<typeof certify>>;
    let certified: Awaited<ReturnType<typeof certify>>;
    let certifying: { eps: number; bound: NetworkBound }[];
    try {
      estimate = await certify(net, x0, backend, { eps: [], radius: true, method: 'tight', certificate: 'estimate' });
      searched.mockClear();
      certified = await certify(net, x0, backend, { eps: [], radius: true, method: 'tight', certificate: 'probabilistic', seed: 4 });
      certifying = [];
      for (const [i, call] of searched.mock.calls.entries()) {
        const bound = await (searched.mock.results[i].value as Promise<NetworkBound>);
        if (bound.quality !== 'estimate') certifying.push({ eps: call[3], bound });
      }
    } finally {
      searched.mockRestore();
    }
    const fine = estimate.radius!;
    const coarse = certified.radius!;
    expect(fine.relativeTolerance).toBe(DEFAULT_RADIUS_TOLERANCE);
    expect(fine.localUpper / fine.local - 1).toBeLessThanOrEqual(DEFAULT_RADIUS_TOLERANCE);
    expect(coarse.relativeTolerance).toBe(CERTIFIED_SEARCH_TOLERANCE);
    expect(coarse.quality).toBe('upper');
    // One certified evaluation, at the coarse bracket's lower end (at most CERTIFIED_SEARCH_TOLERANCE
    // below localUpper) where that is a failing point's within, else CERTIFICATE_SLACK inside it: the
    // radius is the largest ε' its bound certifies, no more than CERTIFICATE_SLACK below it.
    expect(certifying).toHaveLength(1);
    const [{ eps: at, bound }] = certifying;
    expect(coarse.localUpper / (at * (1 + CERTIFICATE_SLACK)) - 1).toBeLessThanOrEqual(CERTIFIED_SEARCH_TOLERANCE * (1 + 1e-9));
    expect(coarse.local).toBeLessThanOrEqual(at);
    expect(coarse.local).toBeGreaterThanOrEqual(at * (1 - CERTIFICATE_SLACK));
    expect(bound.failureProbability).toBeGreaterThan(0);
    expect(coarse.failureProbability).toBe(bound.failureProbability);
    // Both brackets hold the estimates' threshold, so the coarse one costs at most its width (and the certificates' slack) in radius.
    expect(coarse.localUpper).toBeGreaterThanOrEqual(fine.local);
    expect(at).toBeLessThanOrEqual(fine.localUpper);
    expect(coarse.local).toBeGreaterThanOrEqual((fine.local * (1 - CERTIFICATE_SLACK)) / ((1 + CERTIFIED_SEARCH_TOLERANCE) * (1 + CERTIFICATE_SLACK)));
    // The coarse search stops no later than the fine one, then spends one certified evaluation.
    expect(coarse.evaluations).toBeLessThanOrEqual(fine.evaluations + 1);
  });

  test('certified radius: at least the paper\'s; no sampled point inside changes the class', async () => {
    const [paper, tight] = await Promise.all([
      certify(net, x0, backend, { eps: [], radius: true, method: 'paper', certificate: 'estimate' }),
      certify(net, x0, backend, { eps: [], radius: true, method: 'tight', certificate: 'probabilistic', seed: 4 }),
    ]);
    const radius = tight.radius!.local;
    expect(tight.radius!.quality).toBe('upper');
    expect(radius).toBeGreaterThanOrEqual(paper.radius!.local * 0.99);
    expect(radius).toBeGreaterThan(0);
    for (let s = 0; s < 300; s++) {
      const r = s % 2 === 0 ? radius : radius * Math.random();
      expect(argmax(forwardDense(net, at(direction(), r)))).toBe(cls);
    }
    // Along the finite-difference gradient of each margin y_c − y_j, at the radius.
    const h = 1e-5;
    for (let j = 0; j < f0.length; j++) {
      if (j === cls) continue;
      const g = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const e = new Float64Array(n);
        e[i] = 1;
        const y = forwardDense(net, at(e, h));
        g[i] = (y[cls] - y[j] - (f0[cls] - f0[j])) / h;
      }
      const s = norm(g);
      if (s > 0) expect(argmax(forwardDense(net, at(g.map((v) => -v / s), radius)))).toBe(cls);
    }
  });
});
