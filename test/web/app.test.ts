/**
 * The web page in a real browser (Debian's chromium driven by playwright-core): the server runs
 * in-process on 127.0.0.1 with a temp data directory and a fresh build of web/; the test imports the
 * MNIST fixture, adds its image with the MNIST preset, runs eps 0.001, 0.01 with the radius by the
 * default (tight method, probabilistic certificates) and by the paper's method with estimates, follows
 * the progress to 100%, reads the plots and the labels of every number (quality and method). It also
 * checks the run's stable URL after a reload,
 * errors shown next to their fields, cancelling, a failed run, and the run list's filters.
 * A screenshot of the finished run is kept under test-artifacts/.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startServer, type ServerHandle } from '../../src/server/server.js';
import { FIXTURES, gql, tempDataDir, waitFor } from '../server/client.js';
import { buildPage, CHROMIUM, CHROMIUM_ARGS, describeInBrowser, dropFile, inkedPixels, progressSeen, recordProgress, ROOT } from './browser.js';

const ARTIFACTS = join(ROOT, 'test-artifacts');

describeInBrowser('test/web/app.test.ts')('lipcert web page', () => {
  const data = tempDataDir();
  const webDir = mkdtempSync(join(tmpdir(), 'lipcert-web-'));
  let server: ServerHandle;
  let browser: Browser;
  let page: Page;
  let origin: string;
  let modelId: string;
  let inputId: string;
  let runUrl: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    buildPage(webDir);
    server = await startServer({ port: 0, host: '127.0.0.1', dataDir: data.dir, log: () => undefined, backgroundBackend: 'cpu', webDir });
    origin = `http://127.0.0.1:${server.port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    // Every value the progress bar shows, as the subscription moves it.
    await recordProgress(page);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    data.remove();
    rmSync(webDir, { recursive: true, force: true });
  });

  test('serves the page at /app and keeps GraphiQL at /', async () => {
    const graphiql = await fetch(`${origin}/`);
    expect(graphiql.status).toBe(200);
    expect(await graphiql.text()).toMatch(/graphiql/i);
    const missing = await fetch(`${origin}/app/assets/missing.js`);
    expect(missing.status).toBe(404);

    await page.goto(`${origin}/app/`);
    await page.getByRole('heading', { name: 'Certify a ReLU network' }).waitFor();
    expect(await page.title()).toBe('lipcert');
  });

  test('shows the server’s error next to the model field for a file that is not ONNX', async () => {
    await page.setInputFiles('[data-testid=model-file]', join(FIXTURES, 'mnist_8.png'));
    const error = page.locator('#model-error');
    await error.waitFor();
    expect(await error.getAttribute('data-code')).toBe('UNSUPPORTED_MODEL');
  });

  test('imports the MNIST model dropped on the page and lists its layers', async () => {
    await dropFile(page, join(FIXTURES, 'mnist_lenet.onnx'));
    await page.waitForURL(/\/app\/models\/[^/]+$/);
    modelId = decodeURIComponent(page.url().split('/').pop()!);
    const layers = page.locator('[data-testid=layers] tbody tr');
    await layers.first().waitFor();
    const kinds = await page.locator('[data-testid=layers] tbody tr .kind').allTextContents();
    expect(kinds.filter((k) => k === 'conv')).toHaveLength(2);
    expect(kinds).toContain('dense');
    await expect(page.locator('[data-testid=layers]').textContent()).resolves.toContain('kernel 5×5');
    expect(await page.locator('#model-error').count()).toBe(0);
  });

  test('shows the server’s error for an image of the wrong shape', async () => {
    await page.setInputFiles('[data-testid=input-file]', join(FIXTURES, 'cifar10_dog4.png'));
    await page.click('[data-testid=add-input]');
    const error = page.locator('#input-file-error');
    await error.waitFor();
    expect(await error.getAttribute('data-code')).toBe('BAD_USER_INPUT');
    expect(await error.textContent()).toContain('28×28'); // the server's message, as sent
  });

  test('adds the MNIST image with the MNIST preset and shows its class and margin', async () => {
    await page.setInputFiles('[data-testid=input-file]', join(FIXTURES, 'mnist_8.png'));
    await page.fill('.pending-fields input[type=text]', 'mnist_8');
    await page.selectOption('[data-testid=preset]', 'mnist');
    await page.click('[data-testid=add-input]');
    const detail = page.locator('[data-testid=input-detail]');
    await detail.waitFor();
    expect(await page.locator('[data-testid=predicted-class]').textContent()).toBe('8');
    expect(Number((await page.locator('[data-testid=margin]').textContent())!.replace('−', '-'))).toBeGreaterThan(0);
    expect(await page.locator('.input-list img.thumb').count()).toBe(1);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'web-certify.png'), fullPage: true });
    const { data } = await gql(server.url, `query($id: ID!) { model(id: $id) { inputs { id } } }`, { id: modelId });
    inputId = data.model.inputs[0].id;
  });

  test('shows the server’s error next to the eps field', async () => {
    await page.fill('[data-testid=eps]', '0.01, -1');
    await page.click('[data-testid=start-run]');
    const error = page.locator('#eps-error');
    await error.waitFor();
    expect(await error.getAttribute('data-code')).toBe('BAD_USER_INPUT');
    expect(await error.textContent()).toContain('eps must be finite and > 0');
  });

  test('runs eps 0.001, 0.01 with the radius: progress reaches 100% and the plots are drawn', async () => {
    await page.fill('[data-testid=eps]', '0.001, 0.01');
    await page.check('[data-testid=radius]');
    await page.click('[data-testid=start-run]');
    await page.waitForURL(/\/app\/runs\/[^/]+$/);
    runUrl = page.url();
    await page.locator('[role=progressbar][aria-valuenow="100"]').waitFor({ timeout: 120_000 });
    await page.locator('.run-page[data-status=SUCCEEDED]').waitFor();
    const seen = await progressSeen(page);
    expect(seen[seen.length - 1]).toBe(100);
    expect(seen.some((v) => v < 100)).toBe(true); // the bar moved while the run computed

    const chart = page.locator('[data-testid=lipschitz-chart]');
    await chart.and(page.locator('[data-drawn=true]')).waitFor();
    expect(Number(await chart.getAttribute('data-points'))).toBeGreaterThanOrEqual(2);
    await page.locator('[data-testid=layer-chart][data-drawn=true]').waitFor();
    // The canvas holds a picture, not a blank.
    expect(await inkedPixels(chart)).toBeGreaterThan(1000);

    const bounds = page.locator('[data-testid=bounds-table] tbody tr');
    expect(await bounds.count()).toBe(2);
    // The default: the tight method with probabilistic certificates; every number says so.
    expect(await page.locator('[data-testid=run-method]').textContent()).toContain('tight method · certified norms (probabilistic)');
    for (const row of await bounds.all()) {
      expect(await row.locator('.badge.quality').getAttribute('data-quality')).toBe('UPPER');
      expect(await row.locator('.badge.quality').textContent()).toMatch(/^upper bound \(p ≤ /);
      expect(await row.locator('.badge.method').textContent()).toBe('tight method');
    }
    expect(await page.locator('[data-testid=certified-radius] .tile-value').textContent()).toMatch(/\d/);
    expect(await page.locator('[data-testid=certified-radius] .badge.quality').getAttribute('data-quality')).toBe('UPPER');
    expect(await page.locator('[data-testid=certified-radius] .badge.method').textContent()).toContain('tight method');
    expect(await page.locator('[data-testid=global-bound] .badge.method').textContent()).toBe('tight method · certified norms (probabilistic)');
    expect(await page.locator('[data-testid=radius-table] tbody tr').count()).toBeGreaterThanOrEqual(2);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'web-run.png'), fullPage: true });
  });

  test('the run has a stable URL: a reload shows the same results, and the same request comes from the cache', async () => {
    await page.goto(runUrl);
    await page.locator('.run-page[data-status=SUCCEEDED]').waitFor();
    await page.locator('[data-testid=lipschitz-chart][data-drawn=true]').waitFor();

    await page.goto(`${origin}/app/models/${modelId}`);
    await page.fill('[data-testid=eps]', '0.001, 0.01');
    await page.click('[data-testid=start-run]');
    await page.waitForURL((url) => /\/app\/runs\//.test(url.pathname) && url.href !== runUrl);
    await page.locator('.run-page[data-status=SUCCEEDED]').waitFor();
    await page.locator('.badge.cached').first().waitFor();
  });

  test('the form offers the paper\'s method as its reproduction: a run with estimates says so on every number', async () => {
    await page.goto(`${origin}/app/models/${modelId}`);
    const methods = await page.locator('[data-testid=method] option').allTextContents();
    expect(methods).toEqual(['tight (sharper bounds, docs/tightness.md)', 'the paper’s method (reproduction)']);
    expect(await page.locator('[data-testid=method]').inputValue()).toBe('TIGHT');
    expect(await page.locator('[data-testid=certificate]').inputValue()).toBe('PROBABILISTIC');
    await page.fill('[data-testid=eps]', '0.001, 0.01');
    await page.check('[data-testid=radius]');
    await page.selectOption('[data-testid=method]', 'PAPER');
    await page.selectOption('[data-testid=certificate]', 'ESTIMATE');
    await page.click('[data-testid=start-run]');
    await page.waitForURL((url) => /\/app\/runs\//.test(url.pathname) && url.href !== runUrl);
    await page.locator('.run-page[data-status=SUCCEEDED]').waitFor({ timeout: 120_000 });
    expect(await page.locator('[data-testid=run-method]').textContent()).toContain('the paper’s method (reproduction) · estimated norms');
    for (const row of await page.locator('[data-testid=bounds-table] tbody tr').all()) {
      expect(await row.locator('.badge.quality').textContent()).toBe('estimate');
      expect(await row.locator('.badge.method').textContent()).toBe('the paper’s method (reproduction)');
    }
    expect(await page.locator('[data-testid=certified-radius] .badge.quality').getAttribute('data-quality')).toBe('ESTIMATE');
    // The paper's Table III: a local radius of 0.0522 on this image.
    expect(Number(await page.locator('[data-testid=certified-radius] .tile-value').textContent())).toBeCloseTo(0.0523, 3);
    await page.screenshot({ path: join(ARTIFACTS, 'web-run-paper.png'), fullPage: true });
  });

  test('a run with lower bounds and an attack, started from the form, shows them in the plot, the bounds table and the radius table', async () => {
    const chart = page.locator('[data-testid=lipschitz-chart][data-drawn=true]');
    // The points of the same run without them (eps 0.001, 0.01 with the radius) ...
    await page.goto(runUrl);
    await chart.waitFor();
    const without = Number(await chart.getAttribute('data-points'));
    await page.goto(`${origin}/app/models/${modelId}`);
    await page.fill('[data-testid=eps]', '0.001, 0.01');
    await page.check('[data-testid=radius]');
    await page.check('[data-testid=lower-bounds]');
    await page.check('[data-testid=attack-PGD]');
    await page.selectOption('[data-testid=method]', 'PAPER');
    await page.selectOption('[data-testid=certificate]', 'ESTIMATE');
    await page.click('[data-testid=start-run]');
    await page.waitForURL((url) => /\/app\/runs\//.test(url.pathname) && url.href !== runUrl);
    await page.locator('.run-page[data-status=SUCCEEDED]').waitFor({ timeout: 120_000 });
    await chart.waitFor();
    // ... and four lower bounds more (two eps, two methods).
    expect(Number(await chart.getAttribute('data-points'))).toBe(without + 4);
    expect(await page.locator('[data-testid=bounds-table]').textContent()).toContain('lower bound (search)');
    expect(await page.locator('[data-testid=radius-table]').textContent()).toContain('Attack: PGD');
  });

  test('cancels a queued run', async () => {
    // One compute job at a time: a long run first, so the second waits in the queue.
    const eps = Array.from({ length: 64 }, (_, i) => 10 ** (-4 + (3 * i) / 63));
    const start = `mutation($model: ID!, $input: ID!, $eps: [Float!]!, $tol: Float) {
      startRun(modelId: $model, inputId: $input, eps: $eps, radius: true, backend: CPU, tolerance: $tol) { id status } }`;
    const first = await gql(server.url, start, { model: modelId, input: inputId, eps, tol: 1e-9 });
    const second = await gql(server.url, start, { model: modelId, input: inputId, eps: [0.05], tol: 1e-8 });
    expect(second.data.startRun.status).toBe('QUEUED');
    await page.goto(`${origin}/app/runs/${second.data.startRun.id}`);
    await page.locator('[data-testid=cancel-run]').waitFor();
    if (process.env.LIPCERT_WEB_SHOTS) await page.screenshot({ path: join(ARTIFACTS, 'web-queued.png') });
    await page.click('[data-testid=cancel-run]');
    await page.locator('.run-page[data-status=CANCELLED]').waitFor();
    await page.locator('[data-testid=run-error]').waitFor();
    await gql(server.url, `mutation($id: ID!) { cancelRun(id: $id) { id } }`, { id: first.data.startRun.id });
  });

  test('a failed run shows its error code and message, and the page stays up', async () => {
    // A run that failed (as a crash leaves one), written straight into the store.
    const prisma = (server.service.store as any).prisma;
    const failed = await prisma.run.create({
      data: {
        id: 'failed-run-for-the-page', seq: 1_000_000, modelId, inputId, cacheKey: 'none', status: 'FAILED', progress: 0.4,
        message: 'interrupted', eps: '[0.1]', radius: false, requestedBackend: 'cpu', errorCode: 'INTERRUPTED',
        errorMessage: 'the server stopped while the run was computing', finishedAt: new Date(),
      },
    });
    await page.goto(`${origin}/app/runs/${failed.id}`);
    const error = page.locator('[data-testid=run-error]');
    await error.waitFor();
    expect(await error.textContent()).toContain('INTERRUPTED');
    if (process.env.LIPCERT_WEB_SHOTS) await page.screenshot({ path: join(ARTIFACTS, 'web-failed.png') });
    await page.goto(`${origin}/app/runs/no-such-run`);
    await page.locator('.field-error[data-code=NOT_FOUND]').waitFor();
  });

  test('lists past runs and filters them by status and model', async () => {
    await page.goto(`${origin}/app/runs`);
    const rows = page.locator('[data-testid=runs-table] tbody tr');
    await rows.first().waitFor();
    const all = await rows.count();
    expect(all).toBeGreaterThanOrEqual(4);
    await page.selectOption('[data-testid=filter-status]', 'FAILED');
    await page.waitForURL(/status=FAILED/);
    await waitFor('the FAILED filter', async () => (await rows.count()) === 1 && (await rows.first().textContent())?.includes('INTERRUPTED'));
    await page.selectOption('[data-testid=filter-status]', 'SUCCEEDED');
    await page.selectOption('[data-testid=filter-model]', modelId);
    await page.waitForURL(new RegExp(`model=${modelId}`));
    await waitFor('the SUCCEEDED filter', async () => {
      const statuses = await rows.locator('.badge.status').allTextContents();
      return statuses.length >= 2 && statuses.every((s) => s === 'succeeded');
    });
    await page.screenshot({ path: join(ARTIFACTS, 'web-runs.png'), fullPage: true });
    await rows.first().locator('a').click();
    await page.locator('.run-page[data-status=SUCCEEDED]').waitFor();
  });

  test('imports a residual network and draws its graph: a lane from the block input to the Add, which reads both', async () => {
    await page.goto(`${origin}/app/`);
    await page.setInputFiles('[data-testid=model-file]', join(ROOT, 'test', 'model', 'fixtures', 'tiny_residual_op13.onnx'));
    await page.waitForURL((url) => /\/app\/models\/[^/]+$/.test(url.pathname) && !url.pathname.endsWith(encodeURIComponent(modelId)));
    const rows = page.locator('[data-testid=layers] tbody tr');
    await waitFor('the residual model\'s six layers', async () => (await rows.count()) === 6);
    expect(await rows.locator('.kind').allTextContents()).toEqual(['conv', 'conv', 'conv', 'add', 'flatten', 'dense']);
    // conv0's output is read by conv1 (the next row) and by the Add three rows down: one lane.
    expect(await rows.locator('td.graph').allTextContents()).toEqual(['╮', '│', '│', '╯', ' ', ' ']);
    expect(await rows.nth(3).locator('[data-testid=reads]').textContent()).toBe('reads #0 + #2');
    expect(await rows.nth(3).locator('.tag').allTextContents()).toEqual(['ReLU']);
    // The run form starts on the default method, which follows graphs too (docs/graphs.md §7).
    expect(await page.locator('select[data-testid=method]').inputValue()).toBe('TIGHT');
    await page.screenshot({ path: join(ARTIFACTS, 'web-graph.png'), fullPage: true });
  });

  test('raised no uncaught error in the page', () => {
    expect(pageErrors).toEqual([]);
  });
});
