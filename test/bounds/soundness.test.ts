/**
 * Soundness on every Table III fixture image: a lower bound found by search never exceeds the local
 * bound, the local bound never exceeds the global one, and no attack changes the class inside the
 * certified radius (Proposition 6). Budgets are small to keep the suite fast; soundness must hold
 * for any budget.
 */
import { createBackend } from '../../src/backend/select.js';
import type { Backend } from '../../src/backend/backend.js';
import { attackAt, attacks } from '../../src/bounds/attacks.js';
import { certify } from '../../src/bounds/certify.js';
import { PAPER_REPRODUCTION } from '../../src/bounds/defaults.js';
import { lowerBounds } from '../../src/bounds/lower.js';
import { loadFixture, TABLE_III_IMAGES } from './fixtures.js';

let backend: Backend;
beforeAll(async () => {
  backend = await createBackend('cpu');
});
afterAll(async () => backend.dispose());

describe.each(TABLE_III_IMAGES)('soundness on $model image $image', (fixture) => {
  const small = fixture.model === 'cifar10_net'; // about ten times the work per pass
  const eps = small ? [0.001, 0.1] : [0.001, 0.1, 1];

  test('lower bound <= local bound <= global bound, and no attack succeeds inside the certified radius', async () => {
    const { network, x0 } = await loadFixture(fixture);
    const certified = await certify(network, x0, backend, { ...PAPER_REPRODUCTION, eps, radius: true, tolerance: 1e-4, radiusTolerance: small ? 5e-2 : 1e-2 });
    const lower = await lowerBounds(network, x0, backend, small ? { eps, restarts: 1, steps: 5, samples: 4 } : { eps, restarts: 1, steps: 15, samples: 20 });
    const global = certified.global!.bound;
    for (const l of lower.lower) {
      const local = certified.local.find((b) => b.eps === l.eps)!.bound;
      expect(l.bound).toBeGreaterThan(0);
      expect(l.bound).toBeLessThanOrEqual(local);
      expect(local).toBeLessThanOrEqual(global);
    }

    const radius = certified.radius!.local;
    expect(radius).toBeGreaterThan(0);
    const found = await attacks(network, x0, backend, small ? { steps: 3, tolerance: 0.3 } : { steps: 10, tolerance: 0.05 });
    for (const a of found.attacks) {
      expect(a.perturbation).not.toBeNull(); // each attack does find an adversarial point...
      expect(a.perturbation!).toBeGreaterThan(radius); // ...but only outside the certified ball
    }
    // Attacks run with the whole certified ball as budget: PGD's L2 ball of radius r, and the
    // largest L∞ box inside it for iterative FGSM.
    const pgd = await attackAt(network, x0, backend, 'pgd', radius, { steps: small ? 5 : 20 });
    expect(pgd.adversarial).toBeNull();
    const ifgsm = await attackAt(network, x0, backend, 'ifgsm', radius / Math.sqrt(x0.length), { steps: small ? 5 : 20 });
    expect(ifgsm.adversarial).toBeNull();
  });
});
