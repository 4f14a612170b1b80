/**
 * The dataset view in a real browser (Debian's chromium driven by playwright-core), the server in
 * this process: a file that is not an .npz gets the server's error next to the drop zone; the
 * Fashion-MNIST sample dropped on the page with the Fashion-MNIST preset; 12 images certified on the
 * Fashion-MNIST CNN (the paper's method with estimates, for speed) with live progress to the end;
 * then the certified-accuracy curve and the radius histogram drawn, the summary equal to the API's,
 * every radius labelled an estimate, and each image's row linking to its run's page.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startServer, type ServerHandle } from '../../src/server/server.js';
import { FIXTURES, fixtureBase64, gql, tempDataDir } from '../server/client.js';
import { DATASET_RUN } from '../server/dataset-client.js';
import { buildPage, CHROMIUM, CHROMIUM_ARGS, describeInBrowser, dropFile, inkedPixels, progressSeen, recordProgress, ROOT } from './browser.js';

describeInBrowser('test/web/datasets.test.ts')('the dataset view', () => {
  const data = tempDataDir();
  const webDir = mkdtempSync(join(tmpdir(), 'lipcert-web-datasets-'));
  let server: ServerHandle;
  let browser: Browser;
  let page: Page;
  let origin: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    buildPage(webDir);
    server = await startServer({ port: 0, host: '127.0.0.1', dataDir: data.dir, log: () => undefined, backgroundBackend: 'cpu', webDir });
    origin = `http://127.0.0.1:${server.port}`;
    await gql(server.url, `mutation($onnx: String!) { importModel(name: "fashion_cnn", onnxBase64: $onnx) { id } }`, { onnx: fixtureBase64('fashion_cnn.onnx') });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await recordProgress(page); // every value the progress bar shows
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    data.remove();
    rmSync(webDir, { recursive: true, force: true });
  });

  test('shows the server’s error for a file that is not an .npz', async () => {
    await page.goto(`${origin}/app/datasets`);
    await page.getByRole('heading', { name: 'Import a dataset' }).waitFor();
    await page.setInputFiles('[data-testid=dataset-file]', join(FIXTURES, 'mnist_8.png'));
    const error = page.locator('#dataset-error');
    await error.waitFor();
    expect(await error.getAttribute('data-code')).toBe('BAD_USER_INPUT');
    expect(await error.textContent()).toContain('not a valid .npz');
  });

  test('imports the Fashion-MNIST sample, certifies 12 images with live progress, and shows the curve, the histogram and the images', async () => {
    expect(await page.locator('[data-testid=dataset-preset]').inputValue()).toBe('fashion-mnist');
    await dropFile(page, join(FIXTURES, 'fashion_test_1000.npz'));
    await page.getByRole('heading', { name: 'Certify “fashion_test_1000”' }).waitFor();
    expect(await page.locator('[data-testid=datasets]').textContent()).toContain('1000 × 1×28×28 · uint8 · mean 0.286 std 0.353');

    await page.fill('[data-testid=dataset-limit]', '12');
    await page.fill('[data-testid=dataset-eps]', '0.001');
    await page.selectOption('[data-testid=dataset-method]', 'PAPER');
    await page.selectOption('[data-testid=dataset-certificate]', 'ESTIMATE');
    await page.click('[data-testid=start-dataset-run]');
    await page.waitForURL(/\/app\/datasets\/runs\/[^/]+$/);
    const id = decodeURIComponent(page.url().split('/').pop()!);
    await page.locator('[data-testid=dataset-run][data-status=SUCCEEDED]').waitFor({ timeout: 180_000 });
    await page.locator('[role=progressbar][aria-valuenow="100"]').waitFor();
    const seen = await progressSeen(page);
    expect(seen.at(-1)).toBe(100);
    expect(seen.some((v) => v > 0 && v < 100)).toBe(true); // the bar moved while images finished

    const run = (await gql(server.url, DATASET_RUN, { id })).data.datasetRun;
    expect(run).toMatchObject({ status: 'SUCCEEDED', total: 12, radiusQuality: 'ESTIMATE' });
    expect(await page.locator('[data-testid=dataset-accuracy] .tile-value').textContent()).toBe(`${Math.round(100 * run.accuracy)}%`);

    // The curve: the server's points, a step function down to 0 after the largest radius.
    const curve = page.locator('[data-testid=accuracy-chart][data-drawn=true]');
    await curve.waitFor();
    expect(Number(await curve.getAttribute('data-points'))).toBe(run.certifiedAccuracy.length + 2);
    expect(await page.locator('[data-testid=accuracy-caption]').textContent()).toContain('estimates of the method’s radius, not certificates');
    const histogram = page.locator('[data-testid=radius-histogram][data-drawn=true]');
    await histogram.waitFor();
    expect(await inkedPixels(histogram)).toBeGreaterThan(1000);

    // One row per image, every radius labelled, each linking to its run.
    const rows = page.locator('[data-testid=dataset-images] tbody tr');
    expect(await rows.count()).toBe(12);
    for (const [i, row] of (await rows.all()).entries()) {
      const image = run.images[i];
      expect(await row.getAttribute('data-status')).toBe('DONE');
      const quality = await row.locator('.badge.quality').getAttribute('data-quality');
      expect(quality).toBe(image.predictedClass === image.label ? 'ESTIMATE' : 'EXACT');
      expect(await row.locator('a').getAttribute('href')).toBe(`/app/runs/${image.run.id}`);
    }
    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'test-artifacts', 'web-dataset-run.png'), fullPage: true });

    await rows.nth(3).locator('a').click();
    await page.waitForURL(new RegExp(`/app/runs/${run.images[3].run.id}$`));
    await page.locator('.run-page[data-status=SUCCEEDED]').waitFor();

    // The dataset page lists the run.
    await page.goto(`${origin}/app/datasets`);
    await page.locator('[data-testid=dataset-runs] tbody tr').first().waitFor();
    expect(await page.locator('[data-testid=dataset-runs] tbody tr').first().textContent()).toContain('12 / 12');
  });

  test('raised no uncaught error in the page', () => {
    expect(pageErrors).toEqual([]);
  });
});
