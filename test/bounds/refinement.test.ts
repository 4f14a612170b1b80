/**
 * The refinement stage of the certified radius (docs/tightness.md §6) where the fast sweeps leave
 * units without per-unit bounds (layers with more than MAX_LINEARISED_UNITS units that may switch): its
 * full sweeps search on estimates, and one full sweep with fresh certificates certifies what they
 * found, so the stage adds one certifying evaluation's failure probability; the radius grows past the
 * fast one and no sampled point of the ball, nor a PGD attack, changes the class inside it.
 */
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { certify } from '../../src/bounds/certify.js';
import { REFINEMENT_TOLERANCE, refineRadius } from '../../src/bounds/methods.js';
import type { NetworkBound } from '../../src/bounds/types.js';
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
  const refined = await certify(net, x0, backend, { eps: [], radius: true, seed: 5, branchBudget: 5 });
  const stage = refined.radius!.refinement!;
  expect(stage.fastRadius).toBe(fast.radius!.local);
  expect(stage.evaluations).toBeGreaterThanOrEqual(3); // the search's full sweeps and the certifying one
  expect(refined.radius!.local).toBeGreaterThan(1.05 * stage.fastRadius); // measured: 0.1457 → 0.1752
  expect(refined.radius!.quality).toBe('upper');
  // Fast stage and the refinement's one certifying sweep, then each branching try's sweep: the
  // union grows by one sweep's probability per certifying evaluation, not per search sweep.
  const perSweep = fast.radius!.failureProbability!;
  expect(perSweep).toBeGreaterThan(0);
  expect(refined.radius!.failureProbability! - perSweep).toBeLessThanOrEqual((1 + (stage.branchAttempts ?? 0)) * perSweep * (1 + 1e-9));
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

/** A criterion ratio growing as (ε/root)^power: a bound whose `bound` field carries its ε. */
function powerLaw(root: number, power: number) {
  const calls: { eps: number; certify: boolean }[] = [];
  const ratio = (eps: number) => (eps / root) ** power;
  return {
    calls,
    stage: {
      certifies: true,
      evaluate: async (eps: number, certify: boolean) => {
        calls.push({ eps, certify });
        // Certified bounds sit a little above the estimates (KW's inflation).
        return { bound: eps * (certify ? 1.002 : 1), quality: certify ? 'upper' : 'estimate', layers: [], seconds: 0 } as NetworkBound;
      },
      criterion: (bound: NetworkBound) => ratio(bound.bound),
      // The largest ε' ≤ ε the bound passes at: the ratio form, ε/ratio^(1/power) capped at ε.
      within: (bound: NetworkBound, eps: number) => Math.min(eps, (eps / Math.pow(ratio(bound.bound), 1 / power)) * (1 - 1e-6)),
    },
  };
}

test.each([
  [0.0098, 0.0288, 4.9], // CIFAR-10's shape: room of a factor 2.9, a steep criterion
  [0.1457, 0.177, 3],
  [1, 1.5, 1],
])('refineRadius from %p toward a root at %p (power %p): searches on estimates, certifies once, lands within the tolerances below the root', async (start, root, power) => {
  const { calls, stage } = powerLaw(root, power);
  const result = await refineRadius(start, performance.now() + 60_000, stage);
  expect(calls.filter((c) => c.certify)).toHaveLength(1);
  expect(calls[calls.length - 1].certify).toBe(true); // the certifying sweep comes last
  expect(calls.length).toBeLessThanOrEqual(8);
  expect(result.completed).toBe(true);
  expect(result.eps).toBeLessThan(root);
  expect(result.eps).toBeGreaterThan(root * (1 - 2 * REFINEMENT_TOLERANCE - 0.01));
  expect(result.evaluations).toBe(calls.length);
});

test('refineRadius: no search where the first full sweep promises little, and never below the fast radius', async () => {
  const little = powerLaw(0.1 * 1.03, 1);
  const flat = await refineRadius(0.1, performance.now() + 60_000, little.stage);
  expect(little.calls).toHaveLength(1); // 3% of room: under REFINEMENT_MIN_ROOM
  expect(flat).toMatchObject({ eps: 0.1, bound: null, completed: true });
  const failing = powerLaw(0.09, 1); // the full sweep fails where the fast one passed
  const none = await refineRadius(0.1, performance.now() + 60_000, failing.stage);
  expect(none.eps).toBe(0.1);
  expect(failing.calls.filter((c) => c.certify)).toHaveLength(0);
});
