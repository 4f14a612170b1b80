/**
 * GraphiQL with LIPCERT_TOKEN, in a real browser (Debian's chromium): the page loads, its headers
 * editor carries the token to HTTP requests, and the page's script puts the same Authorization into
 * graphql-ws's connection_init, so subscriptions work too; without it the socket is closed 4403.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startServer, type ServerHandle } from '../../src/server/server.js';
import { tempDataDir } from '../server/client.js';

const CHROMIUM = process.env.LIPCERT_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`test/web/graphiql-token.test.ts SKIPPED: ${CHROMIUM} is absent`);
const describeInBrowser = haveChromium ? describe : describe.skip;

describeInBrowser('GraphiQL with an API token', () => {
  const data = tempDataDir();
  const token = 'graphiql-t0ken';
  let server: ServerHandle;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    server = await startServer({ port: 0, dataDir: data.dir, preload: false, log: () => undefined, token });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    page = await browser.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`http://127.0.0.1:${server.port}/`);
    await page.waitForSelector('.graphiql-container', { timeout: 60_000 });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    data.remove();
  });

  /** In the page: opens a graphql-ws socket, sends a bare connection_init, reports the first answer. */
  const handshake = () =>
    page.evaluate(
      (url) =>
        new Promise<string>((resolve) => {
          const socket = new WebSocket(url, 'graphql-transport-ws');
          socket.onopen = () => socket.send(JSON.stringify({ type: 'connection_init' }));
          socket.onmessage = (event) => {
            resolve(JSON.parse(event.data).type);
            socket.close();
          };
          socket.onclose = (event) => resolve(`closed ${event.code}`);
        }),
      server.wsUrl,
    );

  test('the page loads, its headers editor offers the token, and the socket follows the headers', async () => {
    expect(pageErrors).toEqual([]);
    expect(await page.content()).toContain('Bearer <LIPCERT_TOKEN>');
    // No request with the token yet: the socket is refused.
    expect(await handshake()).toBe('closed 4403');
    // A request as GraphiQL sends it with the headers editor's Authorization ...
    const status = await page.evaluate(
      async (auth) =>
        (await fetch('/graphql', { method: 'POST', headers: { 'content-type': 'application/json', authorization: auth }, body: JSON.stringify({ query: '{ about { engineVersion } }' }) })).status,
      `Bearer ${token}`,
    );
    expect(status).toBe(200);
    // ... and the socket opened afterwards carries it.
    expect(await handshake()).toBe('connection_ack');
  });
});
