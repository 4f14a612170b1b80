/**
 * A certified run's radius search runs on estimates converged to SEARCH_ESTIMATE_TOLERANCE (1e-4)
 * instead of the user's 1e-6 (src/bounds/methods.ts): they only choose where the one certified
 * evaluation goes. The radius that evaluation certifies stays what a fully converged search gives,
 * to far inside the search's own 1% (CERTIFIED_SEARCH_TOLERANCE), and it is still certified (no
 * sampled point or attack needed here: the certified evaluation is the same code either way; the
 * soundness suites cover it). An estimate run, whose search is the reported number, keeps the
 * user's tolerance.
 */
import { jest } from '@jest/globals';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { certify, topTwo } from '../../src/bounds/certify.js';
import { globalBound, nominalPass, SpectralSolver } from '../../src/bounds/layer-bounds.js';
import { CERTIFIED_SEARCH_TOLERANCE, certifiedSearch, methodOf, SEARCH_ESTIMATE_TOLERANCE, solverFor } from '../../src/bounds/methods.js';
import { certifyMargins } from '../../src/bounds/rounding.js';
import { loadDataset } from '../../src/model/dataset.js';
import { type Network, size } from '../../src/model/ir.js';
import { importOnnxFile } from '../../src/model/onnx-import.js';
import { fixture } from '../helpers/fixtures.js';
import { residualNetwork } from '../helpers/graph-networks.js';
import { torchMlp } from '../helpers/planar-networks.js';
import { convPoolNet } from '../helpers/random-networks.js';
import { everyLayerNetwork, randomInput } from './small-networks.js';

const backend = createCpuBackend();
afterAll(() => backend.dispose());

// The Fashion-MNIST CNN (fixtures/), where Lanczos needs tens of steps per norm and a loose
// tolerance shows: with search estimates at 1e-2 the radius of its test image 3 is 0.55% smaller,
// at 1e-1 those of images 0, 3 and 7 are 1.0%, 1.8% and 1.1% smaller (seed 1).
const fashion = importOnnxFile(fixture('fashion_cnn.onnx'));
const fashionImages = loadDataset(fixture('fashion_test_1000.npz'), fashion, { mean: [0.286], std: [0.353], limit: 8 });
const cases: [string, () => Network, Float32Array | null][] = [
  ['MLP 2-16-16-16-4 (PyTorch initialisation)', () => torchMlp([2, 16, 16, 16, 4], 21), Float32Array.from([0.3, -0.4])],
  ['every layer kind', () => everyLayerNetwork(11), null],
  ['graph: residual', () => residualNetwork(3), null],
  ['Fashion-MNIST CNN, test image 0', () => fashion, fashionImages.image(0)],
  ['Fashion-MNIST CNN, test image 3', () => fashion, fashionImages.image(3)],
  ['Fashion-MNIST CNN, test image 7', () => fashion, fashionImages.image(7)],
];

/** The certified radius of the default method and certificates, its search's estimates at `searchEstimateTolerance`. */
async function radiusWith(net: Network, x0: Float32Array, searchEstimateTolerance: number) {
  const settings = { tolerance: 1e-6, maxIterations: 5000 };
  const options = { seed: 1 };
  const estimator = new SpectralSolver(backend, settings);
  const solver = solverFor(backend, settings, options)!;
  const method = methodOf({ method: 'tight' });
  try {
    const nominal = await nominalPass(net, backend, x0);
    const { cls } = topTwo(nominal.logits);
    const global = method.annotate(await globalBound(net, solver));
    const { gaps } = await certifyMargins(net, backend, x0, cls, global.layers.map((l) => l.bound));
    const start = Math.min(...gaps) / (Math.SQRT2 * global.bound);
    const evaluated: number[] = [];
    const result = await certifiedSearch(method, net, backend, nominal, gaps, cls, start, estimator, solver, 1e-4, (e) => evaluated.push(e), undefined, 0, undefined, searchEstimateTolerance);
    return { ...result, evaluated };
  } finally {
    estimator.dispose();
    solver.dispose();
  }
}

describe.each(cases)('%s', (_name, build, input) => {
  const net = build();
  const x0 = input ?? randomInput(size(net.inputShape), 5);

  test('the radius from 1e-4 search estimates is the fully converged search\'s, to well inside the search tolerance', async () => {
    const converged = await radiusWith(net, x0, 0);
    const loose = await radiusWith(net, x0, SEARCH_ESTIMATE_TOLERANCE);
    expect(converged.quality).toBe('upper');
    expect(loose.quality).toBe('upper');
    expect(converged.local).toBeGreaterThan(0);
    // Both are certified (each by its own fresh certified evaluation); the estimates only moved where.
    expect(Math.abs(loose.local - converged.local)).toBeLessThanOrEqual((CERTIFIED_SEARCH_TOLERANCE / 20) * converged.local);
    // The search took no more evaluations than on converged estimates, give or take one.
    expect(loose.evaluations).toBeLessThanOrEqual(converged.evaluations + 1);
  });
});

describe('which runs loosen their search estimates', () => {
  const net = convPoolNet();
  const x0 = randomInput(size(net.inputShape), 5);

  test('a certified run searches at SEARCH_ESTIMATE_TOLERANCE, an estimate run at the user\'s tolerance', async () => {
    const spy = jest.spyOn(SpectralSolver.prototype, 'withTolerance');
    try {
      await certify(net, x0, backend, { eps: [], radius: true, certificate: 'estimate', tolerance: 1e-6 });
      expect(spy.mock.calls.map(([t]) => t)).not.toContain(SEARCH_ESTIMATE_TOLERANCE);
      spy.mockClear();
      await certify(net, x0, backend, { eps: [], radius: true, seed: 3, tolerance: 1e-6 });
      expect(spy.mock.calls.map(([t]) => t)).toContain(SEARCH_ESTIMATE_TOLERANCE);
      spy.mockClear();
      // A user's looser tolerance wins.
      await certify(net, x0, backend, { eps: [], radius: true, seed: 3, tolerance: 1e-3 });
      expect(spy.mock.calls.map(([t]) => t)).not.toContain(SEARCH_ESTIMATE_TOLERANCE);
      expect(spy.mock.calls.map(([t]) => t)).toContain(1e-3);
    } finally {
      spy.mockRestore();
    }
  });
});
