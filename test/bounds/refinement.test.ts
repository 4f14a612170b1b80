/**
 * The refinement stage of the certified radius (docs/tightness.md §6) where the fast sweeps leave
 * units without per-unit bounds (layers with more than MAX_LINEARISED_UNITS units that may switch): its
 * full sweeps search on estimates, and one full sweep with fresh certificates certifies what they
 * found, so the stage adds one certifying evaluation's failure probability; the radius grows past the
 * fast one and no sampled point of the ball, nor a PGD attack, changes the class inside it.
 */
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { certify } from '../../src/bounds/certify.js';
import { attackAt } from '../../src/bounds/attacks.js';
import { forward64 } from '../../src/model/forward64.js';
import { size } from '../../src/model/ir.js';
import { Rng } from '../../src/random.js';
import { conv, dense, flatten, network } from '../helpers/random-networks.js';
import { randomInput } from './small-networks.js';

const backend = createCpuBackend();
afterAll(() => backend.dispose());

const argmax = (v: ArrayLike<number>) => Array.from(v).reduce((best, x, i, a) => (x > a[best] ? i : best), 0);

test('a conv net whose fast sweeps leave units: the stage searches on estimates and certifies once', async () => {
  const c1 = conv([2, 20, 20], 16, [3, 3]);
  const c2 = conv(c1.outputShape as [number, number, number], 8, [3, 3]);
  const f = flatten(c2.outputShape);
  const net = network([c1, c2, f, dense(f.outputShape[0], 10, false)]);
  const x0 = randomInput(size(net.inputShape), 6);
  const fast = await certify(net, x0, backend, { eps: [], radius: true, seed: 5 });
  const refined = await certify(net, x0, backend, { eps: [], radius: true, seed: 5, branchBudget: 20 });
  const stage = refined.radius!.refinement!;
  expect(stage.fastRadius).toBe(fast.radius!.local);
  expect(stage.evaluations).toBeGreaterThanOrEqual(3); // the search's full sweeps and the certifying one
  expect(refined.radius!.local).toBeGreaterThan(1.05 * stage.fastRadius); // measured: 0.1457 → 0.1752
  expect(refined.radius!.quality).toBe('upper');
  // Fast stage and the refinement's one certifying sweep, then each branching try's sweep: the
  // union grows by one sweep's probability per certifying evaluation, not per search sweep.
  const perSweep = fast.radius!.failureProbability!;
  expect(perSweep).toBeGreaterThan(0);
  const certifying = 2 + (stage.branchAttempts ?? 0);
  expect(refined.radius!.failureProbability!).toBeLessThanOrEqual(certifying * perSweep * 1.5);
  expect(refined.radius!.failureProbability!).toBeLessThan((stage.evaluations + (stage.branchAttempts ?? 0)) * perSweep);
  // Sound: nothing inside the radius changes the class.
  const radius = refined.radius!.local;
  const cls = argmax(forward64(net, x0).logits);
  const rng = new Rng(9);
  for (let s = 0; s < 300; s++) {
    const d = Float64Array.from({ length: x0.length }, () => rng.gaussian());
    const norm = Math.hypot(...d);
    const x = Float64Array.from(x0, (v, i) => v + (radius * 0.999 * d[i]) / norm);
    expect(argmax(forward64(net, x).logits)).toBe(cls);
  }
  const attack = await attackAt(net, x0, backend, 'pgd', radius * 0.999);
  expect(attack.adversarial).toBeNull();
}, 180_000);
