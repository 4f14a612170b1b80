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
import { tightSweep } from '../../src/bounds/tight/index.js';
import { LOWER_SLOPES, relaxedChangeSplit } from '../../src/bounds/tight/relaxation.js';
import { type Network, size } from '../../src/model/ir.js';
import { Rng } from '../../src/random.js';
import { GRAPH_NETWORKS } from '../helpers/graph-networks.js';
import { torchMlp } from '../helpers/planar-networks.js';
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

test.each(cases)('%s: the passes with rows leaving early give the same bounds to the bit', async (name, load, eps) => {
  const { network, x0 } = await load();
  const nominal = await nominalPass(network, backend, x0);
  const solver = new SpectralSolver(backend, { tolerance: 1e-9, maxIterations: 5000 });
  const sweep = await tightSweep(network, backend, nominal, eps, solver, undefined, { refinement: 'radius' });
  solver.dispose();
  const rng = new Rng(13);
  const L = network.layers.length;
  let rows = 0;
  let leftEarly = 0;
  // From the output and from every layer after the first, random rows at the layer's combined input.
  for (let l = 1; l <= L; l++) {
    const width = l === L ? size(network.outputShape) : size(network.layers[l].inputShape);
    const count = 6;
    const block = Float32Array.from({ length: count * width }, () => rng.gaussian());
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
  expect(rows).toBeGreaterThan(0);
  if (name === 'MNIST fixture') expect(leftEarly).toBeGreaterThan(0);
});
