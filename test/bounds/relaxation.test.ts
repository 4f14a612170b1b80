/**
 * The tight method's forward sweep and its backward relaxation (docs/tightness.md §1, §4, §5),
 * checked against the network itself: on small networks of every layer kind (overlapping and
 * padded max pools, a lone ReLU after a pool, grouped and dilated convolutions, average pools,
 * scales), sampled points of the ε-ball — random directions at random radii and on the sphere, and
 * each row's own ascent direction — never leave the sweep's pre-activation intervals, and no
 * sampled change gᵀ(x_l − x0_l) exceeds relaxedChangeBounds' bound, for random rows g at every
 * layer and at the output. On networks with a 2- or 4-dimensional input a grid covers the ball, so
 * the bound is compared with the (nearly) exact maximum. The float64 forward pass
 * (model/forward64.ts) is the reference.
 */
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { nominalPass, SpectralSolver } from '../../src/bounds/layer-bounds.js';
import { type Refinement, relaxedChangeBounds, tightSweep } from '../../src/bounds/tight/index.js';
import { forward64 } from '../../src/model/forward64.js';
import { type Network, size } from '../../src/model/ir.js';
import { Rng } from '../../src/random.js';
import { everyLayerNetwork, randomInput } from './small-networks.js';
import { conv, dense, flatten, gaussianRowsAt, loneReluNet, maxpool, network } from '../helpers/random-networks.js';
import { torchMlp } from '../helpers/planar-networks.js';
import { GRAPH_NETWORKS } from '../helpers/graph-networks.js';

const backend = createCpuBackend();
afterAll(() => backend.dispose());

const cases: [string, () => Network][] = [
  ['every layer kind', () => everyLayerNetwork(11)],
  ['conv, max pool, lone ReLU', loneReluNet],
  // Graphs and other activations (docs/graphs.md §7): the passes split at Adds and Concats.
  ...GRAPH_NETWORKS.map(([name, build]): [string, () => Network] => [`graph: ${name}`, () => build(3)]),
];

describe.each(cases)('%s', (_name, build) => {
  const net = build();
  const n = size(net.inputShape);
  const x0 = randomInput(n, 5);
  const reference = forward64(net, x0);
  const L = net.layers.length;
  /** Layer t's combined input (an Add's sum; t = L: the output) in a float64 pass. */
  const combinedInput = (pass: ReturnType<typeof forward64>, t: number) => (t === L ? pass.logits : net.layers[t].kind === 'add' ? pass.preActivations[t]! : pass.inputs[t]);
  const valuesAt = (x: Float64Array, t: number) => combinedInput(forward64(net, x), t);
  const nominalAt = (t: number) => combinedInput(reference, t);

  // 'radius' is the radius search's sweep (§5 without §4's decomposition bounds): sound on its own.
  test.each([
    [0.02, 'fast'],
    [0.2, 'fast'],
    [0.05, 'radius'],
  ] as [number, Refinement][])('eps %p, %s sweep: intervals contain the ball, relaxation bounds every sampled change', async (eps, refinement) => {
    const nominal = await nominalPass(net, backend, x0);
    const solver = new SpectralSolver(backend, { tolerance: 1e-9, maxIterations: 5000 });
    const sweep = await tightSweep(net, backend, nominal, eps, solver, undefined, { refinement });
    solver.dispose();
    const rng = new Rng(17);
    const unit = () => {
      const d = Float64Array.from({ length: n }, () => rng.gaussian());
      const s = Math.hypot(...d);
      return d.map((v) => v / s);
    };
    // Random rows at every layer's input and at the output, and their bounds.
    const rowCount = 6;
    const rows: { t: number; g: Float32Array; bound: Float64Array }[] = [];
    for (let t = 1; t <= L; t++) {
      const g = gaussianRowsAt(net, t, rowCount, rng);
      const mask = t === L ? null : sweep.states[t].mask;
      rows.push({ t, g, bound: await relaxedChangeBounds(sweep, t, g, rowCount, mask) });
    }
    // Directions: random ones, and for each row the direction that increases it fastest
    // (finite-difference gradient), where the bound is most likely to be reached.
    const directions: Float64Array[] = Array.from({ length: 150 }, unit);
    const h = 1e-6;
    for (const { t, g } of rows.slice(-2)) {
      const width = g.length / rowCount;
      for (let b = 0; b < rowCount; b++) {
        const gradient = new Float64Array(n);
        const base = nominalAt(t);
        for (let i = 0; i < n; i++) {
          const x = Float64Array.from(x0);
          x[i] += h;
          const v = valuesAt(x, t);
          let s = 0;
          for (let k = 0; k < width; k++) s += g[b * width + k] * (v[k] - base[k]);
          gradient[i] = s / h;
        }
        const s = Math.hypot(...gradient);
        if (s > 0) directions.push(gradient.map((v) => v / s));
      }
    }
    let checked = 0;
    const violations: string[] = [];
    for (const [k, d] of directions.entries()) {
      const r = k % 3 === 0 ? eps * rng.uniform() : eps;
      const x = Float64Array.from(x0, (v, i) => v + r * d[i]);
      const pass = forward64(net, x);
      // Pre-activation intervals of every affine layer.
      net.layers.forEach((layer, l) => {
        const lower = sweep.states[l].preActivationLower;
        const upper = sweep.states[l].preActivationUpper;
        if (!lower || !upper) return;
        const y = pass.preActivations[l]!;
        for (let i = 0; i < y.length; i++) {
          const slack = 1e-5 * (1 + Math.abs(y[i]));
          if (y[i] < lower[i] - slack || y[i] > upper[i] + slack) violations.push(`layer ${l} unit ${i}: ${y[i]} outside [${lower[i]}, ${upper[i]}]`);
        }
      });
      for (const { t, g, bound } of rows) {
        const width = g.length / rowCount;
        const v = combinedInput(pass, t);
        const base = nominalAt(t);
        for (let b = 0; b < rowCount; b++) {
          let change = 0;
          let scale = 0;
          for (let i = 0; i < width; i++) {
            change += g[b * width + i] * (v[i] - base[i]);
            scale += Math.abs(g[b * width + i] * base[i]);
          }
          if (change > bound[b] + 1e-5 * (1 + scale)) violations.push(`row ${b} at layer ${t}: change ${change} above ${bound[b]}`);
          checked++;
        }
      }
    }
    expect(violations.slice(0, 5)).toEqual([]);
    expect(checked).toBeGreaterThan(1000);
  });
});

/** A conv–max pool–dense network on a [1, 2, 2] input: its ball is small enough to grid. */
function tinyConvNet(): Network {
  const c1 = conv([1, 2, 2], 4, [1, 1]);
  const p1 = maxpool(c1.outputShape as [number, number, number], [2, 2], [1, 1], [0, 0, 1, 1]);
  const f = flatten(p1.outputShape);
  return network([c1, p1, f, dense(f.outputShape[0], 6), dense(6, 3, false)]);
}

/** Points of a grid over the ball of radius eps around x0 (k per axis, inside the ball only). */
function ballGrid(x0: Float32Array, eps: number, k: number): Float64Array[] {
  const n = x0.length;
  const points: Float64Array[] = [];
  const index = new Array(n).fill(0);
  for (;;) {
    const offset = index.map((i) => eps * (-1 + (2 * i) / (k - 1)));
    if (Math.hypot(...offset) <= eps) points.push(Float64Array.from(x0, (v, j) => v + offset[j]));
    let d = 0;
    while (d < n && ++index[d] === k) index[d++] = 0;
    if (d === n) return points;
  }
}

describe.each([
  ['MLP 2-16-16-16-4 (PyTorch initialisation)', () => torchMlp([2, 16, 16, 16, 4], 21), 2, 241],
  ['conv, max pool, dense on a 2x2 image', tinyConvNet, 4, 21],
] as [string, () => Network, number, number][])('%s: against the maximum over a grid of the ball', (_name, build, n, k) => {
  const net = build();
  const x0 = randomInput(n, 8);
  const L = net.layers.length;
  test.each([0.05, 0.3])('eps %p', async (eps) => {
    const nominal = await nominalPass(net, backend, x0);
    const solver = new SpectralSolver(backend, { tolerance: 1e-9, maxIterations: 5000 });
    const sweep = await tightSweep(net, backend, nominal, eps, solver);
    solver.dispose();
    const passes = ballGrid(x0, eps, k).map((x) => forward64(net, x));
    const reference = forward64(net, x0);
    const rng = new Rng(5);
    let below = 0;
    let compared = 0;
    for (let t = 1; t <= L; t++) {
      const count = 8;
      const g = gaussianRowsAt(net, t, count, rng);
      const width = g.length / count;
      const bound = await relaxedChangeBounds(sweep, t, g, count, t === L ? null : sweep.states[t].mask);
      const base = t === L ? reference.logits : reference.inputs[t];
      for (let b = 0; b < count; b++) {
        let max = -Infinity;
        for (const pass of passes) {
          const v = t === L ? pass.logits : pass.inputs[t];
          let change = 0;
          for (let i = 0; i < width; i++) change += g[b * width + i] * (v[i] - base[i]);
          max = Math.max(max, change);
        }
        compared++;
        if (bound[b] < max - 1e-6 * (1 + Math.abs(max))) below++;
      }
    }
    expect(below).toBe(0);
    expect(compared).toBe(8 * L);
  });
});
