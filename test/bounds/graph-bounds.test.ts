/**
 * The paper's method on graphs and other activations (docs/graphs.md), on small networks built in
 * the IR (test/helpers/graph-networks.ts: residual blocks, residual MLPs, LeakyReLU/PReLU, ReLU6 and
 * HardTanh, Concat with sigmoid and tanh):
 * - every layer's factor, the local and global bounds against the rules written out on dense
 *   matrices (test/helpers/dense.ts), and the forward pass;
 * - soundness: sampled ratios ‖f(x) − f(x0)‖/‖x − x0‖ in the ball (float64, dense) never exceed
 *   the local bound; the residual rule (1 + L_F) is exact on a linear block;
 * - gradients (vjp) against finite differences; the rounding bound against float32 − float64;
 * - the tight method (docs/graphs.md §7): sampled ratios and margin changes below its bounds, its
 *   factors never above the paper's.
 */
import { createBackend } from '../../src/backend/select.js';
import type { Backend } from '../../src/backend/backend.js';
import { evaluate, forwardTrace, vjp } from '../../src/bounds/backprop.js';
import { certify } from '../../src/bounds/certify.js';
import { PAPER_REPRODUCTION } from '../../src/bounds/defaults.js';
import { nominalPass } from '../../src/bounds/nominal.js';
import { FLOAT32_ROUNDOFF, roundingErrorBound } from '../../src/bounds/rounding.js';
import type { TightBound } from '../../src/bounds/tight/index.js';
import { forward64 } from '../../src/model/forward64.js';
import { type Network, size } from '../../src/model/ir.js';
import { Rng } from '../../src/random.js';
import { denseEvaluator, denseOf, expectLocalBoundMatchesDense, forwardDense, globalBoundDense, spectralNorm } from '../helpers/dense.js';
import { GRAPH_NETWORKS, GraphBuilder } from '../helpers/graph-networks.js';

let backend: Backend;
beforeAll(async () => {
  backend = await createBackend('cpu');
});
afterAll(async () => backend.dispose());

const relErr = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);
const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((a, b) => a + b * b, 0));

function inputOf(network: Network, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: size(network.inputShape) }, () => rng.gaussian());
}

describe.each(GRAPH_NETWORKS)('%s network', (_name, build) => {
  const network = build(3);
  const x0 = inputOf(network, 9);

  test('forward pass and global bound match the dense reference', async () => {
    const result = await certify(network, x0, backend, { ...PAPER_REPRODUCTION, eps: [], global: true, tolerance: 1e-10 });
    const expected = forwardDense(network, x0);
    result.logits.forEach((v, i) => expect(Math.abs(v - expected[i])).toBeLessThan(1e-4 * (1 + Math.abs(expected[i]))));
    expect(relErr(result.global!.bound, globalBoundDense(network))).toBeLessThan(1e-4);
  });

  test.each([1e-3, 0.05, 0.3, 2])('local bound at eps %p: every layer factor and the total match the dense reference; sampled ratios stay below it', async (eps) => {
    const result = await certify(network, x0, backend, { ...PAPER_REPRODUCTION, eps: [eps], global: true, tolerance: 1e-10 });
    const local = result.local[0];
    expectLocalBoundMatchesDense(network, x0, eps, local, result.global!.bound);
    // Soundness: f's change over points on and inside the ball, in float64 on dense matrices.
    const f = denseEvaluator(network);
    const f0 = f(x0);
    const rng = new Rng(Math.round(eps * 1e4));
    let worst = 0;
    for (let s = 0; s < 300; s++) {
      const d = Float64Array.from(x0, () => rng.gaussian());
      const r = (eps * (s % 3 === 0 ? 1 : rng.uniform())) / norm(d);
      const x = Float64Array.from(x0, (v, i) => v + r * d[i]);
      worst = Math.max(worst, norm(f(x).map((y, i) => y - f0[i])) / (r * norm(d)));
    }
    expect(worst).toBeLessThanOrEqual(local.bound * (1 + 1e-6));
    expect(worst).toBeGreaterThan(0);
  });

  test('gradients (vjp) match central differences', async () => {
    const trace = await forwardTrace(network, backend, x0);
    const rng = new Rng(4);
    const u = Float32Array.from(trace.logits, () => rng.gaussian());
    const g = await vjp(network, backend, trace, u);
    expect(g).toHaveLength(x0.length);
    const f = denseEvaluator(network);
    for (let k = 0; k < 4; k++) {
      const v = Float64Array.from(x0, () => rng.gaussian());
      const n = norm(v);
      const h = 1e-5;
      const plus = f(Float64Array.from(x0, (x, i) => x + (h * v[i]) / n));
      const minus = f(Float64Array.from(x0, (x, i) => x - (h * v[i]) / n));
      const numeric = plus.reduce((a, y, i) => a + u[i] * (y - minus[i]), 0) / (2 * h);
      const analytic = g.reduce((a, gi, i) => a + (gi * v[i]) / n, 0);
      expect(Math.abs(numeric - analytic)).toBeLessThan(1e-3 * (1 + Math.abs(numeric)));
    }
    expect(Array.from(await evaluate(network, backend, x0))).toEqual(Array.from(trace.logits));
  });

  test('the rounding bound contains float32 − float64 of every logit', async () => {
    const nominal = await nominalPass(network, backend, x0);
    const exact = forward64(network, x0);
    const bound = await roundingErrorBound(network, backend, nominal, FLOAT32_ROUNDOFF);
    for (let i = 0; i < bound.logits.length; i++) expect(Math.abs(nominal.logits[i] - exact.logits[i])).toBeLessThanOrEqual(bound.logits[i]);
    expect(bound.local).toHaveLength(network.layers.length);
  });

  test.each([1e-3, 0.05, 0.3])('the tight method at eps %p (docs/graphs.md §7): sampled ratios and margin changes stay below its bounds; no factor above the paper\'s', async (eps) => {
    const options = { eps: [eps], tolerance: 1e-10, certificate: 'estimate' as const };
    const [tight, paper] = await Promise.all([certify(network, x0, backend, { ...options, method: 'tight' }), certify(network, x0, backend, { ...options, method: 'paper' })]);
    const bound = tight.local[0] as unknown as TightBound;
    expect(bound.method).toBe('tight');
    expect(bound.bound).toBeLessThanOrEqual(paper.local[0].bound * (1 + 1e-6));
    // Every factor sees a range inside the paper's: its slopes and masks can only shrink.
    bound.layers.forEach((l, i) => expect(l.bound).toBeLessThanOrEqual(paper.local[0].layers[i].bound * (1 + 1e-6)));
    const f = denseEvaluator(network);
    const f0 = f(x0);
    const cls = bound.marginClass;
    const rng = new Rng(Math.round(eps * 1e4) + 1);
    let worst = 0;
    for (let s = 0; s < 300; s++) {
      const d = Float64Array.from(x0, () => rng.gaussian());
      const r = (eps * (s % 3 === 0 ? 1 : rng.uniform())) / norm(d);
      const x = Float64Array.from(x0, (v, i) => v + r * d[i]);
      const y = f(x);
      worst = Math.max(worst, norm(y.map((v, i) => v - f0[i])) / (r * norm(d)));
      // The margin bounds of §3 and §5: how far y_c − y_j can move over the ball.
      for (let j = 0; j < y.length; j++) {
        if (j === cls) continue;
        const change = y[cls] - y[j] - (f0[cls] - f0[j]);
        expect(Math.abs(change)).toBeLessThanOrEqual(r * norm(d) * bound.marginBounds[j] * (1 + 1e-5) + 1e-6);
        expect(-change).toBeLessThanOrEqual(bound.marginDecrease![j] * (1 + 1e-5) + 1e-6);
        if (bound.marginChange) expect(Math.abs(change)).toBeLessThanOrEqual(bound.marginChange[j] * (1 + 1e-5) + 1e-6);
      }
    }
    expect(worst).toBeLessThanOrEqual(bound.bound * (1 + 1e-6));
    expect(worst).toBeGreaterThan(0);
  });
});

test('a residual block x + W x: the recursion gives (1 + ‖W‖) for the global bound and (1 + ‖W D‖) locally', async () => {
  const b = new GraphBuilder([5], 1);
  const d = b.dense(b.input, 5);
  const network = b.build('x+Wx', b.add([b.input, d]));
  const x0 = inputOf(network, 2);
  const result = await certify(network, x0, backend, { ...PAPER_REPRODUCTION, eps: [0.1], global: true, tolerance: 1e-12 });
  const w = spectralNorm(denseOf(network.layers[0] as never));
  expect(relErr(result.global!.bound, 1 + w)).toBeLessThan(1e-8);
  expect(relErr(result.local[0].bound, 1 + w)).toBeLessThan(1e-8);
  expect(result.local[0].layers[1]).toMatchObject({ kind: 'add', inputs: [-1, 0], bound: 1 });
  expect(relErr(result.local[0].layers[1].epsIn!, 0.1 * (1 + w))).toBeLessThan(1e-8);
});

test('a Concat of x with itself: radii combine as the root-sum-of-squares (√2 exactly for a copy)', async () => {
  const b = new GraphBuilder([4], 1);
  const c = b.concat([b.input, b.input]);
  const network = b.build('[x,x]', b.dense(c, 3));
  const x0 = inputOf(network, 2);
  const result = await certify(network, x0, backend, { ...PAPER_REPRODUCTION, eps: [0.5], global: true, tolerance: 1e-12 });
  expect(result.local[0].layers[0]).toMatchObject({ kind: 'concat', bound: 1 });
  expect(relErr(result.local[0].layers[0].epsIn!, 0.5 * Math.SQRT2)).toBeLessThan(1e-12);
  const w = spectralNorm(denseOf(network.layers[1] as never));
  expect(relErr(result.global!.bound, Math.SQRT2 * w)).toBeLessThan(1e-6); // the global factors are computed to a coarse tolerance
});
