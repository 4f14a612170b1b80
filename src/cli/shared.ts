/**
 * What the commands share: the input options (--input, --mean, --std, --backend, --json), loading a
 * model and its input with a backend, option parsing, the progress bar and text tables. Commands
 * throw; src/cli.ts's main() is the one error path (a LipcertError is the user's mistake: one line
 * on stderr, exit status 2).
 */
import { type Command, Option } from 'commander';
import { type CertificateMode, parseCertificate } from '../bounds/certificates.js';
import { DEFAULT_CERTIFICATE, DEFAULT_DELTA, DEFAULT_METHOD } from '../bounds/defaults.js';
import type { BoundMethod } from '../bounds/types.js';
import cliProgress from 'cli-progress';
import type { Backend, BackendName } from '../backend/backend.js';
import { BACKEND_NAMES, createBackend } from '../backend/select.js';
import { BadInputError } from '../errors.js';
import { loadInputFile } from '../model/input.js';
import { loadModel } from '../model/load.js';
import { randomInput, randomInputSeed } from '../model/zoo/index.js';
import type { Network } from '../model/ir.js';

/** The options every model-and-input command takes, as commander parses them. */
export interface InputOptions {
  input?: string;
  mean?: string;
  std?: string;
  backend?: string;
  json?: boolean;
}

export interface Loaded {
  network: Network;
  x0: Float32Array;
  backend: Backend;
}

/** "0.1,0.2" → [0.1, 0.2]; anything else is a BadInputError naming the option. */
export function parseNumberList(value: string, option: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  const numbers = parts.map(Number);
  if (parts.some((p) => p === '') || numbers.some((n) => !Number.isFinite(n))) {
    throw new BadInputError(`${option} must be a comma-separated list of numbers, got '${value}'`);
  }
  return numbers;
}

/** A list of radii: numbers, each > 0. */
export function parseEpsList(text: string, option = '--eps'): number[] {
  const values = parseNumberList(text, option);
  if (values.some((v) => !(v > 0))) throw new BadInputError(`${option} values must be > 0, got '${text}'`);
  return values;
}

/** One finite number. */
export function parseNumber(value: string, option: string): number {
  const n = Number(value.trim());
  if (value.trim() === '' || !Number.isFinite(n)) throw new BadInputError(`${option} must be a number, got '${value}'`);
  return n;
}

/** A positive integer option, or its default when absent. */
export function parseCount(value: string | undefined, option: string, fallback: number): number;
export function parseCount(value: string | undefined, option: string, fallback?: number): number | undefined;
export function parseCount(value: string | undefined, option: string, fallback?: number): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new BadInputError(`${option} must be a positive integer, got '${value}'`);
  return n;
}

/** An integer option, or its default when absent. */
export function parseInteger(value: string | undefined, option: string, fallback: number): number;
export function parseInteger(value: string | undefined, option: string, fallback?: number): number | undefined;
export function parseInteger(value: string | undefined, option: string, fallback?: number): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new BadInputError(`${option} must be an integer, got '${value}'`);
  return n;
}

/** A comma-separated subset of `allowed`, or all of them when absent. */
export function parseChoices<T extends string>(value: string | undefined, allowed: readonly T[], what: string): T[] {
  if (value === undefined) return [...allowed];
  const chosen = value.split(',').map((s) => s.trim());
  for (const c of chosen) if (!allowed.includes(c as T)) throw new BadInputError(`unknown ${what} '${c}' (expected ${allowed.join(', ')})`);
  return chosen as T[];
}

/**
 * MODEL (an ONNX path, imported and cross-checked against onnxruntime, or `zoo:NAME[:SEED]`) and --input (a file, or `random[:SEED]` for a seeded
 * normal input of the model's shape), normalised with --mean/--std. Every command loads through here.
 */
export async function loadModelAndInput(model: string, options: { input?: string; mean?: string; std?: string }): Promise<{ network: Network; x0: Float32Array }> {
  if (!options.input) throw new BadInputError('--input FILE is required');
  const network = await loadModel(model); // an ONNX file is cross-checked against onnxruntime
  const seed = randomInputSeed(options.input);
  const x0 =
    seed !== null
      ? randomInput(network, seed)
      : loadInputFile(options.input, network, {
          mean: options.mean === undefined ? undefined : parseNumberList(options.mean, '--mean'),
          std: options.std === undefined ? undefined : parseNumberList(options.std, '--std'),
        });
  return { network, x0 };
}

/** The bound options `bound` and `dataset` share, as commander parses them. */
export interface MethodCliOptions {
  tolerance: string;
  method: string;
  certify: string;
  seed?: string;
  branchBudget?: string;
}

/** Adds --tolerance, --method, --certify and --seed (defaults from bounds/defaults.ts). */
export function addMethodOptions(command: Command, seedHelp = 'seed of the random starts of probabilistic certificates (default: random)'): Command {
  return command
    .option('--tolerance <t>', 'relative change at which spectral norm iterations stop', '1e-6')
    .addOption(new Option('--method <name>', 'bound method: tight (docs/tightness.md) or paper (Algorithm 1, Proposition 6)').choices(['tight', 'paper']).default(DEFAULT_METHOD))
    .option('--certify <mode>', 'spectral norms: deterministic, probabilistic[:DELTA] (per-norm failure probability) or estimate', `${DEFAULT_CERTIFICATE}:${DEFAULT_DELTA.toExponential()}`)
    .option('--seed <n>', seedHelp)
    .option('--branch-budget <seconds>', "seconds for the certified radius' refinement stage: full sweeps beyond the fast search's radius (tight method; default 0: off)");
}

/** --tolerance, --method, --certify and --seed, checked, as certify() takes them. */
export function parseMethodOptions(opts: MethodCliOptions): { method: BoundMethod; certificate: CertificateMode; delta: number | undefined; seed: number | undefined; tolerance: number; branchBudget: number | undefined } {
  const certificate = parseCertificate(opts.certify);
  if (!certificate) throw new BadInputError(`--certify must be deterministic, probabilistic[:DELTA] with 0 < DELTA < 1, or estimate; got '${opts.certify}'`);
  const tolerance = Number(opts.tolerance);
  if (!(tolerance > 0 && tolerance < 1)) throw new BadInputError(`--tolerance must be in (0, 1), got '${opts.tolerance}'`);
  const branchBudget = opts.branchBudget === undefined ? undefined : parseNumber(opts.branchBudget, '--branch-budget');
  if (branchBudget !== undefined && branchBudget < 0) throw new BadInputError(`--branch-budget must be at least 0 seconds, got '${opts.branchBudget}'`);
  return { method: opts.method as BoundMethod, certificate: certificate.mode, delta: certificate.delta || undefined, seed: parseInteger(opts.seed, '--seed'), tolerance, branchBudget };
}

/** Adds --input, --mean, --std, --backend and --json to a command. */
export function addInputOptions(command: Command): Command {
  return command
    .option('--input <file>', 'nominal input x0: .npy (float32), .json {"shape","data"}, .png, or random[:SEED]')
    .option('--mean <values>', 'PNG normalisation mean, one value or one per channel (comma-separated)')
    .option('--std <values>', 'PNG normalisation std, one value or one per channel (comma-separated)')
    .option('--backend <name>', `compute backend (${BACKEND_NAMES.join(', ')})`, 'auto')
    .option('--json', 'print the result as JSON');
}

/** Imports MODEL, loads --input with --mean/--std and creates the backend (the caller disposes it). */
export async function loadWithBackend(model: string, options: InputOptions): Promise<Loaded> {
  const backendName = (options.backend ?? 'auto') as BackendName;
  if (!BACKEND_NAMES.includes(backendName)) throw new BadInputError(`unknown backend '${backendName}' (expected one of ${BACKEND_NAMES.join(', ')})`);
  const { network, x0 } = await loadModelAndInput(model, options);
  return { network, x0, backend: await createBackend(backendName, network) };
}

/** A progress bar on stderr when it is a terminal; nothing otherwise. */
export function progressReporter(enabled: boolean): { onProgress?: (e: { fraction: number; message: string }) => void; stop: () => void } {
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

/** A fixed-width text table for the human-readable output: header, a rule, the rows. */
export function textTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((v, c) => v.padStart(widths[c])).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}
