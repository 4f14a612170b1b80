#!/usr/bin/env node
/**
 * The command line: a thin shell over the library (src/index.ts). Parsing by commander, progress by
 * cli-progress on stderr. Bad input prints one line on stderr and exits with status 2.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { certify } from './bounds/certify.js';
import type { CertifyResult, LayerBound, ProgressEvent } from './bounds/types.js';
import { createBackend } from './backend/select.js';
import type { BackendName } from './backend/backend.js';
import { BadInputError, LipcertError } from './errors.js';
import type { Network } from './model/ir.js';
import { registerAttackCommand } from './cli/attack.js';
import { registerAuditCommand } from './cli/audit.js';
import { registerDatasetCommand } from './cli/dataset.js';
import { describeExport, exportCommand } from './cli/export.js';
import { loadModelAndInput, parseNumberList } from './cli/shared.js';
import { registerLowerCommand } from './cli/lower.js';
import { registerPredictCommand } from './cli/predict.js';
import { registerTableCommand } from './cli/table.js';
import { parseCertificate } from './bounds/certificates.js';
import type { NetworkBound } from './bounds/types.js';

export function parseEpsList(text: string): number[] {
  const values = parseNumberList(text, '--eps');
  if (values.some((v) => !(v > 0))) throw new BadInputError(`--eps values must be > 0, got '${text}'`);
  return values;
}

/** A progress bar on stderr when it is a terminal; nothing otherwise. */
export function progressReporter(enabled: boolean): { onProgress?: (e: ProgressEvent) => void; stop: () => void } {
  if (!enabled || !process.stderr.isTTY) return { stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: ' {bar} {percentage}% | {message}', hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(100, 0, { message: 'starting' });
  return {
    onProgress: (e) => bar.update(Math.round(e.fraction * 100), { message: e.message }),
    stop: () => bar.stop(),
  };
}

function format(value: number, digits = 6): string {
  if (value === 0) return '0';
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  return abs >= 1e6 || abs < 1e-3 ? value.toExponential(digits - 1) : value.toPrecision(digits);
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const QUALITY_NOTE: Record<string, string> = {
  estimate: 'upper bound of the paper\'s method, spectral norms estimated by Lanczos to the stated tolerance',
  upper: 'guaranteed upper bound',
  exact: 'exact',
};

/** What a bound's quality means, with the failure probability of probabilistic certificates. */
function qualityNote(bound: NetworkBound): string {
  const p = bound.failureProbability ?? 0;
  if (bound.quality === 'upper' && p > 0) return `upper bound with probability ≥ 1 − ${format(p, 3)} (union bound over its probabilistic certificates)`;
  return QUALITY_NOTE[bound.quality];
}

function layerRows(layers: LayerBound[], local: boolean): string[][] {
  return layers.map((l) => [
    String(l.index),
    l.kind + (l.relu && l.kind !== 'relu' ? '+relu' : ''),
    `[${l.inputShape}]→[${l.outputShape}]`,
    format(l.bound),
    ...(local ? [format(l.epsIn ?? 0, 4), l.lambdaZero === undefined ? '' : `${l.lambdaZero}/${l.lambdaPartial}/${l.lambdaOne}`] : []),
    l.spectral ? `${l.spectral.iterations}` : '',
    l.certificate ?? l.quality,
  ]);
}

export function humanReport(network: Network, result: CertifyResult, globalLayers = true): string {
  const out: string[] = [];
  out.push(`model ${network.name}: input [${network.inputShape}], ${network.layers.length} layers; backend ${result.backend} (${result.adapter})`);
  out.push(`class ${result.class}, margin δ = ${format(result.margin)} (top-1 minus top-2 logit)`);
  if (result.global) {
    out.push('', `global bound: ${format(result.global.bound)}  [${qualityNote(result.global)}]`);
    if (globalLayers) out.push(table(['layer', 'kind', 'shape', 'bound', 'iters', 'certificate'], layerRows(result.global.layers, false)));
  }
  for (const l of result.local) {
    const method = l.method === 'tight' ? ' (method tight: min of the layer product and the linearisation decomposition)' : '';
    out.push('', `local bound at eps ${l.eps}: ${format(l.bound)}${method}  [${qualityNote(l)}] (${format(l.seconds, 3)} s)`);
    out.push(table(['layer', 'kind', 'shape', 'bound', 'eps_in', 'λ=0/partial/1', 'iters', 'certificate'], layerRows(l.layers, true)));
  }
  if (result.radius) {
    const r = result.radius;
    const criterion = r.method === 'tight' ? 'per-class margins' : 'Proposition 6';
    const quality = r.quality === 'upper' ? `, certified${r.failureProbability ? ` with probability ≥ 1 − ${format(r.failureProbability, 3)}` : ''}` : r.quality === 'estimate' ? ', from spectral norm estimates' : '';
    out.push('', `certified radius (local bound, ${criterion}${quality}): ${format(r.local)}  (criterion fails at ${format(r.localUpper)}; ${r.evaluations} bound evaluations, ${format(r.seconds, 3)} s)`);
    out.push(`certified radius (global bound): ${format(r.global)}`);
  }
  out.push('', `spectral norm tolerance ${result.tolerance} (relative change per step); total ${format(result.seconds, 3)} s`);
  if ([result.global, ...result.local].some((b) => (b?.failureProbability ?? 0) > 0)) {
    out.push('probabilistic certificates (Kuczyński–Woźniakowski): a bound fails with probability at most the sum of its certificates\' δ (union bound).');
  }
  return out.join('\n');
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('lipcert')
    .description('Local Lipschitz bounds and certified radii of ReLU networks (Avant & Morgansen, TNNLS 2023)')
    .version('0.1.0')
    .showSuggestionAfterError(true);

  program
    .command('bound')
    .description('global and local Lipschitz bounds, and the certified adversarial radius')
    .argument('<model>', 'ONNX model file, or zoo:alexnet|vgg16|mnist-lenet|cifar10-net[:SEED] (seeded random weights)')
    .requiredOption('--input <file>', 'nominal input: .npy (float32), .json {"shape","data"}, .png, or random[:SEED]')
    .option('--mean <m>', 'PNG normalisation mean, one value or one per channel (comma-separated)')
    .option('--std <s>', 'PNG normalisation std, one value or one per channel (comma-separated)')
    .option('--eps <list>', 'comma-separated radii of local bounds, e.g. 0.001,0.01')
    .option('--global', 'report the global bound per layer (always computed)')
    .option('--radius', 'compute the certified adversarial radius')
    .addOption(new Option('--backend <name>', 'compute backend').choices(['cpu', 'webgpu', 'auto']).default('auto'))
    .option('--tolerance <t>', 'relative change at which spectral norm iterations stop', '1e-6')
    .addOption(new Option('--method <name>', 'bound method: tight (docs/tightness.md) or paper (Algorithm 1, Proposition 6)').choices(['tight', 'paper']).default('tight'))
    .option('--certify <mode>', 'spectral norms: deterministic, probabilistic[:DELTA] (per-norm failure probability) or estimate', 'probabilistic:1e-3')
    .option('--seed <n>', 'seed of the random starts of probabilistic certificates (default: random)')
    .option('--json', 'print one JSON object on stdout')
    .action(async (model: string, opts) => {
      const certificate = parseCertificate(opts.certify);
      if (!certificate) throw new BadInputError(`--certify must be deterministic, probabilistic[:DELTA] with 0 < DELTA < 1, or estimate; got '${opts.certify}'`);
      const seed = opts.seed === undefined ? undefined : Number(opts.seed);
      if (seed !== undefined && !Number.isInteger(seed)) throw new BadInputError(`--seed must be an integer, got '${opts.seed}'`);
      const eps = opts.eps ? parseEpsList(opts.eps) : [];
      const tolerance = Number(opts.tolerance);
      if (!(tolerance > 0 && tolerance < 1)) throw new BadInputError(`--tolerance must be in (0, 1), got '${opts.tolerance}'`);
      const { network, x0 } = await loadModelAndInput(model, opts);
      const backend = await createBackend(opts.backend as BackendName, network);
      const progress = progressReporter(!opts.json || process.stderr.isTTY);
      try {
        const result = await certify(network, x0, backend, {
          eps, global: true, radius: Boolean(opts.radius), tolerance, onProgress: progress.onProgress,
          method: opts.method, certificate: certificate.mode, delta: certificate.delta || undefined, seed,
        });
        progress.stop();
        if (opts.json) process.stdout.write(JSON.stringify({ model: network.name, ...result, radius: result.radius ?? null }) + '\n');
        else process.stdout.write(humanReport(network, result, Boolean(opts.global)) + '\n');
      } finally {
        progress.stop();
        await backend.dispose();
      }
    });

  program
    .command('export')
    .description('write a model (e.g. a zoo model) as an ONNX file')
    .argument('<model>', 'zoo:NAME[:SEED] or an ONNX file')
    .argument('<out>', 'output .onnx file')
    .action((model: string, out: string) => {
      process.stdout.write(describeExport(model, exportCommand(model, out)) + '\n');
    });
  registerLowerCommand(program);
  registerAttackCommand(program);
  registerTableCommand(program);
  registerAuditCommand(program);
  registerPredictCommand(program);
  registerDatasetCommand(program);
  return program;
}

/** Run the CLI; returns the exit status (0 ok, 2 bad input or usage, 1 internal error). */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  program.commands.forEach((c) => c.exitOverride());
  process.exitCode = undefined;
  try {
    await program.parseAsync(argv, { from: 'user' });
    // Commands built with cli/shared.ts report a user error by setting the exit code.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed its one-line message (or the help / version text).
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' || e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof LipcertError) {
      process.stderr.write(`lipcert: error: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`lipcert: internal error: ${(e as Error).stack ?? e}\n`);
    return 1;
  }
}

function invokedDirectly(): boolean {
  try {
    return Boolean(process.argv[1]) && pathToFileURL(realpathSync(process.argv[1])).href === import.meta.url;
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  process.exitCode = await main(process.argv.slice(2));
}
