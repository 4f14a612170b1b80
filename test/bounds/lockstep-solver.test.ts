/**
 * LockstepSpectralSolver (bounds/lockstep-solver.ts) in the unchanged bound pipeline: its norms
 * equal SpectralSolver's, and `together` — the ε values of one image as concurrent local bounds,
 * or several images — gives every bound of that ε or image computed alone, paper and tight
 * methods, with the layers' norms solved in shared lock-step blocks.
 */
import { afterAll, expect, test } from '@jest/globals';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { localBound, nominalPass, SpectralSolver } from '../../src/bounds/layer-bounds.js';
import { LockstepSpectralSolver } from '../../src/bounds/lockstep-solver.js';
import { tightLocalBound } from '../../src/bounds/tight/index.js';
import type { NormSolver } from '../../src/bounds/norms.js';
import { topTwo } from '../../src/bounds/certify.js';
import { loadInputFile } from '../../src/model/input.js';
import { size } from '../../src/model/ir.js';
import { importOnnxFile } from '../../src/model/onnx-import.js';
import { everyKindNetwork } from '../helpers/random-networks.js';
import { fixture, MNIST_NORM } from '../helpers/fixtures.js';
import { describeEachBackend } from '../backend/backends.js';
import { relativeDifference } from './lockstep-cases.js';

const EPS = [0.001, 0.01, 0.1, 1];

describeEachBackend((backend) => {
  const settings = () => ({ tolerance: backend().name === 'cpu' ? 1e-9 : 1e-6, maxIterations: 3000 });
  const agree = () => (backend().name === 'cpu' ? 1e-6 : 1e-4);

  test('every ε of a list, bounded together, equals that ε bounded alone (paper and tight methods)', async () => {
    const network = everyKindNetwork();
    const x0 = Float32Array.from({ length: size(network.inputShape) }, (_, i) => Math.sin(i));
    await backend().prepare(network);
    const nominal = await nominalPass(network, backend(), x0);
    const { cls } = topTwo(nominal.logits);
    const solver = new LockstepSpectralSolver(backend(), settings());
    const paper = await solver.together(EPS.map((eps) => (s: NormSolver) => localBound(network, backend(), nominal, eps, s)));
    const tight = await solver.together(EPS.map((eps) => (s: NormSolver) => tightLocalBound(network, backend(), nominal, eps, s, cls)));
    // Layers were solved in blocks of several ε.
    expect(Math.max(...solver.batches)).toBe(EPS.length);
    solver.dispose();
    for (const [i, eps] of EPS.entries()) {
      const alone = new SpectralSolver(backend(), settings());
      const p = await localBound(network, backend(), nominal, eps, alone);
      const t = await tightLocalBound(network, backend(), nominal, eps, alone, cls);
      alone.dispose();
      expect(relativeDifference(paper[i].bound, p.bound)).toBeLessThanOrEqual(agree());
      expect(relativeDifference(tight[i].bound, t.bound)).toBeLessThanOrEqual(agree());
      expect(paper[i].quality).toBe('estimate');
      paper[i].layers.forEach((layer, l) => expect(relativeDifference(layer.bound, p.layers[l].bound)).toBeLessThanOrEqual(agree()));
    }
  });

  test('MNIST fixture: three images together, each equal to its bound alone; norm() alone equals SpectralSolver', async () => {
    const network = importOnnxFile(fixture('mnist_lenet.onnx'));
    await backend().prepare(network);
    const images = ['mnist_lenet_x0.npy', 'mnist_2.png', 'mnist_3.png'].map((f) => loadInputFile(fixture(f), network, MNIST_NORM));
    const nominals = await Promise.all(images.map((x0) => nominalPass(network, backend(), x0)));
    const solver = new LockstepSpectralSolver(backend(), settings());
    const together = await solver.together(nominals.map((nominal) => (s: NormSolver) => localBound(network, backend(), nominal, 0.01, s)));
    expect(solver.batches.some((b) => b === 3)).toBe(true);
    const single = new LockstepSpectralSolver(backend(), settings());
    for (const [i, nominal] of nominals.entries()) {
      const alone = new SpectralSolver(backend(), settings());
      const reference = await localBound(network, backend(), nominal, 0.01, alone);
      alone.dispose();
      const one = await localBound(network, backend(), nominal, 0.01, single);
      expect(relativeDifference(together[i].bound, reference.bound)).toBeLessThanOrEqual(agree());
      expect(relativeDifference(one.bound, reference.bound)).toBeLessThanOrEqual(agree());
    }
    expect(single.batches.every((b) => b === 1)).toBe(true);
    solver.dispose();
    single.dispose();
  });
});

const cpu = createCpuBackend();
afterAll(() => cpu.dispose());

test('a failing task rejects, the others finish, and the solver stays usable', async () => {
  const network = everyKindNetwork();
  const x0 = new Float32Array(size(network.inputShape)).fill(0.5);
  const nominal = await nominalPass(network, cpu, x0);
  const solver = new LockstepSpectralSolver(cpu, { tolerance: 1e-8, maxIterations: 1000 });
  const failing = async () => {
    throw new Error('task failed');
  };
  await expect(solver.together([(s) => localBound(network, cpu, nominal, 0.1, s), failing])).rejects.toThrow('task failed');
  const after = await solver.together([(s) => localBound(network, cpu, nominal, 0.1, s)]);
  expect(after[0].bound).toBeGreaterThan(0);
  solver.dispose();
});
