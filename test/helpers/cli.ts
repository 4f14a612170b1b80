/**
 * Runs the real command line in-process (src/cli.ts's main()) and captures what it prints:
 * stdout, stderr (without Node's own warnings) and the exit status.
 */
import { jest } from '@jest/globals';
import { main } from '../../src/cli.js';

export interface CliRun {
  status: number;
  stdout: string;
  stderr: string;
}

export async function lipcert(...args: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  const previous = process.exitCode;
  try {
    const status = await main(args);
    // Node's own warnings (e.g. about --experimental-vm-modules under Jest) are not ours.
    stderr = stderr.split('\n').filter((l) => !/ExperimentalWarning|--trace-warnings/.test(l)).join('\n');
    return { status, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
    process.exitCode = previous;
  }
}
