/**
 * Attacks: on a linear classifier the smallest L2 perturbation that changes the class is known in
 * closed form, min_j (f_c − f_j)(x0) / ||w_c − w_j||; no attack may beat it and PGD must reach it.
 * On MNIST image 8 each attack's point is confirmed by a forward pass.
 */
import { createBackend } from '../../src/backend/select.js';
import type { Backend } from '../../src/backend/backend.js';
import { attackAt, attacks } from '../../src/bounds/attacks.js';
import { evaluate } from '../../src/bounds/backprop.js';
import { topTwo } from '../../src/bounds/certify.js';
import { distance } from '../../src/bounds/sampling.js';
import { LipcertError } from '../../src/errors.js';
import type { DenseLayer } from '../../src/model/ir.js';
import { loadFixture, TABLE_III_IMAGES } from './fixtures.js';
import { linearClassifier, randomInput } from './small-networks.js';

let backend: Backend;
beforeAll(async () => {
  backend = await createBackend('cpu');
});
afterAll(async () => backend.dispose());

describe('attacks', () => {
  test('on a linear classifier: none beats the exact minimal perturbation, PGD reaches it', async () => {
    const [n, k] = [30, 5];
    const network = linearClassifier(21, n, k);
    const { weight } = network.layers[0] as DenseLayer;
    const x0 = randomInput(n, 22);
    const f0 = await evaluate(network, backend, x0);
    const c = topTwo(f0).cls;
    let exact = Infinity;
    for (let j = 0; j < k; j++) {
      if (j === c) continue;
      let w2 = 0;
      for (let i = 0; i < n; i++) w2 += (weight[c * n + i] - weight[j * n + i]) ** 2;
      exact = Math.min(exact, (f0[c] - f0[j]) / Math.sqrt(w2));
    }
    const result = await attacks(network, x0, backend, { steps: 30, tolerance: 1e-3 });
    expect(result.class).toBe(c);
    expect(result.attacks.map((a) => a.method)).toEqual(['fgsm', 'ifgsm', 'pgd']);
    for (const a of result.attacks) {
      expect(a.kind).toBe('upper');
      expect(a.perturbation).not.toBeNull();
      expect(a.adversarialClass).not.toBe(c);
      expect(a.perturbation!).toBeGreaterThanOrEqual(exact * (1 - 1e-5));
    }
    const pgd = result.attacks.find((a) => a.method === 'pgd')!;
    expect(pgd.perturbation!).toBeLessThan(exact * 1.01);
  });

  test('on MNIST image 8 every attack changes the class, confirmed by a forward pass', async () => {
    const { network, x0 } = await loadFixture(TABLE_III_IMAGES[0]);
    const result = await attacks(network, x0, backend, { steps: 10, tolerance: 0.05 });
    expect(result.class).toBe(8);
    for (const a of result.attacks) {
      expect(a.perturbation).not.toBeNull();
      expect(a.adversarialClass).not.toBe(8);
      expect(a.perturbationLinf!).toBeLessThanOrEqual(a.perturbation!);
    }
    // Re-run PGD at a size just above the one reported: the point it returns is adversarial and its
    // class is what a fresh forward pass gives.
    const pgd = result.attacks.find((a) => a.method === 'pgd')!;
    const run = await attackAt(network, x0, backend, 'pgd', pgd.perturbation! * 1.1, { steps: 10 });
    expect(run.adversarial).not.toBeNull();
    expect(distance(run.adversarial!, x0)).toBeLessThanOrEqual(pgd.perturbation! * 1.1);
    expect(topTwo(await evaluate(network, backend, run.adversarial!)).cls).toBe(run.adversarialClass);
    expect(run.adversarialClass).not.toBe(8);
  });

  test('reports null where a method finds nothing within its budget', async () => {
    // A constant classifier: no perturbation changes its class.
    const network = linearClassifier(3, 6, 3);
    const layer = network.layers[0] as DenseLayer;
    layer.weight.fill(0);
    layer.bias.set([1, 0, 0]);
    const result = await attacks(network, randomInput(6, 3), backend, { maxRuns: 8 });
    for (const a of result.attacks) {
      expect(a.perturbation).toBeNull();
      expect(a.adversarialClass).toBeNull();
    }
  });

  test.each([
    [{ methods: ['cw' as 'pgd'] }, /unknown attack 'cw'/],
    [{ steps: 0 }, /steps must be a positive integer/],
    [{ tolerance: 2 }, /tolerance must be in \(0, 1\)/],
  ])('rejects bad options %#', async (options, message) => {
    const run = attacks(linearClassifier(1, 4, 2), randomInput(4, 1), backend, options);
    await expect(run).rejects.toThrow(LipcertError);
    await expect(run).rejects.toThrow(message);
  });
});
