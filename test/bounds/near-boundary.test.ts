/**
 * Near the decision boundary the certified radius stays sound (docs/soundness.md §2–3): MLPs on a
 * 2-D input with PyTorch's default initialisation, inputs pushed to within 1e-3 of the boundary
 * along the direction of the nearest class change, the last layer scaled by 1/8 … 8 (the same
 * decisions; every bound and margin scales alike, so the radius must not change), and the exact
 * smallest adversarial perturbation found by a grid of rays in float64: it is never inside a
 * certified radius, whatever the method and certificate. A margin below what float32 resolves is
 * reported as such and certifies nothing. The refinement and branching stages of the tight method's
 * radius are held to the same nearest adversarial.
 */
import { createBackend } from '../../src/backend/select.js';
import type { Backend } from '../../src/backend/backend.js';
import { certify } from '../../src/bounds/certify.js';
import type { CertifyOptions } from '../../src/bounds/types.js';
import type { Network } from '../../src/model/ir.js';
import { nearBoundaryInput, nearestAdversarial, torchMlp } from '../helpers/planar-networks.js';

let backend: Backend;
beforeAll(async () => {
  backend = await createBackend('cpu');
});
afterAll(async () => backend.dispose());

const CONFIGS: Partial<CertifyOptions>[] = [
  { method: 'paper', certificate: 'estimate' },
  { method: 'paper', certificate: 'probabilistic' },
  { method: 'tight', certificate: 'probabilistic' },
  { method: 'tight', certificate: 'deterministic' },
];
const SCALES = [1 / 8, 1, 8];
/** The default with the refinement stage switched on (a budget far above what it needs here). */
const REFINED: Partial<CertifyOptions> = { method: 'tight', certificate: 'probabilistic', branchBudget: 30 };

describe.each([
  [[2, 32, 32, 10], 1, [0.3, -0.2]],
  [[2, 32, 32, 10], 2, [-0.5, 0.4]],
  [[2, 16, 16, 16, 4], 3, [0.1, 0.9]],
] as [number[], number, [number, number]][])('MLP %j, seed %i', (widths, seed, start) => {
  const base = torchMlp(widths, seed);
  const x0 = nearBoundaryInput(base, start, 1e-3);
  // Scaling the logits keeps every decision: one grid search serves every scale.
  const adversarial = nearestAdversarial(base, x0, { rays: 1440 });

  test.each(CONFIGS)('%o: radius invariant to the logits\' scale, and below the nearest adversarial', async (config) => {
    expect(adversarial.distance).toBeLessThan(1.01e-3); // the input does sit near the boundary
    const radii: number[] = [];
    for (const scale of SCALES) {
      const network = torchMlp(widths, seed, scale);
      const result = await certify(network, x0, backend, { eps: [], radius: true, seed: 7, ...config });
      expect(result.radius!.marginResolved).toBe(true);
      expect(result.radius!.local).toBeGreaterThan(0);
      expect(result.radius!.local).toBeLessThan(adversarial.distance);
      radii.push(result.radius!.local);
    }
    for (const r of radii) expect(Math.abs(r - radii[1]) / radii[1]).toBeLessThan(2e-3);
  });
});

test('the exact nearest adversarial is outside the radius for inputs far from the boundary too', async () => {
  const network = torchMlp([2, 32, 32, 10], 4, 0.01); // a last layer of small norm
  const x0 = Float32Array.from([0.2, 0.1]);
  const adversarial = nearestAdversarial(network, x0, { rays: 1440 });
  for (const config of [...CONFIGS, REFINED]) {
    const result = await certify(network, x0, backend, { eps: [], radius: true, seed: 3, ...config });
    expect(result.radius!.local).toBeGreaterThan(0);
    expect(result.radius!.local).toBeLessThan(adversarial.distance);
  }
});

test('the refinement and branching stages (docs/tightness.md §6, §7) report themselves, keep at least the fast radius, and stay below the nearest adversarial', async () => {
  for (const [widths, seed, start] of [[[2, 32, 32, 10], 5, [0.4, 0.3]], [[2, 24, 24, 24, 6], 6, [-0.3, 0.2]]] as [number[], number, [number, number]][]) {
    const network = torchMlp(widths, seed);
    const x0 = Float32Array.from(start);
    const adversarial = nearestAdversarial(network, x0, { rays: 1440 });
    const fast = await certify(network, x0, backend, { eps: [], radius: true, seed: 2 });
    expect(fast.radius!.refinement).toBeUndefined(); // off unless asked for
    const refined = await certify(network, x0, backend, { eps: [], radius: true, seed: 2, branchBudget: 3 });
    const stage = refined.radius!.refinement!;
    expect(stage).toMatchObject({ budgetSeconds: 3, completed: true });
    // Their fast sweeps bound every unit that may switch: a full sweep would repeat them (§6), so none runs.
    expect(stage.evaluations).toBe(0);
    expect(stage.fastRadius).toBe(fast.radius!.local);
    expect(stage.refinedRadius!).toBeGreaterThanOrEqual(stage.fastRadius);
    // Branching took the radius past what the full sweeps certify (on these two: 0.353 → 0.421, 0.589 → 0.91).
    expect(stage.branches!).toBeGreaterThan(0);
    expect(refined.radius!.local).toBeGreaterThan(stage.refinedRadius! * 1.05);
    expect(refined.radius!.quality).toBe('upper');
    expect(refined.radius!.local).toBeLessThan(adversarial.distance);
  }
});

test('a margin below float32 resolution certifies nothing and says so', async () => {
  // Two identical output rows: the logits tie exactly, whatever the rounding.
  const tie: Network = {
    name: 'tie',
    inputName: 'x',
    inputShape: [2],
    outputShape: [3],
    layers: [{ kind: 'dense', name: 'd', relu: false, inputShape: [2], outputShape: [3], weight: Float32Array.from([0.3, 0.7, 0.3, 0.7, -1, 0]), bias: Float32Array.from([0.1, 0.1, 0]) }],
  };
  const result = await certify(tie, Float32Array.from([1, 2]), backend, { eps: [0.01], radius: true });
  expect(result.margin).toBe(0);
  expect(result.radius!.marginResolved).toBe(false);
  expect(result.radius!.local).toBe(0);
  expect(result.radius!.global).toBe(0);
});
