/**
 * Lower bounds on L(x0, ε): reproducible from the seed, attained at points of the ball, exact on a
 * linear map (where L = ||W|| for every ε), and near the reference gradient-ascent figures.
 */
import { createBackend } from '../../src/backend/select.js';
import type { Backend } from '../../src/backend/backend.js';
import { lowerBounds } from '../../src/bounds/lower.js';
import { LipcertError } from '../../src/errors.js';
import type { DenseLayer } from '../../src/model/ir.js';
import { loadFixture, referenceFor, TABLE_III_IMAGES } from './fixtures.js';
import { everyLayerNetwork, linearClassifier, randomInput } from './small-networks.js';

let backend: Backend;
beforeAll(async () => {
  backend = await createBackend('cpu');
});
afterAll(async () => backend.dispose());

/** ||W||₂ by power iteration on WᵀW in float64. */
function spectralNorm(layer: DenseLayer): number {
  const [m, n] = [layer.outputShape[0], layer.inputShape[0]];
  let v = Float64Array.from({ length: n }, (_, i) => 1 + i / n);
  let sigma = 0;
  for (let it = 0; it < 2000; it++) {
    const y = Float64Array.from({ length: m }, (_, r) => v.reduce((s, vj, j) => s + layer.weight[r * n + j] * vj, 0));
    const z = Float64Array.from({ length: n }, (_, j) => y.reduce((s, yr, r) => s + layer.weight[r * n + j] * yr, 0));
    const zn = Math.hypot(...z);
    sigma = Math.sqrt(zn / Math.hypot(...v));
    v = z.map((x) => x / zn);
  }
  return sigma;
}

describe('lowerBounds', () => {
  test('is reproducible from its seed, and every bound is a ratio at a point of the ball', async () => {
    const network = everyLayerNetwork(11);
    const x0 = randomInput(162, 12);
    const options = { eps: [0.05, 0.5], samples: 20, restarts: 2, steps: 8, seed: 3 };
    const a = await lowerBounds(network, x0, backend, options);
    const b = await lowerBounds(network, x0, backend, options);
    const c = await lowerBounds(network, x0, backend, { ...options, seed: 4 });
    const strip = (r: typeof a) => r.lower.map(({ seconds: _, ...rest }) => rest);
    expect(strip(b)).toEqual(strip(a));
    expect(strip(c)).not.toEqual(strip(a));
    expect(a.lower.map((l) => [l.eps, l.method])).toEqual([
      [0.05, 'gradient'],
      [0.05, 'random'],
      [0.5, 'gradient'],
      [0.5, 'random'],
    ]);
    for (const l of a.lower) {
      expect(l.kind).toBe('lower');
      expect(l.bound).toBeGreaterThan(0);
      expect(l.distance).toBeGreaterThan(0);
      expect(l.distance).toBeLessThanOrEqual(l.eps);
    }
  });

  test('gradient ascent reaches ||W|| on a linear map, and no search exceeds it', async () => {
    const network = linearClassifier(5, 40, 6);
    const exact = spectralNorm(network.layers[0] as DenseLayer);
    const result = await lowerBounds(network, randomInput(40, 6), backend, { eps: [0.01, 1], samples: 50, restarts: 2, steps: 60 });
    for (const l of result.lower) {
      expect(l.bound).toBeLessThanOrEqual(exact * (1 + 1e-4));
      if (l.method === 'gradient') expect(l.bound).toBeGreaterThan(0.99 * exact);
      else expect(l.bound).toBeLessThan(0.99 * exact); // random directions in 40 dimensions fall short
    }
  });

  test('matches the reference gradient-ascent lower bound on MNIST image 8 at eps 0.001', async () => {
    const fixture = TABLE_III_IMAGES[0];
    const { network, x0 } = await loadFixture(fixture);
    const reference = referenceFor(fixture).lower_bound_gradient_ascent['0.001'];
    const result = await lowerBounds(network, x0, backend, { eps: [0.001], methods: ['gradient'], restarts: 2, steps: 40 });
    expect(result.class).toBe(referenceFor(fixture).class);
    expect(result.lower[0].bound).toBeGreaterThan(0.95 * reference);
    expect(result.lower[0].bound).toBeLessThan(1.1 * reference);
  });

  test.each([
    [{ eps: [-1] }, /eps must be finite and > 0/],
    [{ eps: [0.1], samples: 0 }, /samples must be a positive integer/],
    [{ eps: [0.1], methods: ['newton' as 'random'] }, /unknown lower-bound method 'newton'/],
    [{ eps: [] }, /at least one eps/],
  ])('rejects bad options %#', async (options, message) => {
    const network = linearClassifier(1, 4, 2);
    const run = lowerBounds(network, randomInput(4, 1), backend, options);
    await expect(run).rejects.toThrow(LipcertError);
    await expect(run).rejects.toThrow(message);
  });
});
