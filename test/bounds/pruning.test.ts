/**
 * Rows leaving a backward pass early (src/bounds/tight/relaxation.ts, `keep`; docs/tightness.md §5):
 * a row whose collected relaxation constants already reach its best closure stops travelling, since
 * everything later adds a non-negative amount. Checked against the same pass without it (a visitor
 * that reads the rows on the way turns it off): on the MNIST fixture near its radius and on small
 * networks of several layer kinds and graphs, every bound, floor and smaller-ball split (§8) is the
 * same to the last bit, and on the fixture rows do leave early.
 */
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { nominalPass, SpectralSolver } from '../../src/bounds/layer-bounds.js';
import { branchSweep, type Split } from '../../src/bounds/tight/branching.js';
import { type Sweep, tightSweep } from '../../src/bounds/tight/index.js';
import { LOWER_SLOPES, relaxedChangeSplit } from '../../src/bounds/tight/relaxation.js';
import { isAffine, type Network, size } from '../../src/model/ir.js';
import { Rng } from '../../src/random.js';
import { GRAPH_NETWORKS } from '../helpers/graph-networks.js';
import { torchMlp } from '../helpers/planar-networks.js';
import { gaussianRowsAt } from '../helpers/random-networks.js';
import { loadFixture, TABLE_III_IMAGES } from './fixtures.js';
import { everyLayerNetwork, randomInput } from './small-networks.js';

const backend = createCpuBackend();
afterAll(() => backend.dispose());

const mnist = TABLE_III_IMAGES.filter((f) => f.model === 'mnist_lenet')[0];
const cases: [string, () => Promise<{ network: Network; x0: Float32Array }>, number][] = [
  ['MNIST fixture', () => loadFixture(mnist), 0.18],
  ['MLP 2-16-16-16-4 (PyTorch initialisation)', async () => ({ network: torchMlp([2, 16, 16, 16, 4], 21), x0: Float32Array.from([0.3, -0.4]) }), 0.5],
  ['every layer kind', async () => { const network = everyLayerNetwork(11); return { network, x0: randomInput(size(network.inputShape), 5) }; }, 0.2],
  ...GRAPH_NETWORKS.map(([name, build]): [string, () => Promise<{ network: Network; x0: Float32Array }>, number] => [`graph: ${name}`, async () => { const network = build(3); return { network, x0: randomInput(size(network.inputShape), 5) }; }, 0.2]),
];

/** Passes from the output and from every layer after the first, with and without rows leaving early: the same to the bit. */
async function compare(network: Network, sweep: Sweep, rng: Rng): Promise<{ rows: number; leftEarly: number }> {
  const L = network.layers.length;
  let rows = 0;
  let leftEarly = 0;
  // From the output and from every layer after the first, random rows at the layer's combined input.
  for (let l = 1; l <= L; l++) {
    const count = 6;
    const block = gaussianRowsAt(network, l, count, rng);
    const pruned = await relaxedChangeSplit(sweep, l, block, count, null, LOWER_SLOPES);
    const full = await relaxedChangeSplit(sweep, l, block, count, null, LOWER_SLOPES, () => {});
    expect(Array.from(pruned.best)).toEqual(Array.from(full.best));
    expect(Array.from(pruned.floor)).toEqual(Array.from(full.floor));
    for (let b = 0; b < pruned.best.length; b++) {
      rows++;
      if (Number.isNaN(pruned.inputOffset[b])) {
        leftEarly++;
        continue;
      }
      expect(pruned.inputOffset[b]).toBe(full.inputOffset[b]);
      expect(pruned.inputClosure[b]).toBe(full.inputClosure[b]);
    }
    // The split for smaller balls: min(floor, offset + s·closure) is the same where a row left early.
    for (const s of [0.1, 0.5, 1]) {
      const line = (r: typeof full, b: number) => Math.min(r.floor[b], Number.isNaN(r.inputOffset[b]) ? Infinity : r.inputOffset[b] + s * r.inputClosure[b]);
      for (let b = 0; b < full.best.length; b++) expect(line(pruned, b)).toBe(line(full, b));
    }
  }
  return { rows, leftEarly };
}

async function sweepOf(network: Network, x0: Float32Array, eps: number) {
  const nominal = await nominalPass(network, backend, x0);
  const solver = new SpectralSolver(backend, { tolerance: 1e-9, maxIterations: 5000 });
  const sweep = await tightSweep(network, backend, nominal, eps, solver, undefined, { refinement: 'radius' });
  solver.dispose();
  return { nominal, sweep };
}

test.each(cases)('%s: the passes with rows leaving early give the same bounds to the bit', async (name, load, eps) => {
  const { network, x0 } = await load();
  const { sweep } = await sweepOf(network, x0, eps);
  const { rows, leftEarly } = await compare(network, sweep, new Rng(13));
  expect(rows).toBeGreaterThan(0);
  if (name === 'MNIST fixture') expect(leftEarly).toBeGreaterThan(0);
});

test('in branches (split units may carry offsets of the other sign, §7) rows leave early only below them, with the same bounds to the bit', async () => {
  const { network, x0 } = await loadFixture(mnist);
  const { nominal, sweep } = await sweepOf(network, x0, 0.25);
  // Units that may switch in the affine+ReLU layers after the first, one per layer from the back: splitting them
  // forces some against their nominal sign, which gives them offsets of the other sign.
  const chosen: { layer: number; unit: number }[] = [];
  for (let l = network.layers.length - 1; l > 0 && chosen.length < 3; l--) {
    const layer = network.layers[l];
    const interval = sweep.states[l].reluInterval;
    if (!isAffine(layer) || !layer.relu || !interval) continue;
    const unit = Array.from(interval.lower).findIndex((v, i) => v < 0 && interval.upper[i] > 0);
    if (unit >= 0) chosen.push({ layer: l, unit });
  }
  expect(chosen.length).toBeGreaterThanOrEqual(2);
  let branches = 0;
  let leftEarly = 0;
  for (let signs = 0; signs < 1 << chosen.length; signs++) {
    const splits: Split[] = chosen.map((c, k) => ({ ...c, active: ((signs >> k) & 1) === 1 }));
    const branch = await branchSweep(sweep, nominal, splits);
    if (!branch) continue;
    branches++;
    leftEarly += (await compare(network, branch, new Rng(signs))).leftEarly;
  }
  expect(branches).toBeGreaterThan(0);
  expect(leftEarly).toBeGreaterThan(0);
});
