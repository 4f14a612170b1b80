/**
 * Reuse of certified norms on covered operators (certificate-ledger.ts; docs/tightness.md §0,
 * "Reuse"): a kept certificate answers only for operators whose masks and slopes lie entrywise
 * inside its own, and there it is at or above the exact norm (dense); the radius certification on
 * CIFAR-10 (user ε above the radius) certifies the same radius with the local bound's certificates
 * and far fewer KW runs, and passes where it reuses them.
 */
import { jest } from '@jest/globals';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { CertificateLedger } from '../../src/bounds/certificate-ledger.js';
import { CertifiedSolver } from '../../src/bounds/certificates.js';
import { certify } from '../../src/bounds/certify.js';
import { SpectralSolver } from '../../src/bounds/layer-bounds.js';
import { CERTIFICATE_REUSE, REUSE_RANGE, TIGHT } from '../../src/bounds/methods.js';
import type { AffineLayer } from '../../src/model/ir.js';
import { loadInputFile } from '../../src/model/input.js';
import { importOnnxFile } from '../../src/model/onnx-import.js';
import { denseOf, spectralNorm } from '../helpers/dense.js';
import { fixture } from '../helpers/fixtures.js';
import { conv, dense, randomWeights } from '../helpers/random-networks.js';

const backend = createCpuBackend();
afterAll(() => backend.dispose());

const settings = { tolerance: 1e-6, maxIterations: 300 };
const layers: [string, AffineLayer][] = [
  ['conv 3×3 stride 2, padded', conv([3, 8, 8], 5, [3, 3], { strides: [2, 2], pads: [1, 1, 1, 1] }) as AffineLayer],
  ['dense 200→150 (KW: too wide for Gram iteration)', dense(200, 150) as AffineLayer],
];

describe.each(layers)('%s', (_name, layer) => {
  const n = layer.inputShape.reduce((a, b) => a * b, 1);
  const m = layer.outputShape.reduce((a, b) => a * b, 1);
  const u = randomWeights(n + m, 3);
  const mask = Float32Array.from({ length: n }, (_, i) => (u[i] > -0.5 ? 1 : 0));
  const slopes = Float32Array.from({ length: m }, (_, i) => Math.min(1, Math.abs(u[n + i])));
  const square = (s: Float32Array) => s.map((v) => v * v);
  // Covered: fewer inputs and smaller slopes; not covered: one input or one slope beyond.
  const fewer = mask.map((v, i) => (i % 3 === 0 ? 0 : v));
  const smaller = slopes.map((v, i) => (i % 2 === 0 ? v / 2 : v));
  const extraInput = mask.slice();
  extraInput[mask.indexOf(0)] = 1;
  const largerSlope = slopes.slice();
  largerSlope[0] = slopes[0] + 0.1;

  test('a kept certificate answers exactly for covered operators, at or above their exact norm', async () => {
    const ledger = new CertificateLedger();
    const solver = new CertifiedSolver(backend, settings, { mode: 'probabilistic', delta: 1e-3, seed: 5 });
    const kept = await ledger.view(solver, { ball: 1, reuse: false }).norm('k', 0, layer, mask, square(slopes));
    expect(kept.quality).toBe('upper');
    expect(kept.iterations).toBeGreaterThan(0);
    expect(ledger.size).toBe(1);
    const reusing = ledger.view(solver, { ball: 1, reuse: true });
    const covered = await reusing.norm('k', 0, layer, fewer, square(smaller));
    expect(reusing.reused).toBe(1);
    expect(covered.value).toBe(kept.value);
    expect(covered.certificate).toContain('covering operator');
    expect(covered.value).toBeGreaterThanOrEqual(spectralNorm(denseOf(layer), smaller, fewer) * (1 - 1e-6));
    // The same operator is covered too; null (all ones) covers everything, and is covered by nothing smaller.
    await reusing.norm('k', 0, layer, mask, square(slopes));
    expect(reusing.reused).toBe(2);
    for (const [what, m2, s2] of [['an extra input', extraInput, slopes], ['a larger slope', mask, largerSlope], ['no mask', null, slopes]] as const) {
      const before = ledger.size;
      const fresh = await reusing.norm('k', 0, layer, m2, square(s2));
      expect([what, reusing.reused]).toEqual([what, 2]);
      expect(ledger.size).toBe(before + 1); // computed, then kept
      expect(fresh.certificate).not.toContain('covering operator');
    }
    // Another layer object of the same shape is never answered from this one's certificates.
    const other = { ...layer, name: 'other' } as AffineLayer;
    await reusing.norm('k', 0, other, fewer, square(smaller));
    expect(reusing.reused).toBe(2);
    // The smallest covering certificate answers: the one for `mask` itself, not the unmasked one.
    expect((await reusing.norm('k', 0, layer, fewer, square(smaller))).value).toBe(kept.value);
  });

  test('only certificates of balls within the view\'s range answer', async () => {
    const ledger = new CertificateLedger();
    const solver = new CertifiedSolver(backend, settings, { mode: 'probabilistic', delta: 1e-3, seed: 5 });
    const kept = await ledger.view(solver, { ball: 0.1, reuse: false }).norm('k', 0, layer, mask, square(slopes));
    // From ε 0.01 the ball 0.1 lies 10× above: beyond a range of 2, within one of 20.
    const near = ledger.view(solver, { ball: 0.01, reuse: true, range: 2 });
    const computed = await near.norm('k', 0, layer, fewer, square(smaller));
    expect(near.reused).toBe(0);
    expect(computed.certificate).not.toContain('covering operator');
    expect(ledger.size).toBe(2); // kept, for the ball 0.01
    const far = ledger.view(solver, { ball: 0.01, reuse: true, range: 20 });
    const answered = await far.norm('k', 0, layer, mask, square(slopes));
    expect(far.reused).toBe(1);
    expect(answered.value).toBe(kept.value);
    // The ball 0.01's own certificate (a smaller operator) answers within a range of 2.
    const own = ledger.view(solver, { ball: 0.009, reuse: true, range: 2 });
    expect((await own.norm('k', 0, layer, fewer, square(smaller))).value).toBe(computed.value);
    expect(own.reused).toBe(1);
  });

  test('estimates are never kept', async () => {
    const ledger = new CertificateLedger();
    const estimator = new SpectralSolver(backend, settings);
    await ledger.view(estimator, { ball: 1, reuse: true }).norm('k', 0, layer, mask, square(slopes));
    expect(ledger.size).toBe(0);
    estimator.dispose();
  });
});

test('a ledger keeps certificates only up to its byte budget (copies of masks and slopes); beyond it norms are computed, not kept', async () => {
  const layer = conv([3, 8, 8], 5, [3, 3], { strides: [2, 2], pads: [1, 1, 1, 1] }) as AffineLayer;
  const bytes = 4 * (3 * 8 * 8 + 5 * 4 * 4);
  const ledger = new CertificateLedger(bytes * 1.5);
  const solver = new CertifiedSolver(backend, settings, { mode: 'probabilistic', delta: 1e-3, seed: 5 });
  const view = ledger.view(solver, { ball: 1, reuse: true });
  const mask = new Float32Array(3 * 8 * 8).fill(1);
  const slopes = new Float32Array(5 * 4 * 4).fill(0.5);
  await view.norm('k', 0, layer, mask, slopes);
  expect(ledger.size).toBe(1);
  await view.norm('k', 0, layer, mask, new Float32Array(5 * 4 * 4).fill(0.9)); // not covered, not kept
  expect(ledger.size).toBe(1);
  expect(view.reused).toBe(0);
});

test('a dense layer\'s Gram-iteration certificate (no operator applications) is not kept: computed afresh it fits the smaller operator', async () => {
  const layer = dense(40, 30) as AffineLayer;
  const ledger = new CertificateLedger();
  const solver = new CertifiedSolver(backend, settings, { mode: 'probabilistic', delta: 1e-3, seed: 5 });
  const report = await ledger.view(solver, { ball: 1, reuse: true }).norm('k', 0, layer, null, null);
  expect(report.certificate).toBe('deterministic:gram');
  expect(ledger.size).toBe(0);
});

/**
 * certify() on CIFAR-10 counting the radius's certifying evaluations (the tight bound's evaluations
 * with a certifying solver after the local bound's; the search runs on estimates) and the norms
 * computed (KW runs) inside them.
 */
async function certifyCounting(eps: number, reuse: boolean) {
  const network = importOnnxFile(fixture('cifar10_net.onnx'));
  const x0 = loadInputFile(fixture('cifar10_net_x0.npy'), network);
  const options = { eps: [eps], radius: true, method: 'tight' as const, certificate: 'probabilistic' as const, delta: 1e-3, seed: 3 };
  const searchedAlone = TIGHT.searched!;
  CERTIFICATE_REUSE.enabled = reuse;
  let certifyingNow = false;
  let certifyingNorms = 0;
  let certifying = 0;
  const normAlone = CertifiedSolver.prototype.norm;
  const norms = jest.spyOn(CertifiedSolver.prototype, 'norm').mockImplementation(function (this: CertifiedSolver, ...args) {
    if (certifyingNow) certifyingNorms++;
    return normAlone.apply(this, args);
  });
  const searched = jest.spyOn(TIGHT, 'searched').mockImplementation(async (...args) => {
    certifyingNow = !(args[4] instanceof SpectralSolver);
    if (certifyingNow) certifying++;
    try {
      return await searchedAlone(...args);
    } finally {
      certifyingNow = false;
    }
  });
  try {
    const result = await certify(network, x0, backend, options);
    return { result, certifyingNorms, certifying };
  } finally {
    norms.mockRestore();
    searched.mockRestore();
    CERTIFICATE_REUSE.enabled = true;
  }
}

test('CIFAR-10, user ε 0.01 above the radius: the certification reuses the local bound\'s certificates, runs no KW Lanczos for them, and certifies the same radius', async () => {
  const fresh = await certifyCounting(0.01, false);
  const reused = await certifyCounting(0.01, true);
  const [a, b] = [fresh.result.radius!, reused.result.radius!];
  expect(a.local).toBeGreaterThan(0);
  expect(a.local).toBeLessThan(0.01);
  // The search runs on estimates and does not change; both certify at its lower end, and pass there.
  expect(b.local).toBe(a.local);
  expect(b.quality).toBe('upper');
  expect(fresh.certifying).toBe(1);
  expect(reused.certifying).toBe(1);
  // Fresh: every KW norm of the bound (CIFAR-10: 12); reused: at most the few the local bound's did not cover.
  expect(fresh.certifyingNorms).toBeGreaterThanOrEqual(10);
  expect(reused.certifyingNorms).toBeLessThanOrEqual(2);
  expect(b.failureProbability).toBeGreaterThan(0);
  expect(b.failureProbability).toBeLessThanOrEqual(a.failureProbability! + 1e-12);
}, 120_000);

test('CIFAR-10, user ε 0.05 (5 times the radius, beyond REUSE_RANGE): no reuse attempt from its certificates, no evaluation more than without reuse, the same radius', async () => {
  expect(0.05 / 0.0099).toBeGreaterThan(REUSE_RANGE);
  const fresh = await certifyCounting(0.05, false);
  const tried = await certifyCounting(0.05, true);
  expect(tried.result.radius!.local).toBe(fresh.result.radius!.local);
  // Reuse from ε 0.05's certificates would fail and add a fresh evaluation after it. (A second
  // certifying attempt may still reuse the first one's certificates: fewer KW runs, not more.)
  expect(tried.certifying).toBeLessThanOrEqual(fresh.certifying);
  expect(tried.certifyingNorms).toBeLessThanOrEqual(fresh.certifyingNorms);
}, 120_000);
