/**
 * `lipcert audit MODEL --input FILE [--eps E1,...] [--configs paper:estimate,tight:probabilistic,...]
 * [--restarts R] [--steps K] [--samples N] [--attacks fgsm,ifgsm,pgd] [--seed S] [--json]`: every method's bounds and certified radius against
 * gradient ascent and the attacks (analysis/audit.ts). Exit status 3 when any violation is found.
 * `runAudit` is the whole command as a function; `registerAuditCommand` adds it to a program.
 */
import type { Command } from 'commander';
import { audit, type AuditReport, DEFAULT_AUDIT_CONFIGS, parseAuditConfig } from '../analysis/audit.js';
import { ATTACK_METHODS } from '../bounds/attacks.js';
import { addInputOptions, type InputOptions, loadWithBackend, parseChoices, parseCount, parseInteger, parseNumberList, textTable } from './shared.js';

export const DEFAULT_AUDIT_EPS = [0.001, 0.01, 0.1];
/** Exit status of `audit` when a bound or radius is violated. */
export const VIOLATION_EXIT_STATUS = 3;

export interface AuditCliOptions extends InputOptions {
  eps?: string;
  configs?: string;
  restarts?: string;
  steps?: string;
  samples?: string;
  attacks?: string;
  seed?: string;
}

export async function runAudit(model: string, options: AuditCliOptions): Promise<AuditReport> {
  const eps = options.eps === undefined ? DEFAULT_AUDIT_EPS : parseNumberList(options.eps, '--eps');
  const configs = options.configs === undefined ? DEFAULT_AUDIT_CONFIGS : options.configs.split(',').map((s) => parseAuditConfig(s.trim()));
  const auditOptions = {
    eps,
    configs,
    restarts: parseCount(options.restarts, '--restarts'),
    steps: parseCount(options.steps, '--steps'),
    samples: parseCount(options.samples, '--samples'),
    attackMethods: parseChoices(options.attacks, ATTACK_METHODS, 'attack'),
    seed: parseInteger(options.seed, '--seed', 1),
  };
  const { network, x0, backend } = await loadWithBackend(model, options);
  try {
    return await audit(network, x0, backend, auditOptions);
  } finally {
    await backend.dispose();
  }
}

const fmt = (v: number | null | undefined) => (v === null || v === undefined ? '-' : v.toPrecision(5));
const verdict = (violation: boolean) => (violation ? 'VIOLATION' : 'ok');

export function formatAudit(report: AuditReport): string {
  const out: string[] = [];
  out.push(`class ${report.class}, margin ${fmt(report.margin)}; smallest adversarial perturbation found: ${fmt(report.attack.perturbation)} (${report.attack.method ?? 'none'})`);
  out.push('', 'local bounds (upper) against the best lower bound found:');
  out.push(textTable(['method', 'eps', 'bound', 'quality', 'lower', 'lower/bound', 'check'], report.bounds.map((b) => [b.config, b.eps, fmt(b.bound), b.quality + (b.failureProbability ? ` p≤${b.failureProbability.toPrecision(2)}` : ''), fmt(b.lower), (b.lower / b.bound).toFixed(4), verdict(b.violation)])));
  out.push('', 'certified radii against the attacks:');
  out.push(textTable(['method', 'radius', 'quality', 'attack', 'attack/radius', 'check'], report.radii.map((r) => [r.config, fmt(r.radius), (r.quality ?? '-') + (r.failureProbability ? ` p≤${r.failureProbability.toPrecision(2)}` : ''), fmt(r.attack), r.attack === null || r.radius === 0 ? '-' : (r.attack / r.radius).toFixed(1), verdict(r.violation)])));
  out.push('', report.violations === 0 ? `no violations (${report.seconds.toFixed(1)} s)` : `${report.violations} VIOLATION(S) (${report.seconds.toFixed(1)} s)`);
  return out.join('\n') + '\n';
}

export function registerAuditCommand(program: Command): Command {
  const command = program
    .command('audit')
    .description('check every method\'s bounds and certified radius against gradient ascent and attacks')
    .argument('<model>', 'ONNX model')
    .option('--eps <list>', `radii of the local bounds checked (default ${DEFAULT_AUDIT_EPS.join(',')})`)
    .option('--configs <list>', `METHOD:CERTIFICATE pairs (default ${DEFAULT_AUDIT_CONFIGS.map((c) => `${c.method}:${c.certificate}`).join(',')})`)
    .option('--restarts <n>', 'gradient-ascent restarts per eps')
    .option('--steps <n>', 'gradient-ascent steps per restart')
    .option('--samples <n>', 'random points drawn per eps for the lower bound')
    .option('--attacks <names>', 'attacks to run (fgsm, ifgsm, pgd; default all)')
    .option('--seed <n>', 'seed of the searches and of the probabilistic certificates (default 1)');
  addInputOptions(command);
  return command.action(async (model: string, options: AuditCliOptions) => {
    const report = await runAudit(model, options);
    process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatAudit(report));
    if (report.violations > 0) process.exitCode = VIOLATION_EXIT_STATUS;
  });
}
