/**
 * What the browser tests share: Debian's chromium driven by playwright-core (LIPCERT_CHROMIUM
 * points elsewhere; a missing browser skips the suite with a warning), the flags that work headless
 * on these machines, a fresh Vite build of web/ (a test never trusts a stale dist/web), and a few
 * page helpers (the progress bar's values, dropping a file, whether a canvas holds a picture).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Locator, Page } from 'playwright-core';

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

/** From now on the page records every value its progress bar shows (read them with `progressSeen`). */
export async function recordProgress(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const seen: number[] = ((window as any).__progressSeen = []);
    new MutationObserver(() => {
      const bar = document.querySelector('[role=progressbar]');
      const value = bar ? Number(bar.getAttribute('aria-valuenow')) : NaN;
      if (Number.isFinite(value) && seen[seen.length - 1] !== value) seen.push(value);
    }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['aria-valuenow'] });
  });
}

export function progressSeen(page: Page): Promise<number[]> {
  return page.evaluate(() => (window as any).__progressSeen);
}

/** Drops a file on the page's drop zone as a user would drag it there. */
export async function dropFile(page: Page, file: string, target = 'label.dropzone'): Promise<void> {
  const dataTransfer = await page.evaluateHandle(
    ({ base64, name }) => {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([bytes], name, { type: 'application/octet-stream' }));
      return transfer;
    },
    { base64: readFileSync(file).toString('base64'), name: basename(file) },
  );
  await page.dispatchEvent(target, 'drop', { dataTransfer });
}

/** Pixels of a canvas that are not transparent: a picture, not a blank. */
export function inkedPixels(canvas: Locator): Promise<number> {
  return canvas.evaluate((element: HTMLCanvasElement) => {
    const { data } = element.getContext('2d')!.getImageData(0, 0, element.width, element.height);
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) n++;
    return n;
  });
}
