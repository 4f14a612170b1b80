/**
 * The backward passes' reused row block (src/bounds/tight/sweep.ts, RowScratch): a pass on a sweep
 * whose scratch holds an earlier pass's rows (larger, dense) gives the same bounds to the bit as on a
 * fresh scratch, for the relaxation's passes (§5) and the linearisation's (§4). Sparse rows after
 * dense ones catch an entry left from the earlier pass (the relaxation skips zeros), on the MNIST
 * fixture, a network of every layer kind and a residual graph.
 */
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { nominalPass, SpectralSolver } from '../../src/bounds/layer-bounds.js';
import { prefixChangeBounds } from '../../src/bounds/tight/backward.js';
import { type Sweep, tightSweep } from '../../src/bounds/tight/index.js';
import { LOWER_SLOPES, relaxedChangeSplit } from '../../src/bounds/tight/relaxation.js';
import { type Network, size } from '../../src/model/ir.js';
import { Rng } from '../../src/random.js';
import { GRAPH_NETWORKS } from '../helpers/graph-networks.js';
import { gaussianRowsAt } from '../helpers/random-networks.js';
import { loadFixture, TABLE_III_IMAGES } from './fixtures.js';
import { everyLayerNetwork, randomInput } from './small-networks.js';

const backend = createCpuBackend();
afterAll(() => backend.dispose());

const mnist = TABLE_III_IMAGES.filter((f) => f.model === 'mnist_lenet')[0];
const residual = GRAPH_NETWORKS[0];
const cases: [string, () => Promise<{ network: Network; x0: Float32Array }>, number][] = [
  ['MNIST fixture', () => loadFixture(mnist), 0.18],
  ['every layer kind', async () => { const network = everyLayerNetwork(11); return { network, x0: randomInput(size(network.inputShape), 5) }; }, 0.2],
  [`graph: ${residual[0]}`, async () => { const network = residual[1](3); return { network, x0: randomInput(size(network.inputShape), 5) }; }, 0.2],
];

function sparse(block: Float32Array, rng: Rng): Float32Array {
  return block.map((v) => (rng.uniform() < 0.9 ? 0 : v));
}

describe.each(cases)('reused row block: %s', (_name, load, eps) => {
  it('a pass after a larger dense one gives the bounds of a fresh scratch, to the bit', async () => {
    const { network, x0 } = await load();
    await backend.prepare(network);
    const nominal = await nominalPass(network, backend, x0);
    const solver = new SpectralSolver(backend, { tolerance: 1e-6, maxIterations: 2000 });
    const sweep: Sweep = await tightSweep(network, backend, nominal, eps, solver, undefined, { refinement: 'radius' });
    const rng = new Rng(17);
    const L = network.layers.length;
    for (let l = 1; l <= L; l++) {
      // The earlier pass: dense rows, more of them, from the output (the widest blocks reach the scratch).
      const before = gaussianRowsAt(network, L, 12, rng);
      await relaxedChangeSplit(sweep, L, before, 12, null, LOWER_SLOPES);
      const count = 5;
      const rows = sparse(gaussianRowsAt(network, l, count, rng), rng);
      const reused = await relaxedChangeSplit(sweep, l, rows, count, null, LOWER_SLOPES);
      const fresh = await relaxedChangeSplit({ ...sweep, scratch: { block: null } }, l, rows, count, null, LOWER_SLOPES);
      expect(Array.from(reused.best)).toEqual(Array.from(fresh.best));
      expect(Array.from(reused.floor)).toEqual(Array.from(fresh.floor));
      expect(Array.from(reused.inputOffset)).toEqual(Array.from(fresh.inputOffset));
      expect(Array.from(reused.inputClosure)).toEqual(Array.from(fresh.inputClosure));
      await relaxedChangeSplit(sweep, L, before, 12, null, LOWER_SLOPES);
      const prefixReused = await prefixChangeBounds(sweep, l, rows, count, null);
      const prefixFresh = await prefixChangeBounds({ ...sweep, scratch: { block: null } }, l, rows, count, null);
      expect(Array.from(prefixReused)).toEqual(Array.from(prefixFresh));
    }
    // The passes did go through the scratch (a network with an activation before an affine layer).
    expect(sweep.scratch.block?.length).toBeGreaterThan(0);
    solver.dispose();
  });
});
