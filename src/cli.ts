#!/usr/bin/env -S node --single-threaded-gc --initial-old-space-size=64
/**
 * The command line: a thin shell over the library (src/index.ts). Parsing by commander; each command
 * lives in src/cli/ and throws on bad input; main() is the one error path: a LipcertError prints one
 * line on stderr and exits with status 2, anything else is an internal error (status 1).
 *
 * The shebang runs Node with V8's single-threaded garbage collector (as do `npm start` and
 * `npm run bench`): V8's helper threads for parallel and concurrent collection take a core from
 * the other dataset lanes. Measured on 2 cores, Fashion-MNIST, 40 images on 2 lanes, four alternating
 * rounds: 0.300 s per image against 0.350 s with the default collector; one image alone is no slower.
 * And with an initial old generation of 64 MB: V8 otherwise starts it at a few MB and runs a full
 * (mark-compact) collection every few hundred milliseconds — the Lanczos vectors and per-unit row
 * blocks are short-lived typed arrays whose backing stores count as external memory — 37 and 45 in
 * the two lanes of 40 Fashion-MNIST images, 1 and 2 with it; 0.250–0.289 s per image against
 * 0.287–0.376 s in four alternating rounds (2 cores).
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { LipcertError } from './errors.js';
import { registerAttackCommand } from './cli/attack.js';
import { registerAuditCommand } from './cli/audit.js';
import { registerBoundCommand } from './cli/bound.js';
import { registerDatasetCommand } from './cli/dataset.js';
import { registerExportCommand } from './cli/export.js';
import { registerLowerCommand } from './cli/lower.js';
import { registerPredictCommand } from './cli/predict.js';
import { registerTableCommand } from './cli/table.js';
import { registerWorkerCommand } from './cli/worker.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('lipcert')
    .description('Local Lipschitz bounds and certified radii of ReLU networks (Avant & Morgansen, TNNLS 2023)')
    .version('0.1.0')
    .showSuggestionAfterError(true);

  registerBoundCommand(program);
  registerExportCommand(program);
  registerLowerCommand(program);
  registerAttackCommand(program);
  registerTableCommand(program);
  registerAuditCommand(program);
  registerPredictCommand(program);
  registerDatasetCommand(program);
  registerWorkerCommand(program);
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
    // `audit` reports violations found by setting the exit code (3).
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed its one-line message (or the help / version text).
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' || e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof LipcertError) {
      process.stderr.write(`lipcert: error: ${e.message.split('\n')[0]}\n`);
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
