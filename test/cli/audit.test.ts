/**
 * `lipcert audit` on every fixture: the paper's method (estimates) and the tight method (the CLI's
 * default, probabilistic certificates) against gradient ascent and the attacks. No violation may be
 * reported, and the tight method must be at least as good as the paper's on every figure.
 */
import { VIOLATION_EXIT_STATUS } from '../../src/cli/audit.js';
import type { AuditReport } from '../../src/analysis/audit.js';
import { lipcert } from '../helpers/cli.js';
import { FIXTURE_CASES, fixture } from '../helpers/fixtures.js';

describe.each(FIXTURE_CASES)('audit $model image $image', ({ model, input, norm }) => {
  test('no violation; tight at least as good as the paper', async () => {
    const args = ['audit', fixture(`${model}.onnx`), '--input', fixture(input), '--mean', norm.mean.join(','), '--std', norm.std.join(',')];
    const { status, stdout } = await lipcert(...args, '--eps', '0.001', '--configs', 'paper:estimate,tight:probabilistic', '--restarts', '2', '--steps', '20', '--json');
    const report: AuditReport = JSON.parse(stdout);
    expect(report.violations).toBe(0);
    expect(status).not.toBe(VIOLATION_EXIT_STATUS);
    expect(report.attack.perturbation).not.toBeNull();
    const [paper, tight] = report.bounds;
    expect(tight.config).toMatch(/^tight:probabilistic/);
    expect(tight.quality).toBe('upper');
    expect(tight.lower).toBeLessThanOrEqual(tight.bound);
    expect(tight.bound).toBeLessThan(paper.bound);
    const [paperRadius, tightRadius] = report.radii;
    expect(tightRadius.quality).toBe('upper');
    expect(tightRadius.radius).toBeGreaterThan(paperRadius.radius);
    expect(tightRadius.radius).toBeLessThan(report.attack.perturbation!);
  }, 600_000); // CIFAR-10: about 90 s on an idle 2-core machine (the tight radius and its KW certificates)
});

test('a bad --configs entry is one line on stderr and exit status 2', async () => {
  const { status, stderr } = await lipcert('audit', fixture('mnist_lenet.onnx'), '--input', fixture('mnist_lenet_x0.npy'), '--configs', 'tight:sure');
  expect(status).toBe(2);
  expect(stderr.trim().split('\n')).toHaveLength(1);
  expect(stderr).toMatch(/not METHOD:CERTIFICATE/);
});
