/**
 * Acceptance: the paper's MNIST and CIFAR-10 networks reproduce reference.json (an independent
 * float64 implementation): global bound and local bounds within 0.1%, certified radius within 0.5%.
 */
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { certify } from '../../src/bounds/certify.js';
import { PAPER_REPRODUCTION } from '../../src/bounds/defaults.js';
import { importOnnxFile } from '../../src/model/onnx-import.js';
import { loadInputFile } from '../../src/model/input.js';
import { FIXTURE_CASES, fixture, reference } from '../helpers/fixtures.js';

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
const EPS = [0.001, 0.01, 0.1, 1];

describe.each(FIXTURE_CASES)('$model image $image', ({ model, image, input, norm }) => {
  const expected = reference.models[model].images[image];
  const backend = createCpuBackend();
  afterAll(() => backend.dispose());

  test('class, margin, global and local bounds, certified radii', async () => {
    const network = importOnnxFile(fixture(`${model}.onnx`));
    const x0 = loadInputFile(fixture(input), network, norm);
    const result = await certify(network, x0, backend, { ...PAPER_REPRODUCTION, eps: EPS, radius: true });

    expect(result.class).toBe(expected.class);
    expect(rel(result.margin, expected.margin_top2)).toBeLessThan(1e-4);
    expect(rel(result.global!.bound, expected.global_bound)).toBeLessThan(1e-3);
    if (expected.global_per_layer) {
      result.global!.layers.forEach((l, i) => expect(rel(l.bound, expected.global_per_layer[i])).toBeLessThan(1e-3));
    }
    for (const local of result.local) {
      const key = local.eps === 1 ? '1.0' : String(local.eps);
      expect(rel(local.bound, expected.local_bound_converged[key])).toBeLessThan(1e-3);
      expect(local.quality).toBe('estimate');
      expect(local.layers.every((l) => !l.spectral || l.spectral.converged)).toBe(true);
    }
    expect(rel(result.radius!.local, expected.certified_radius_local)).toBeLessThan(5e-3);
    expect(rel(result.radius!.global, expected.certified_radius_global)).toBeLessThan(5e-3);
    expect(result.radius!.local).toBeLessThan(result.radius!.localUpper);
    expect(result.radius!.localUpper / result.radius!.local - 1).toBeLessThanOrEqual(1e-4);
  });
});
