/**
 * The tables of docs/tightness.md: on every fixture, the paper's method and the tight method
 * (probabilistic and deterministic certificates) against the best lower bound (gradient ascent)
 * and the smallest adversarial perturbation found (attacks), with timings on this machine.
 * Run: npx tsx bench/tightness.ts (CASES=8,dog4 and CONFIGS=paper:estimate,tight:probabilistic select).
 */
import os from 'node:os';
import path from 'node:path';
import { createCpuBackend } from '../src/backend/cpu/index.js';
import { audit, configName, parseAuditConfig } from '../src/analysis/audit.js';
import { loadInputFile } from '../src/model/input.js';
import { importOnnxFile } from '../src/model/onnx-import.js';

const CIFAR = { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] };
const MNIST = { mean: [0.1307], std: [0.3081] };
const cases = [
  ['mnist_lenet', '8', 'mnist_lenet_x0.npy', MNIST],
  ['mnist_lenet', '2', 'mnist_2.png', MNIST],
  ['mnist_lenet', '3', 'mnist_3.png', MNIST],
  ['cifar10_net', 'dog4', 'cifar10_net_x0.npy', CIFAR],
] as const;
const only = process.env.CASES?.split(',');
const configs = (process.env.CONFIGS ?? 'paper:estimate,tight:probabilistic,tight:deterministic').split(',').map(parseAuditConfig);
const fmt = (v: number | null) => (v === null ? '-' : v.toPrecision(4));

console.log(`machine: ${os.cpus()[0]?.model.trim()}, ${os.availableParallelism()} threads, node ${process.version}\n`);
console.log('| fixture | method | L(x0, 0.001) | s | lower bound | radius | s | attack |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const [model, image, input, norm] of cases) {
  if (only && !only.includes(image)) continue;
  const network = importOnnxFile(path.join('fixtures', `${model}.onnx`));
  const x0 = loadInputFile(path.join('fixtures', input), network, norm);
  const backend = createCpuBackend();
  const report = await audit(network, x0, backend, { eps: [0.001], configs, seed: 1 });
  for (const c of configs) {
    const b = report.bounds.find((e) => e.config === configName(c))!;
    const r = report.radii.find((e) => e.config === configName(c))!;
    const p = b.failureProbability ? ` (p ≤ ${b.failureProbability.toPrecision(2)})` : '';
    console.log(`| ${model} ${image} | ${configName(c)} | ${fmt(b.bound)}${p} | ${b.seconds.toFixed(2)} | ${fmt(b.lower)} | ${fmt(r.radius)} | ${r.seconds.toFixed(1)} | ${fmt(report.attack.perturbation)} |`);
  }
  if (report.violations > 0) console.log(`| ${model} ${image} | ${report.violations} VIOLATION(S) | | | | | | |`);
  await backend.dispose();
}
