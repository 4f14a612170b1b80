/**
 * `lipcert audit` on graphs and other activations: on small residual, LeakyReLU/PReLU, ReLU6/HardTanh
 * and Concat/sigmoid/tanh networks (test/helpers/graph-networks.ts) the paper's and the tight
 * method, with estimates and with probabilistic certificates, are never below the gradient-ascent
 * and sampling lower bounds, and no attack finds a class change inside their certified radii; the
 * same through the command line on the torch-exported residual model, with the default method.
 */
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { audit } from '../../src/analysis/audit.js';
import type { AuditReport } from '../../src/analysis/audit.js';
import { VIOLATION_EXIT_STATUS } from '../../src/cli/audit.js';
import { size } from '../../src/model/ir.js';
import { Rng } from '../../src/random.js';
import { lipcert } from '../helpers/cli.js';
import { GRAPH_NETWORKS } from '../helpers/graph-networks.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const backend = createCpuBackend();
afterAll(() => backend.dispose());
const MODELS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'model', 'fixtures');

test.each(GRAPH_NETWORKS)('%s network: no violation of the paper\'s or the tight method\'s bounds or radii', async (_name, build) => {
  const network = build(6);
  const rng = new Rng(12);
  const x0 = Float32Array.from({ length: size(network.inputShape) }, () => rng.gaussian());
  const report = await audit(network, x0, backend, {
    eps: [0.001, 0.1],
    configs: [
      { method: 'paper', certificate: 'estimate' },
      { method: 'paper', certificate: 'probabilistic' },
      { method: 'tight', certificate: 'estimate' },
      { method: 'tight', certificate: 'probabilistic' },
    ],
    restarts: 2,
    steps: 20,
    samples: 100,
    attackSteps: 20,
    seed: 3,
  });
  expect(report.violations).toBe(0);
  for (const entry of report.bounds) {
    expect(entry.lower).toBeGreaterThan(0);
    expect(entry.lower).toBeLessThanOrEqual(entry.bound * (1 + 1e-5));
  }
  expect(report.bounds.find((b) => b.config.startsWith('paper:probabilistic'))!.quality).toBe('upper');
  expect(report.bounds.find((b) => b.config.startsWith('tight:probabilistic'))!.quality).toBe('upper');
  for (const r of report.radii) expect(r.radius).toBeGreaterThan(0);
  expect(report.attack.perturbation).not.toBeNull(); // the radius check is not vacuous
  for (const r of report.radii) expect(r.radius).toBeLessThan(report.attack.perturbation!);
}, 300_000);

test('lipcert audit and bound on a torch-exported residual network, with the default method too', async () => {
  const model = path.join(MODELS, 'tiny_residual_op13.onnx');
  const input = path.join(MODELS, 'tiny_residual_op13.json');
  const run = await lipcert('audit', model, '--input', input, '--eps', '0.01', '--configs', 'paper:estimate,paper:probabilistic,tight:probabilistic', '--restarts', '2', '--steps', '20', '--json');
  const report: AuditReport = JSON.parse(run.stdout);
  expect(report.violations).toBe(0);
  expect(run.status).not.toBe(VIOLATION_EXIT_STATUS);
  const tight = await lipcert('bound', model, '--input', input, '--eps', '0.01', '--radius', '--json');
  expect(tight.status).toBe(0);
  const tightResult = JSON.parse(tight.stdout);
  expect(tightResult.local[0]).toMatchObject({ method: 'tight', quality: 'upper' });
  expect(tightResult.radius.local).toBeGreaterThan(0);
  const paper = await lipcert('bound', model, '--input', input, '--eps', '0.01', '--method', 'paper', '--json');
  expect(paper.status).toBe(0);
  const result = JSON.parse(paper.stdout);
  expect(result.local[0].layers.find((l: { kind: string }) => l.kind === 'add')).toMatchObject({ inputs: [0, 2], relu: true });
}, 300_000);
