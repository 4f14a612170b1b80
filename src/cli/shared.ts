/**
 * What the `lower`, `attack` and `table` commands share with `bound`: the input options
 * (--input, --mean, --std, --backend, --json), loading a model and its input, printing, and the
 * exit-status rule (a LipcertError is the user's mistake: one line on stderr, exit status 2).
 * The lead's src/cli.ts may pass its own implementation of SharedCliHelpers instead of these defaults.
 */
import type { Command } from 'commander';
import type { Backend, BackendName } from '../backend/backend.js';
import { BACKEND_NAMES, createBackend } from '../backend/select.js';
import { BadInputError, LipcertError } from '../errors.js';
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

export interface SharedCliHelpers {
  /** Adds --input, --mean, --std, --backend and --json to a command. */
  addInputOptions(command: Command): Command;
  /** Imports MODEL, loads --input with --mean/--std and creates the backend. */
  load(model: string, options: InputOptions): Promise<Loaded>;
  /** Wraps an action: a LipcertError prints one line on stderr and sets exit status 2. */
  action<A extends unknown[]>(run: (...args: A) => Promise<void>): (...args: A) => Promise<void>;
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

/** One finite number. */
export function parseNumber(value: string, option: string): number {
  const n = Number(value.trim());
  if (value.trim() === '' || !Number.isFinite(n)) throw new BadInputError(`${option} must be a number, got '${value}'`);
  return n;
}

/** A positive integer option, or its default when absent. */
export function parseCount(value: string | undefined, option: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new BadInputError(`${option} must be a positive integer, got '${value}'`);
  return n;
}

export function parseInteger(value: string | undefined, option: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new BadInputError(`${option} must be an integer, got '${value}'`);
  return n;
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

export const defaultCliHelpers: SharedCliHelpers = {
  addInputOptions(command) {
    return command
      .option('--input <file>', 'nominal input x0: .npy, .json, .png, or random[:SEED]')
      .option('--mean <values>', 'per-channel mean subtracted from a PNG (comma-separated)')
      .option('--std <values>', 'per-channel standard deviation dividing a PNG (comma-separated)')
      .option('--backend <name>', `compute backend (${BACKEND_NAMES.join(', ')})`, 'auto')
      .option('--json', 'print the result as JSON');
  },

  async load(model, options) {
    const backendName = (options.backend ?? 'auto') as BackendName;
    if (!BACKEND_NAMES.includes(backendName)) throw new BadInputError(`unknown backend '${backendName}' (expected one of ${BACKEND_NAMES.join(', ')})`);
    const { network, x0 } = await loadModelAndInput(model, options);
    return { network, x0, backend: await createBackend(backendName, network) };
  },

  action(run) {
    return async (...args) => {
      try {
        await run(...args);
      } catch (e) {
        if (!(e instanceof LipcertError)) throw e;
        process.stderr.write(`lipcert: error: ${e.message.split('\n')[0]}\n`);
        process.exitCode = 2;
      }
    };
  },
};

/** A fixed-width text table for the human-readable output. */
export function textTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => r[c].length)));
  return cells.map((r) => r.map((v, c) => v.padStart(widths[c])).join('  ')).join('\n');
}
