/**
 * analyse(): one pipeline, one progress model, one cancellation rule. On the MNIST fixture (the
 * paper's method with estimates, small search budgets): progress goes from 0 to 1 without going
 * back, through certify()'s phases, then 'lower', then 'attack', with one 'done' at the end; the
 * result carries every part and says how it was obtained; aborting during the search rejects with
 * a CancelledError; the searches give the entries of their own library calls.
 */
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { analyse, type AnalysisProgress } from '../../src/analysis/analyse.js';
import { attacks } from '../../src/bounds/attacks.js';
import { PAPER_REPRODUCTION } from '../../src/bounds/defaults.js';
import { lowerBounds } from '../../src/bounds/lower.js';
import { CancelledError } from '../../src/errors.js';
import { loadInputFile } from '../../src/model/input.js';
import { importOnnxFile } from '../../src/model/onnx-import.js';
import { fixture, MNIST_NORM } from '../helpers/fixtures.js';

const network = importOnnxFile(fixture('mnist_lenet.onnx'));
const x0 = loadInputFile(fixture('mnist_8.png'), network, MNIST_NORM);
const backend = createCpuBackend();
afterAll(() => backend.dispose());
const LOWER = { samples: 10, restarts: 1, steps: 5 };
const ATTACKS = { methods: ['fgsm', 'pgd'] as ('fgsm' | 'pgd')[], steps: 5 };

test('progress from 0 to 1 through certify, lower, attack, done; the result has every part', async () => {
  const events: AnalysisProgress[] = [];
  const result = await analyse(network, x0, backend, { ...PAPER_REPRODUCTION, eps: [0.001, 0.01], radius: true, seed: 4, lower: LOWER, attacks: ATTACKS, onProgress: (e) => events.push(e) });
  const fractions = events.map((e) => e.fraction);
  for (let i = 1; i < fractions.length; i++) expect(fractions[i]).toBeGreaterThanOrEqual(fractions[i - 1]);
  expect(fractions[0]).toBeGreaterThanOrEqual(0);
  expect(events.at(-1)).toMatchObject({ phase: 'done', fraction: 1 });
  expect(events.filter((e) => e.phase === 'done')).toHaveLength(1);
  // Phases in pipeline order, each entered once.
  const order = events.map((e) => e.phase).filter((p, i, all) => p !== all[i - 1]);
  expect(order).toEqual(['prepare', 'global', 'local', 'radius', 'lower', 'attack', 'done']);
  // Units: global 1, two eps, radius 2, the search one per eps, one per attack: 9 in all.
  expect(events.find((e) => e.phase === 'lower')!.fraction).toBeCloseTo(5 / 9, 12);
  expect(events.find((e) => e.phase === 'attack')!.fraction).toBeCloseTo(7 / 9, 12);

  expect(result).toMatchObject({ method: 'paper', certificate: 'estimate', seed: 4 });
  expect(result.delta).toBeUndefined();
  expect(result.failureProbability).toBeUndefined();
  expect(result.local.map((l) => l.eps)).toEqual([0.001, 0.01]);
  expect(result.radius!.local).toBeGreaterThan(0);
  // The searches, one ε and one attack at a time, give what one library call gives.
  const lower = await lowerBounds(network, x0, backend, { eps: [0.001, 0.01], ...LOWER, seed: 4 });
  expect(result.lowerBounds).toEqual(lower.lower.map((l) => ({ ...l, seconds: expect.any(Number) })));
  const attacked = await attacks(network, x0, backend, ATTACKS);
  expect(result.attacks!.map((a) => [a.method, a.perturbation])).toEqual(attacked.attacks.map((a) => [a.method, a.perturbation]));
});

test('the defaults: the tight method with probabilistic certificates, and the union bound over the result', async () => {
  const result = await analyse(network, x0, backend, { eps: [0.01], global: true, seed: 2 });
  expect(result).toMatchObject({ method: 'tight', certificate: 'probabilistic', delta: 1e-3 });
  expect(result.local[0].quality).toBe('upper');
  expect(result.failureProbability).toBeCloseTo(result.global!.failureProbability! + result.local[0].failureProbability!, 15);
  expect(result.failureProbability).toBeGreaterThan(0);
});

test('aborting during the search rejects with a CancelledError', async () => {
  const controller = new AbortController();
  const run = analyse(network, x0, backend, {
    ...PAPER_REPRODUCTION,
    eps: [0.001, 0.01],
    lower: { samples: 100_000, restarts: 1, steps: 5 },
    signal: controller.signal,
    onProgress: (e) => {
      if (e.phase === 'lower') controller.abort();
    },
  });
  await expect(run).rejects.toBeInstanceOf(CancelledError);
});

test('lower bounds need an eps', async () => {
  await expect(analyse(network, x0, backend, { ...PAPER_REPRODUCTION, eps: [], radius: true, lower: {} })).rejects.toThrow(/lower bounds are searched at the eps of the analysis/);
});
