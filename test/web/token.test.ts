/**
 * The web page against a server started with LIPCERT_TOKEN, in a real browser (Debian's chromium):
 * without the token the page says, in one sentence, that the server needs it and asks for it; a
 * wrong token is named as refused; with the right one (entered on the page, kept in the browser) the
 * page works over HTTP and over the WebSocket: a run started from the page is followed live through
 * graphql-ws, whose connection_init carries the token, to SUCCEEDED.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startServer, type ServerHandle } from '../../src/server/server.js';
import { fixtureBase64, gql, MNIST_NORM, tempDataDir, waitFor } from '../server/client.js';
import { buildPage, CHROMIUM, CHROMIUM_ARGS, describeInBrowser } from './browser.js';

describeInBrowser('test/web/token.test.ts')('the web page with an API token', () => {
  const data = tempDataDir();
  const webDir = mkdtempSync(join(tmpdir(), 'lipcert-web-'));
  const token = 'page-t0ken with spaces';
  const auth = { authorization: `Bearer ${token}` };
  let server: ServerHandle;
  let origin: string;
  /** The MNIST fixture and its image 8, added through the API with the token. */
  let modelId: string;
  let inputId: string;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  /** graphql-ws frames the page sent and received, in order. */
  const frames: { sent: boolean; message: { type: string; payload?: any } }[] = [];

  beforeAll(async () => {
    buildPage(webDir);
    server = await startServer({ port: 0, dataDir: data.dir, preload: false, log: () => undefined, backgroundBackend: 'cpu', webDir, token });
    origin = `http://127.0.0.1:${server.port}`;
    const model = await gql(server.url, `mutation($onnx: String!) { importModel(name: "mnist", onnxBase64: $onnx) { id } }`, { onnx: fixtureBase64('mnist_lenet.onnx') }, auth);
    modelId = model.data.importModel.id;
    const input = await gql(
      server.url,
      `mutation($m: ID!, $png: String!, $mean: [Float!], $std: [Float!]) { addInput(modelId: $m, name: "eight", pngBase64: $png, mean: $mean, std: $std) { id } }`,
      { m: modelId, png: fixtureBase64('mnist_8.png'), ...MNIST_NORM },
      auth,
    );
    inputId = input.data.addInput.id;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('websocket', (ws) => {
      ws.on('framesent', (frame) => frames.push({ sent: true, message: JSON.parse(String(frame.payload)) }));
      ws.on('framereceived', (frame) => frames.push({ sent: false, message: JSON.parse(String(frame.payload)) }));
    });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    data.remove();
    rmSync(webDir, { recursive: true, force: true });
  });

  const panel = () => page.locator('[data-testid=token-panel]');

  test('without the token the page says the server needs it, and asks for it', async () => {
    await page.goto(`${origin}/app/models/${modelId}`);
    await panel().waitFor();
    expect(await panel().getAttribute('data-refused')).toBe('UNAUTHENTICATED');
    expect(await page.locator('.token-panel[role=alert]').textContent()).toContain('This lipcert server needs its API token.');
    // The model's card shows the server's own sentence, with its code.
    const error = page.locator('[data-code=UNAUTHENTICATED]').first();
    await error.waitFor();
    expect(await error.textContent()).toContain('this server needs its API token');
  });

  test('a wrong token is named as refused', async () => {
    await page.fill('[data-testid=token-input]', 'not the token');
    await Promise.all([page.waitForEvent('load'), page.click('[data-testid=token-save]')]);
    await panel().waitFor();
    expect(await page.locator('.token-panel[role=alert]').textContent()).toContain('The server refused the API token this browser has.');
  });

  test('with the token the page works, and a run is followed live over graphql-ws to SUCCEEDED', async () => {
    await page.fill('[data-testid=token-input]', token);
    await Promise.all([page.waitForEvent('load'), page.click('[data-testid=token-save]')]);
    await page.locator('[data-testid=input-detail]').waitFor();
    expect(await page.locator('[data-testid=predicted-class]').textContent()).toBe('8');
    expect(await panel().count()).toBe(0);

    // A run that holds the only compute slot, so that the page's run is queued and followed live.
    const blocker = await gql(
      server.url,
      `mutation($m: ID!, $i: ID!) { startRun(modelId: $m, inputId: $i, eps: [0.05], radius: true, lowerBounds: true, lowerSamples: 100000, lowerRestarts: 1000) { id } }`,
      { m: modelId, i: inputId },
      auth,
    );
    expect(blocker.errors).toBeUndefined();
    await page.fill('[data-testid=eps]', '0.01');
    await page.click('[data-testid=start-run]');
    await page.waitForURL(/\/app\/runs\/[^/]+$/);
    const runId = decodeURIComponent(page.url().split('/').pop()!);
    await page.locator('.run-page[data-status=QUEUED]').waitFor();
    await waitFor('the page to subscribe', async () => server.service.events.listenerCount(runId) > 0, 30_000);
    await gql(server.url, `mutation($id: ID!) { cancelRun(id: $id) { id } }`, { id: blocker.data.startRun.id }, auth);
    await page.locator('.run-page[data-status=SUCCEEDED]').waitFor({ timeout: 120_000 });

    // The socket was opened with the token and the run's events came over it.
    const init = frames.find((f) => f.sent && f.message.type === 'connection_init');
    expect(init?.message.payload).toEqual({ authorization: `Bearer ${token}` });
    expect(frames.some((f) => !f.sent && f.message.type === 'connection_ack')).toBe(true);
    const events = frames.filter((f) => !f.sent && f.message.type === 'next').map((f) => f.message.payload.data.runProgress);
    expect(events.map((e) => e.runId)).toContain(runId);
    expect(events.at(-1).status).toBe('SUCCEEDED');
    expect(pageErrors).toEqual([]);
  });
});
