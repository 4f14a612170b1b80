/**
 * Who reaches the API, on a real server: the Host check on HTTP and on the WebSocket upgrade (DNS
 * rebinding), the browser Origin at the upgrade (a foreign page gets no connection_ack), and
 * LIPCERT_TOKEN on /graphql, /models and the graphql-ws connection_init. Pure checks first.
 */
import { request } from 'node:http';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { hostAllowed, hostName, parseAllowedHosts } from '../../src/server/host-check.js';
import { startServer, type ServerHandle } from '../../src/server/server.js';
import { bearerMatches, exposureProblem, isLoopback } from '../../src/server/token.js';
import { fixtureBase64, tempDataDir } from './client.js';

const quiet = () => undefined;

describe('Host and token rules', () => {
  test('host names: localhost, IP literals and the configured names only', () => {
    expect(hostName('LOCALHOST:4000')).toBe('localhost');
    expect(hostName('[::1]:4000')).toBe('::1');
    expect(hostName('example.org.')).toBe('example.org');
    for (const ok of ['localhost', 'localhost:4000', '127.0.0.1:4000', '[::1]:80', '192.168.1.7', 'app.localhost:5173']) {
      expect(hostAllowed(ok, [])).toBe(true);
    }
    for (const bad of ['evil.example', 'evil.example:4000', 'localhost.evil.example', '127.0.0.1.nip.io', '']) {
      expect(hostAllowed(bad, [])).toBe(false);
    }
    expect(hostAllowed('lipcert.example:4000', ['lipcert.example'])).toBe(true);
    expect(hostAllowed('a.lipcert.example', ['lipcert.example'])).toBe(false);
    expect(hostAllowed('a.lipcert.example', ['.lipcert.example'])).toBe(true);
    expect(hostAllowed('evil.example', '*')).toBe(true);
    expect(parseAllowedHosts(' a.example, b.example ,')).toEqual(['a.example', 'b.example']);
    expect(parseAllowedHosts('*')).toBe('*');
    expect(parseAllowedHosts(undefined)).toEqual([]);
  });

  test('bearer tokens and the exposure rule', () => {
    expect(bearerMatches('Bearer s3cret', 's3cret')).toBe(true);
    expect(bearerMatches('bearer   s3cret ', 's3cret')).toBe(true);
    expect(bearerMatches('Bearer s3cre', 's3cret')).toBe(false);
    expect(bearerMatches('s3cret', 's3cret')).toBe(false);
    expect(bearerMatches(undefined, 's3cret')).toBe(false);
    expect(isLoopback('127.0.0.1') && isLoopback('::1') && isLoopback('localhost') && isLoopback('127.1.2.3')).toBe(true);
    expect(isLoopback('0.0.0.0') || isLoopback('::') || isLoopback('192.168.1.7')).toBe(false);
    expect(exposureProblem('127.0.0.1', undefined, false)).toBeNull();
    expect(exposureProblem('0.0.0.0', 'token', false)).toBeNull();
    expect(exposureProblem('0.0.0.0', undefined, true)).toBeNull();
    expect(exposureProblem('0.0.0.0', undefined, false)).toMatch(/LIPCERT_TOKEN/);
  });
});

/** A raw HTTP POST with chosen headers (fetch does not let a caller set Host). */
function post(url: string, body: string, headers: Record<string, string>): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Opens a graphql-transport-ws socket with the given headers and connection_init payload and says
 * what came back first: 'ack', 'closed <code>' or 'refused <HTTP status>'.
 */
function handshake(wsUrl: string, headers: Record<string, string>, payload?: Record<string, unknown>): Promise<string> {
  return new Promise((resolve) => {
    const socket = new WebSocket(wsUrl, 'graphql-transport-ws', { headers });
    const done = (what: string) => {
      resolve(what);
      socket.terminate();
    };
    socket.on('unexpected-response', (_req, res) => done(`refused ${res.statusCode}`));
    socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', ...(payload ? { payload } : {}) })));
    socket.on('message', (data) => done(JSON.parse(String(data)).type === 'connection_ack' ? 'ack' : `message ${String(data)}`));
    socket.on('close', (code) => done(`closed ${code}`));
    socket.on('error', () => undefined); // 'unexpected-response' or 'close' says what happened
  });
}

const QUERY = JSON.stringify({ query: '{ about { engineVersion } }' });

describe('a server on loopback without a token', () => {
  const data = tempDataDir();
  let server: ServerHandle;
  beforeAll(async () => {
    server = await startServer({ port: 0, dataDir: data.dir, preload: false, log: quiet, allowedHosts: ['lipcert.example'] });
  });
  afterAll(async () => {
    await server?.stop();
    data.remove();
  });

  test('HTTP: a foreign Host is refused with FORBIDDEN, its own names are served', async () => {
    const refused = await post(server.url, QUERY, { host: `evil.example:${server.port}` });
    expect(refused.status).toBe(403);
    expect(refused.body.errors[0].extensions.code).toBe('FORBIDDEN');
    expect(refused.body.errors[0].message).toMatch(/evil\.example/);
    for (const host of [`127.0.0.1:${server.port}`, `localhost:${server.port}`, `lipcert.example:${server.port}`]) {
      const ok = await post(server.url, QUERY, { host });
      expect(ok.status).toBe(200);
      expect(ok.body.data.about.engineVersion).toBeTruthy();
    }
  });

  test('WebSocket: a foreign Origin or Host gets no connection_ack; local pages and non-browser clients do', async () => {
    expect(await handshake(server.wsUrl, { origin: 'http://evil.example' })).toBe('refused 403');
    expect(await handshake(server.wsUrl, { host: `evil.example:${server.port}` })).toBe('refused 403');
    // A page of the rebound name is refused by its Host even though its Origin matches it.
    expect(await handshake(server.wsUrl, { host: `evil.example:${server.port}`, origin: `http://evil.example:${server.port}` })).toBe('refused 403');
    expect(await handshake(server.wsUrl, { origin: 'http://localhost:5173' })).toBe('ack');
    expect(await handshake(server.wsUrl, { origin: `http://127.0.0.1:${server.port}` })).toBe('ack');
    // Same origin under an allowed name (the GraphiQL page served by this server).
    expect(await handshake(server.wsUrl, { host: `lipcert.example:${server.port}`, origin: `http://lipcert.example:${server.port}` })).toBe('ack');
    expect(await handshake(server.wsUrl, {})).toBe('ack');
  });
});

describe('a server with LIPCERT_TOKEN', () => {
  const data = tempDataDir();
  const token = 'correct horse battery staple';
  let server: ServerHandle;
  beforeAll(async () => {
    server = await startServer({ port: 0, dataDir: data.dir, preload: false, log: quiet, token, backgroundBackend: 'cpu' });
  });
  afterAll(async () => {
    await server?.stop();
    data.remove();
  });

  test('HTTP /graphql and /models without the token: 401 UNAUTHENTICATED; with it: served', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: token }] as Record<string, string>[]) {
      const r = await post(server.url, QUERY, headers);
      expect(r.status).toBe(401);
      expect(r.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    }
    const ok = await post(server.url, QUERY, { authorization: `Bearer ${token}` });
    expect(ok.status).toBe(200);
    expect(ok.body.data.about.engineVersion).toBeTruthy();

    const models = server.url.replace(/\/graphql$/, '/models?name=mnist');
    const onnx = Buffer.from(fixtureBase64('mnist_lenet.onnx'), 'base64');
    const refused = await fetch(models, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: onnx });
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as any).errors[0].extensions.code).toBe('UNAUTHENTICATED');
    const imported = await fetch(models, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${token}` },
      body: onnx,
    });
    expect(imported.status).toBe(200);
    expect(((await imported.json()) as any).data.importModel.name).toBe('mnist');
  });

  test('WebSocket: connection_init without the token is closed 4403 before any ack; with it the API answers', async () => {
    expect(await handshake(server.wsUrl, {})).toBe('closed 4403');
    expect(await handshake(server.wsUrl, {}, { authorization: 'Bearer wrong' })).toBe('closed 4403');
    expect(await handshake(server.wsUrl, {}, { authorization: `Bearer ${token}` })).toBe('ack');

    const client = createClient({ url: server.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true, connectionParams: { authorization: `Bearer ${token}` } });
    try {
      const result = await new Promise<any>((resolve, reject) => {
        let value: unknown;
        client.subscribe({ query: '{ models { name } }' }, { next: (v) => (value = v), error: reject, complete: () => resolve(value) });
      });
      expect(result.data.models.map((m: { name: string }) => m.name)).toEqual(['mnist']);
    } finally {
      await client.dispose();
    }
  });
});

describe('starting beyond loopback', () => {
  test('without a token the server refuses to start with a one-line reason; with one (or the opt-out) it starts', async () => {
    const data = tempDataDir();
    try {
      await expect(startServer({ port: 0, host: '0.0.0.0', dataDir: data.dir, preload: false, log: quiet })).rejects.toThrow(
        /^HOST=0\.0\.0\.0 lets other machines reach the server, which then needs LIPCERT_TOKEN[^\n]*$/,
      );
      for (const extra of [{ token: 't0ken' }, { allowNoToken: true }]) {
        const server = await startServer({ port: 0, host: '0.0.0.0', dataDir: data.dir, preload: false, log: quiet, ...extra });
        await server.stop();
      }
    } finally {
      data.remove();
    }
  });
});
