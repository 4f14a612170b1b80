/**
 * Real processes for the tests that need them (bench/processes.ts: redis-server, `lipcert worker`
 * children), and the command line built from the current sources (tsc into a fresh folder inside
 * the repository, for its node_modules; never a stale dist/).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export * from '../../bench/processes.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The command line compiled from the current sources into a fresh folder inside the repository (for its node_modules). */
export function buildCli(): { cli: string; remove(): void } {
  mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
  const outDir = mkdtempSync(join(ROOT, 'test-artifacts', 'cli-build-'));
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const built = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', outDir, '--sourceMap', 'false'], { cwd: ROOT, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`tsc failed:\n${built.stdout}\n${built.stderr}`);
  return { cli: join(outDir, 'src', 'cli.js'), remove: () => rmSync(outDir, { recursive: true, force: true }) };
}

