/**
 * What the browser tests share: Debian's chromium driven by playwright-core (LIPCERT_CHROMIUM
 * points elsewhere; a missing browser skips the suite with a warning), the flags that work headless
 * on these machines, and a fresh Vite build of web/ (a test never trusts a stale dist/web).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHROMIUM = process.env.LIPCERT_CHROMIUM || '/usr/bin/chromium';
/** No sandbox as root, no GPU, no calls home. */
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** `describe` when chromium is installed, else `describe.skip` with a warning naming the test file. */
export function describeInBrowser(testFile: string): jest.Describe {
  if (existsSync(CHROMIUM)) return describe;
  console.warn(`${testFile} SKIPPED: ${CHROMIUM} is absent (install it with: apt-get install -y chromium)`);
  return describe.skip;
}

/** Builds web/ with Vite into `outDir`. */
export function buildPage(outDir: string): void {
  const vite = join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  const built = spawnSync(process.execPath, [vite, 'build', '--config', join(ROOT, 'web', 'vite.config.ts'), '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (built.status !== 0) throw new Error(`vite build failed:\n${built.stdout}\n${built.stderr}`);
}
