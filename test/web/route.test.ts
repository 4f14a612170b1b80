/**
 * The /app route of the server, without a browser: built files with long-lived caching, the page for
 * any other path under /app (client-side URLs survive a reload), 404 for a missing file, 503 with a
 * note when the page is not built, and GraphiQL still at /.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type ServerHandle } from '../../src/server/server.js';
import { tempDataDir } from '../server/client.js';

const PAGE = '<!doctype html><title>lipcert</title><div id="app"></div>';

describe.each([
  ['built', true],
  ['not built', false],
])('the /app route, page %s', (_what, built) => {
  const data = tempDataDir();
  const webDir = mkdtempSync(join(tmpdir(), 'lipcert-web-route-'));
  let server: ServerHandle;
  let origin: string;

  beforeAll(async () => {
    if (built) {
      mkdirSync(join(webDir, 'assets'));
      writeFileSync(join(webDir, 'index.html'), PAGE);
      writeFileSync(join(webDir, 'assets', 'index-abc123.js'), 'console.log(1)');
    }
    server = await startServer({ port: 0, host: '127.0.0.1', dataDir: data.dir, log: () => undefined, webDir });
    origin = `http://127.0.0.1:${server.port}`;
  });
  afterAll(async () => {
    await server?.stop();
    data.remove();
    rmSync(webDir, { recursive: true, force: true });
  });

  test('answers every page path with index.html, or a note to build', async () => {
    for (const path of ['/app/', '/app/runs/some-run', '/app/models/m1?x=1']) {
      const res = await fetch(origin + path);
      const body = await res.text();
      if (built) {
        expect([res.status, body]).toEqual([200, PAGE]);
        expect(res.headers.get('cache-control')).toBe('no-cache');
      } else {
        expect(res.status).toBe(503);
        expect(body).toContain('npm run build');
      }
    }
    const bare = await fetch(`${origin}/app?x=1`, { redirect: 'manual' });
    expect([bare.status, bare.headers.get('location')]).toEqual([301, '/app/?x=1']);
  });

  test('serves built files with long-lived caching and 404s a missing one', async () => {
    const asset = await fetch(`${origin}/app/assets/index-abc123.js`);
    if (built) {
      expect(asset.status).toBe(200);
      expect(asset.headers.get('content-type')).toMatch(/javascript/);
      expect(asset.headers.get('cache-control')).toContain('immutable');
    } else {
      expect(asset.status).toBe(404);
    }
    expect((await fetch(`${origin}/app/assets/missing.js`)).status).toBe(404);
  });

  test('keeps GraphiQL at /', async () => {
    const res = await fetch(`${origin}/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/graphiql/i);
  });
});
