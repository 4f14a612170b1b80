/**
 * `lipcert lower MODEL --input FILE --eps E1,... [--samples N] [--restarts R] [--steps K] [--seed S]
 * [--methods gradient,random] [--json]`: lower bounds on L(x0, ε) found by search (bounds/lower.ts).
 * `runLower` is the whole command as a function returning the JSON object that --json prints.
 */
import type { Command } from 'commander';
import { DEFAULT_RESTARTS, DEFAULT_SAMPLES, DEFAULT_SEED, DEFAULT_STEPS, LOWER_METHODS, type LowerBoundsResult, lowerBounds } from '../bounds/lower.js';
import { BadInputError } from '../errors.js';
import { addInputOptions, type InputOptions, loadWithBackend, parseChoices, parseCount, parseInteger, parseNumberList, textTable } from './shared.js';

export interface LowerCliOptions extends InputOptions {
  eps?: string;
  samples?: string;
  restarts?: string;
  steps?: string;
  seed?: string;
  methods?: string;
}

/** The command's JSON output: `{"lower": [{"eps", "method", "kind": "lower", "bound", "distance", ...}], ...}`. */
export async function runLower(model: string, options: LowerCliOptions): Promise<LowerBoundsResult> {
  if (options.eps === undefined) throw new BadInputError('--eps E1,E2,... is required');
  const eps = parseNumberList(options.eps, '--eps');
  const lowerOptions = {
    eps,
    methods: parseChoices(options.methods, LOWER_METHODS, 'lower-bound method'),
    samples: parseCount(options.samples, '--samples', DEFAULT_SAMPLES),
    restarts: parseCount(options.restarts, '--restarts', DEFAULT_RESTARTS),
    steps: parseCount(options.steps, '--steps', DEFAULT_STEPS),
    seed: parseInteger(options.seed, '--seed', DEFAULT_SEED),
  };
  const { network, x0, backend } = await loadWithBackend(model, options);
  try {
    return await lowerBounds(network, x0, backend, lowerOptions);
  } finally {
    await backend.dispose();
  }
}

export function formatLower(result: LowerBoundsResult): string {
  const rows = result.lower.map((l) => [l.eps, l.method, l.bound.toPrecision(6), l.distance.toPrecision(4), l.evaluations, l.seconds.toFixed(2)]);
  return `class ${result.class}; lower bounds on L(x0, eps) found by search (seed ${result.seed}):\n${textTable(['eps', 'method', 'lower bound', 'at distance', 'passes', 'seconds'], rows)}\n`;
}

export function registerLowerCommand(program: Command): Command {
  const command = program
    .command('lower')
    .description('lower bounds on the local Lipschitz constant, by random sampling and gradient ascent in the eps-ball')
    .argument('<model>', 'ONNX model')
    .option('--eps <values>', 'radii of the input balls (comma-separated)')
    .option('--methods <names>', `search methods (${LOWER_METHODS.join(', ')})`)
    .option('--samples <n>', `points drawn by random sampling (default ${DEFAULT_SAMPLES})`)
    .option('--restarts <n>', `gradient-ascent restarts (default ${DEFAULT_RESTARTS})`)
    .option('--steps <n>', `gradient-ascent steps per restart (default ${DEFAULT_STEPS})`)
    .option('--seed <n>', `random seed (default ${DEFAULT_SEED})`);
  addInputOptions(command);
  return command.action(async (model: string, options: LowerCliOptions) => {
    const result = await runLower(model, options);
    process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : formatLower(result));
  });
}
