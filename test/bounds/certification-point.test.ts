/**
 * certificationPoint (methods.ts): where a certified run's certifying evaluation goes after its
 * estimate search, from the estimates' criterion near the search's lower end.
 */
import { CALIBRATION_RANGE, CERTIFICATE_SLACK, CERTIFICATION_MARGIN, certificateExcess, certificationPoint } from '../../src/bounds/methods.js';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { CertifiedSolver, DEFAULT_KW_EPSILON } from '../../src/bounds/certificates.js';
import { SpectralSolver } from '../../src/bounds/layer-bounds.js';
import { dense, flatten, network as chain } from '../helpers/random-networks.js';

const aim = 1 / (1 + CERTIFICATION_MARGIN);

test('without a point below, the line has slope 1: ε·aim/r, with the certificates\' excess in the aim', () => {
  expect(certificationPoint(0.2, new Map([[0.2, 0.999]]))).toBeCloseTo((0.2 * aim) / 0.999, 12);
  expect(certificationPoint(0.2, new Map([[0.2, 0.999]]), 1.03)).toBeCloseTo((0.2 * aim) / (0.999 * 1.03), 12);
  // A lower end that was not evaluated (a failing point's within) counts as r = 1.
  expect(certificationPoint(0.2, new Map(), 1.03)).toBeCloseTo((0.2 * aim) / 1.03, 12);
  // A failing ratio (no model): CERTIFICATE_SLACK inside.
  expect(certificationPoint(0.2, new Map([[0.2, 1.2]]))).toBeCloseTo(0.2 / (1 + CERTIFICATE_SLACK), 12);
  for (const r of [0.99, 0.995, 0.99999]) {
    const at = certificationPoint(0.2, new Map([[0.2, r]]));
    expect(at).toBeLessThanOrEqual(0.2);
    expect(at).toBeGreaterThanOrEqual(0.2 * aim);
  }
});

test('with a passing point below, the line through both reaches the aim at the point returned; room to spare: the lower end itself', () => {
  // r = (ε/0.3)^3 on both points: the line is that power law, and the aim is reached at 0.3·aim^(1/3).
  const ratios = new Map([
    [0.25, (0.25 / 0.3) ** 3],
    [0.2999, (0.2999 / 0.3) ** 3],
  ]);
  expect(certificationPoint(0.2999, ratios)).toBeCloseTo(0.3 * aim ** (1 / 3), 10);
  // The nearest passing point below decides the slope; one above (failing) does not.
  ratios.set(0.31, 5);
  ratios.set(0.1, 1e-9);
  expect(certificationPoint(0.2999, ratios)).toBeCloseTo(0.3 * aim ** (1 / 3), 10);
  // A slope below 1 (L falling) counts as 1: the point moves further down, not up.
  const flat = new Map([
    [0.1, 0.9985],
    [0.2, 0.999],
  ]);
  expect(certificationPoint(0.2, flat)).toBeCloseTo((0.2 * aim) / 0.999, 12);
  // Already below the aim: evaluated where the search ended.
  expect(certificationPoint(0.2, new Map([[0.2, 0.9]]))).toBe(0.2);
});

test('a certified known point just above calibrates the certificates\' excess; further away it is ignored', () => {
  const slope = 3;
  const ratios = new Map([
    [0.009, 0.97 * (0.009 / 0.0099) ** slope],
    [0.0099, 0.97],
  ]);
  const line = (e: number) => 0.97 * (e / 0.0099) ** slope;
  const plain = certificationPoint(0.0099, ratios);
  expect(plain).toBe(0.0099); // 0.97 is below the aim
  // The certified bound at the user's ε = 0.01 sits 10% above the estimates' line there.
  const certified = new Map([[0.01, line(0.01) * 1.1]]);
  const calibrated = certificationPoint(0.0099, ratios, 1, certified);
  expect(line(calibrated)).toBeCloseTo(aim / 1.1, 10);
  expect(calibrated).toBeLessThan(plain);
  // Beyond CALIBRATION_RANGE, or below the lower end: no calibration.
  expect(certificationPoint(0.0099, ratios, 1, new Map([[0.0099 * CALIBRATION_RANGE * 1.01, 10]]))).toBe(plain);
  expect(certificationPoint(0.0099, ratios, 1, new Map([[0.005, 10]]))).toBe(plain);
  // A known point in range whose certificates sit no higher: its certificates are reused, which
  // sit above fresh ones by the norms' growth, so the point is at least CERTIFICATE_SLACK inside.
  expect(certificationPoint(0.0099, ratios, 1, new Map([[0.01, line(0.01) * 0.9]]))).toBeCloseTo(0.0099 / (1 + CERTIFICATE_SLACK), 12);
});

test('the certificates\' excess: KW\'s 1/√(1 − ε) per affine layer for probabilistic certificates, 1 otherwise', () => {
  const backend = createCpuBackend();
  const network = chain([flatten([4]), dense(4, 8), dense(8, 8), dense(8, 3, false)]);
  const settings = { tolerance: 1e-6, maxIterations: 100 };
  const probabilistic = new CertifiedSolver(backend, settings, { mode: 'probabilistic', delta: 1e-3 });
  expect(certificateExcess(network, probabilistic)).toBeCloseTo((1 - DEFAULT_KW_EPSILON) ** -1.5, 12);
  expect(certificateExcess(network, new CertifiedSolver(backend, settings, { mode: 'deterministic', delta: 1e-3 }))).toBe(1);
  expect(certificateExcess(network, new SpectralSolver(backend, settings))).toBe(1);
});
