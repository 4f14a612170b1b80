/**
 * Branch and bound (docs/tightness.md §7, src/bounds/tight/branching.ts) checked against the network
 * itself: for small networks of several layer kinds and two graphs, every combination of signs of three units that
 * may switch is a branch; the sampled points of the ball that lie in it (their pre-activations have
 * the signs) never leave the branch's pre-activation intervals nor fall below its margin bounds, and
 * a branch declared empty holds none of them. The ReLU relaxation is checked on intervals that
 * exclude y0 (a branch may exclude x0). The float64 forward pass (model/forward64.ts) is the reference.
 * A cancellation stops the branching stage between branches.
 */
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { jest } from '@jest/globals';
import { certify, topTwo } from '../../src/bounds/certify.js';
import { TIGHT } from '../../src/bounds/methods.js';
import type { NetworkBound } from '../../src/bounds/types.js';
import { loadFixture, TABLE_III_IMAGES } from './fixtures.js';
import { CancelledError } from '../../src/errors.js';
import { nominalPass, SpectralSolver } from '../../src/bounds/layer-bounds.js';
import { branchAndBound, branchMarginBound, branchSweep, type Split } from '../../src/bounds/tight/branching.js';
import { tightBoundAndSweep } from '../../src/bounds/tight/index.js';
import { reluRelaxation } from '../../src/bounds/tight/relaxation.js';
import { forward64 } from '../../src/model/forward64.js';
import { isAffine, type Network, size } from '../../src/model/ir.js';
import { Rng } from '../../src/random.js';
import { torchMlp } from '../helpers/planar-networks.js';
import { concatNetwork, residualNetwork } from '../helpers/graph-networks.js';
import { convPoolNet } from '../helpers/random-networks.js';
import { everyLayerNetwork, randomInput } from './small-networks.js';

const backend = createCpuBackend();
afterAll(() => backend.dispose());

test('the ReLU relaxation bounds relu(y) − relu(y0) on intervals that exclude y0 too', () => {
  const rng = new Rng(3);
  let checked = 0;
  const violations: string[] = [];
  for (let t = 0; t < 3000; t++) {
    const a = 2 * rng.gaussian();
    const b = a + Math.abs(2 * rng.gaussian());
    const y0 = 3 * rng.gaussian(); // anywhere, inside [a, b] or not
    for (const choice of ['adaptive', 'chord', 'nominal'] as const) {
      const r = reluRelaxation([y0], [a], [b], choice);
      for (let s = 0; s <= 10; s++) {
        const y = a + ((b - a) * s) / 10;
        const change = Math.max(0, y) - Math.max(0, y0);
        const tolerance = 1e-5 * (1 + Math.abs(y) + Math.abs(y0));
        if (change > r.upperSlope[0] * (y - y0) + r.upperOffset[0] + tolerance) violations.push(`${choice} [${a}, ${b}] y0 ${y0} y ${y}: above the upper relaxation`);
        if (change < r.lowerSlope[0] * (y - y0) + r.lowerOffset[0] - tolerance) violations.push(`${choice} [${a}, ${b}] y0 ${y0} y ${y}: below the lower relaxation`);
        checked++;
      }
    }
  }
  expect(violations.slice(0, 5)).toEqual([]);
  expect(checked).toBe(3000 * 3 * 11);
});

const cases: [string, () => Network, Float32Array | null, number][] = [
  ['MLP 2-16-16-16-4 (PyTorch initialisation)', () => torchMlp([2, 16, 16, 16, 4], 21), Float32Array.from([0.3, -0.4]), 0.5],
  ['conv, max pool, dense, dense', convPoolNet, null, 0.3],
  ['every layer kind', () => everyLayerNetwork(11), null, 0.2],
  // Graphs (docs/graphs.md §7): the branch's backward passes split at Adds and Concats.
  ['graph: residual', () => residualNetwork(3), null, 0.3],
  ['graph: concat', () => concatNetwork(3), null, 0.1],
];

describe.each(cases)('%s', (_name, build, input, eps) => {
  const net = build();
  const n = size(net.inputShape);
  const x0 = input ?? randomInput(n, 5);
  const reference = forward64(net, x0);
  const cls = topTwo(reference.logits).cls;

  test('every branch on three units contains the sampled points that satisfy its splits', async () => {
    const nominal = await nominalPass(net, backend, x0);
    const solver = new SpectralSolver(backend, { tolerance: 1e-9, maxIterations: 5000 });
    const { bound: root, sweep } = await tightBoundAndSweep(net, backend, nominal, eps, solver, cls, undefined, { refinement: 'full' });
    solver.dispose();
    // Three units that may switch, spread over the affine+ReLU layers.
    const candidates: { layer: number; unit: number }[] = [];
    net.layers.forEach((layer, l) => {
      const interval = sweep.states[l].reluInterval;
      if (!isAffine(layer) || !layer.relu || !interval) return;
      for (let i = 0; i < interval.lower.length; i++) if (interval.lower[i] < 0 && interval.upper[i] > 0) candidates.push({ layer: l, unit: i });
    });
    expect(candidates.length).toBeGreaterThanOrEqual(3);
    const rng = new Rng(9);
    const chosen = [0, 1, 2].map((k) => candidates[Math.floor(((k + rng.uniform()) * candidates.length) / 3)]);
    // Samples of the ball: random directions at random radii and on the sphere.
    const points = Array.from({ length: 1500 }, (_, s) => {
      const d = Float64Array.from({ length: n }, () => rng.gaussian());
      const r = (s % 3 === 0 ? 1 : rng.uniform()) * eps / Math.hypot(...d);
      return forward64(net, Float64Array.from(x0, (v, i) => v + r * d[i]));
    });
    let inBranches = 0;
    const violations: string[] = [];
    for (let signs = 0; signs < 8; signs++) {
      const splits: Split[] = chosen.map((c, k) => ({ ...c, active: ((signs >> k) & 1) === 1 }));
      const members = points.filter((p) => splits.every((s) => (s.active ? p.preActivations[s.layer]![s.unit] >= 0 : p.preActivations[s.layer]![s.unit] <= 0)));
      inBranches += members.length;
      const branch = await branchSweep(sweep, nominal, splits);
      if (!branch) {
        expect(members).toEqual([]); // declared empty: no sampled point satisfies its splits
        continue;
      }
      const margins = await branchMarginBound(branch, root);
      for (const p of members) {
        net.layers.forEach((_layer, l) => {
          const { preActivationLower: lower, preActivationUpper: upper } = branch.states[l];
          if (!lower || !upper) return;
          const y = p.preActivations[l]!;
          for (let i = 0; i < y.length; i++) {
            const slack = 1e-5 * (1 + Math.abs(y[i]));
            if (y[i] < lower[i] - slack || y[i] > upper[i] + slack) violations.push(`splits ${signs}: layer ${l} unit ${i}: ${y[i]} outside [${lower[i]}, ${upper[i]}]`);
          }
        });
        for (let j = 0; j < p.logits.length; j++) {
          const fall = reference.logits[cls] - reference.logits[j] - (p.logits[cls] - p.logits[j]);
          if (fall > margins.marginDecrease![j] + 1e-5 * (1 + Math.abs(reference.logits[cls]))) violations.push(`splits ${signs}: margin ${j} falls ${fall} > ${margins.marginDecrease![j]}`);
        }
      }
    }
    expect(violations.slice(0, 5)).toEqual([]);
    expect(inBranches).toBeGreaterThanOrEqual(points.length); // every point lies in some branch (a unit at exactly 0 in two)
  });
});

test('a cancelled run stops inside the branching stage, long before its budget', async () => {
  // This network and input keep branching for the whole budget (docs/tightness.md §7: 0.589 → 0.95 in 10 s).
  const net = torchMlp([2, 24, 24, 24, 6], 6);
  const controller = new AbortController();
  const started = performance.now();
  const timer = setTimeout(() => controller.abort(), 1500);
  try {
    await expect(certify(net, Float32Array.from([-0.3, 0.2]), backend, { eps: [], radius: true, seed: 2, branchBudget: 60, signal: controller.signal })).rejects.toBeInstanceOf(CancelledError);
  } finally {
    clearTimeout(timer);
  }
  expect(performance.now() - started).toBeLessThan(10_000);
});

test('branchAndBound calls onBranch before every branch: what it throws (a cancellation) stops the search there', async () => {
  const net = torchMlp([2, 24, 24, 24, 6], 6);
  const x0 = Float32Array.from([-0.3, 0.2]);
  const nominal = await nominalPass(net, backend, x0);
  const cls = topTwo(nominal.logits).cls;
  const solver = new SpectralSolver(backend, { tolerance: 1e-9, maxIterations: 5000 });
  // Beyond what the full sweep certifies (0.589) and below what branching reaches (0.95).
  const { bound, sweep } = await tightBoundAndSweep(net, backend, nominal, 0.75, solver, cls, undefined, { refinement: 'full' });
  solver.dispose();
  const gaps = Array.from(nominal.logits, (v, j) => (j === cls ? Infinity : nominal.logits[cls] - v));
  const count = { branches: 0, empty: 0 };
  let calls = 0;
  const search = branchAndBound(sweep, bound, nominal, gaps, Infinity, count, () => {
    if (++calls === 5) throw new CancelledError();
  });
  await expect(search).rejects.toBeInstanceOf(CancelledError);
  expect(count.branches).toBe(4);
});

test('a radius chosen among several certifying evaluations reports the union bound of their failure probabilities (MNIST fixture: probabilistic certificates)', async () => {
  const [image] = TABLE_III_IMAGES.filter((f) => f.model === 'mnist_lenet');
  const { network, x0 } = await loadFixture(image);
  const fast = await certify(network, x0, backend, { eps: [], radius: true, seed: 3 });
  // Every evaluation that certifies (the search's certification, the full sweeps, the branching tries) is recorded.
  const spies = { searched: jest.spyOn(TIGHT, 'searched'), refined: jest.spyOn(TIGHT, 'refined'), branched: jest.spyOn(TIGHT, 'branched') };
  let refined: Awaited<ReturnType<typeof certify>>;
  let results: { value: unknown }[][];
  try {
    refined = await certify(network, x0, backend, { eps: [], radius: true, seed: 3, branchBudget: 3 });
  } finally {
    results = [spies.searched, spies.refined, spies.branched].map((spy) => [...spy.mock.results]); // mockRestore clears them
    Object.values(spies).forEach((spy) => spy.mockRestore());
  }
  const probabilityOf = async (results: { value: unknown }[], bound: (value: any) => NetworkBound) => {
    let sum = 0;
    for (const r of results) sum += (await (r.value as Promise<unknown>).then(bound, () => null))?.failureProbability ?? 0; // estimates: none; interrupted: none
    return sum;
  };
  const union = (await probabilityOf(results[0], (b) => b)) + (await probabilityOf(results[1], (b) => b)) + (await probabilityOf(results[2], (r) => r.bound));
  const stage = refined.radius!.refinement!;
  expect(stage.evaluations + (stage.branchAttempts ?? 0)).toBeGreaterThanOrEqual(2);
  expect(fast.radius!.failureProbability).toBeGreaterThan(0);
  expect(refined.radius!.failureProbability).toBeCloseTo(union, 12);
  expect(refined.radius!.failureProbability!).toBeGreaterThan(1.5 * fast.radius!.failureProbability!);
});
