/**
 * The server end to end over HTTP and graphql-ws, on the real library: import, input, run with
 * progress events and a result, the same request served from the cache, a restart on the same
 * data directory (still cached), and a run left RUNNING by a crash marked FAILED.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startServer, type ServerHandle } from '../../src/server/server.js';
import {
  FIXTURES,
  MNIST_NORM,
  RUN_FIELDS,
  collectSubscription,
  fixtureBase64,
  gql,
  reference,
  tempDataDir,
  waitFor,
} from './client.js';

const quiet = () => undefined;
const ref = reference().models.mnist_lenet.images['8'];
const relativeError = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

const IMPORT = `mutation($name: String!, $onnx: String!) {
  importModel(name: $name, onnxBase64: $onnx) {
    id name sha256 inputShape outputShape parameterCount globalBoundStatus
    layers { index kind name relu inputShape outputShape params { kernel strides pads group parameterCount } }
  }
}`;
const ADD_INPUT = `mutation($model: ID!, $name: String, $png: String, $npy: String, $mean: [Float!], $std: [Float!]) {
  addInput(modelId: $model, name: $name, pngBase64: $png, npyBase64: $npy, mean: $mean, std: $std) {
    id name sha256 shape predictedClass margin logits
  }
}`;
/** The paper's method with Lanczos estimates: what reference.json holds (the default is tested in methods.test.ts). */
const START = `mutation($model: ID!, $input: ID!, $eps: [Float!]!, $radius: Boolean) {
  startRun(modelId: $model, inputId: $input, eps: $eps, radius: $radius, method: PAPER, certificate: ESTIMATE, backend: CPU) { ${RUN_FIELDS} }
}`;
const PROGRESS = `subscription($id: ID!) {
  runProgress(runId: $id) { runId status progress message phase run { ${RUN_FIELDS} } }
}`;
const RUN = `query($id: ID!) { run(id: $id) { ${RUN_FIELDS} } }`;

describe('lipcert server', () => {
  const data = tempDataDir();
  let server: ServerHandle;
  let modelId: string;
  let inputId: string;
  let firstResult: unknown;
  const eps = [0.01, 0.1];

  beforeAll(async () => {
    server = await startServer({ port: 0, host: '127.0.0.1', dataDir: data.dir, log: quiet, backgroundBackend: 'cpu' });
  });
  afterAll(async () => {
    await server?.stop();
    data.remove();
  });

  test('imports an ONNX model and returns the same model for the same bytes', async () => {
    const bytes = readFileSync(join(FIXTURES, 'mnist_lenet.onnx'));
    const first = await gql(server.url, IMPORT, { name: 'mnist', onnx: bytes.toString('base64') });
    expect(first.errors).toBeUndefined();
    const model = first.data.importModel;
    modelId = model.id;
    expect(model.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(model.inputShape).toEqual([1, 28, 28]);
    expect(model.outputShape).toEqual([10]);
    expect(model.parameterCount).toBeGreaterThan(0);
    expect(model.layers.length).toBeGreaterThan(0);
    const convs = model.layers.filter((l: { kind: string }) => l.kind === 'conv');
    expect(convs.length).toBe(2); // the fixture README: two 5×5 convolutions
    for (const conv of convs) expect(conv.params.kernel).toEqual([5, 5]);
    const sum = model.layers.reduce((n: number, l: { params: { parameterCount: number } }) => n + l.params.parameterCount, 0);
    expect(sum).toBe(model.parameterCount);

    const again = await gql(server.url, IMPORT, { name: 'mnist again', onnx: bytes.toString('base64') });
    expect(again.data.importModel.id).toBe(modelId);
    const listed = await gql(server.url, '{ models { id } }');
    expect(listed.data.models.map((m: { id: string }) => m.id)).toEqual([modelId]);
  });

  test('imports raw ONNX bytes over POST /models (for models too large for a JSON string)', async () => {
    const base = server.url.replace(/\/graphql$/, '');
    const bytes = readFileSync(join(FIXTURES, 'mnist_lenet.onnx'));
    const res = await fetch(`${base}/models?name=mnist`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).data.importModel.id).toBe(modelId);
    const bad = await fetch(`${base}/models?name=bad`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: new Uint8Array(100).fill(7),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).errors[0].extensions.code).toBe('UNSUPPORTED_MODEL');
    const form = await fetch(`${base}/models?name=x`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
    expect(form.status).toBe(415);
  });

  test('computes the global bound in the background', async () => {
    const model = await waitFor('the global bound', async () => {
      const r = await gql(server.url, `query($id: ID!) { model(id: $id) {
        globalBound globalBoundQuality globalBoundStatus globalBoundError layers { index globalBound globalBoundQuality } } }`, { id: modelId });
      const m = r.data.model;
      if (m.globalBoundStatus === 'FAILED') throw new Error(m.globalBoundError);
      return m.globalBoundStatus === 'DONE' ? m : null;
    });
    expect(['ESTIMATE', 'UPPER', 'EXACT']).toContain(model.globalBoundQuality);
    // Certified (the default): at least the reference estimate, at most the coarse KW inflation of
    // its five factors above it (2.1% each, certificates.ts COARSE_KW_EPSILON); an estimate: within 1%.
    if (model.globalBoundQuality === 'UPPER') {
      expect(model.globalBound).toBeGreaterThanOrEqual(ref.global_bound * (1 - 1e-6));
      expect(model.globalBound).toBeLessThanOrEqual(ref.global_bound * 1.021 ** 5);
    } else {
      expect(relativeError(model.globalBound, ref.global_bound)).toBeLessThan(1e-2);
    }
    const product = model.layers
      .filter((l: { globalBound: number | null }) => l.globalBound !== null)
      .reduce((p: number, l: { globalBound: number }) => p * l.globalBound, 1);
    expect(relativeError(product, model.globalBound)).toBeLessThan(1e-6);
  });

  test('adds inputs from PNG and npy with their class and margin', async () => {
    const png = await gql(server.url, ADD_INPUT, { model: modelId, name: 'eight', png: fixtureBase64('mnist_8.png'), ...MNIST_NORM });
    expect(png.errors).toBeUndefined();
    const input = png.data.addInput;
    inputId = input.id;
    expect(input.shape).toEqual([1, 28, 28]);
    expect(input.predictedClass).toBe(ref.class);
    expect(relativeError(input.margin, ref.margin_top2)).toBeLessThan(1e-3);
    expect(input.logits).toHaveLength(10);

    const same = await gql(server.url, ADD_INPUT, { model: modelId, png: fixtureBase64('mnist_8.png'), ...MNIST_NORM });
    expect(same.data.addInput.id).toBe(inputId);

    const npy = await gql(server.url, ADD_INPUT, { model: modelId, name: 'eight (npy)', npy: fixtureBase64('mnist_lenet_x0.npy') });
    expect(npy.errors).toBeUndefined();
    expect(npy.data.addInput.predictedClass).toBe(ref.class);

    const listed = await gql(server.url, `query($id: ID!) { model(id: $id) { inputs { id } } }`, { id: modelId });
    expect(listed.data.model.inputs.map((i: { id: string }) => i.id)).toContain(inputId);
  });

  test('runs a certification with progress events and a result', async () => {
    const computedBefore = server.service.stats.runsComputed;
    const started = await gql(server.url, START, { model: modelId, input: inputId, eps });
    expect(started.errors).toBeUndefined();
    const run = started.data.startRun;
    expect(run.cached).toBe(false);
    expect(['QUEUED', 'RUNNING']).toContain(run.status);

    const { payloads, error } = await collectSubscription(server.wsUrl, PROGRESS, { id: run.id });
    expect(error).toBeUndefined();
    const events = payloads.map((p) => p.data.runProgress);
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect(events.every((e) => e.runId === run.id)).toBe(true);
    const last = events.at(-1);
    expect(last.status).toBe('SUCCEEDED');
    expect(last.progress).toBe(1);
    for (let i = 1; i < events.length; i++) {
      if (events[i].status === 'RUNNING' && events[i - 1].status === 'RUNNING') {
        expect(events[i].progress).toBeGreaterThanOrEqual(events[i - 1].progress);
      }
    }
    expect(server.service.stats.runsComputed).toBe(computedBefore + 1);

    const final = last.run;
    expect(final.cached).toBe(false);
    expect(final.backend).toBe('cpu');
    expect(final.adapter).toBeTruthy();
    expect(final.requestedBackend).toBe('CPU');
    expect(final.error).toBeNull();
    expect(final.timings.startedAt).toBeTruthy();
    expect(final.timings.finishedAt).toBeTruthy();
    expect(final.timings.computeSeconds).toBeGreaterThan(0);
    const result = final.result;
    expect(result.class).toBe(ref.class);
    expect(result.local.map((l: { eps: number }) => l.eps)).toEqual(eps);
    for (const local of result.local) {
      expect(['ESTIMATE', 'UPPER', 'EXACT']).toContain(local.quality);
      expect(relativeError(local.bound, ref.local_bound_converged[String(local.eps)])).toBeLessThan(1e-2);
      expect(local.layers.length).toBeGreaterThan(0);
    }
    // A run without radius reports the model's global bound, computed in the background with the
    // defaults (certified norms: at most a few percent above the estimates of reference.json).
    expect(result.globalBound).toMatchObject({ method: 'TIGHT', certificate: 'PROBABILISTIC', quality: 'UPPER' });
    expect(result.globalBound.bound).toBeGreaterThanOrEqual(ref.global_bound * (1 - 1e-3));
    expect(relativeError(result.globalBound.bound, ref.global_bound)).toBeLessThan(5e-2);
    expect(result.radius).toBeNull();
    firstResult = result;

    const fetched = await gql(server.url, RUN, { id: run.id });
    expect(fetched.data.run.result).toEqual(result);
  });

  test('serves the same request again from the cache without computing', async () => {
    const computedBefore = server.service.stats.runsComputed;
    const again = await gql(server.url, START, { model: modelId, input: inputId, eps });
    const run = again.data.startRun;
    expect(run.cached).toBe(true);
    expect(run.status).toBe('SUCCEEDED');
    expect(run.result).toEqual(firstResult);
    expect(server.service.stats.runsComputed).toBe(computedBefore);

    // A subscription to a finished run gets its final state and completes.
    const { payloads } = await collectSubscription(server.wsUrl, PROGRESS, { id: run.id });
    expect(payloads.map((p) => p.data.runProgress.status)).toEqual(['SUCCEEDED']);
  });

  test('runs on the backend AUTO picks when none is named', async () => {
    const started = await gql(server.url, `mutation($m: ID!, $i: ID!) { startRun(modelId: $m, inputId: $i, eps: [0.015]) { id requestedBackend } }`, {
      m: modelId,
      i: inputId,
    });
    expect(started.data.startRun.requestedBackend).toBe('AUTO');
    const { payloads } = await collectSubscription(server.wsUrl, PROGRESS, { id: started.data.startRun.id });
    const run = payloads.at(-1)!.data.runProgress.run;
    expect(run.status).toBe('SUCCEEDED');
    expect(['cpu', 'webgpu']).toContain(run.backend);
    expect(run.result.local[0].bound).toBeGreaterThan(0);
  });

  test('computes the certified radius', async () => {
    const started = await gql(server.url, START, { model: modelId, input: inputId, eps: [], radius: true });
    expect(started.errors).toBeUndefined();
    const { payloads } = await collectSubscription(server.wsUrl, PROGRESS, { id: started.data.startRun.id }, 110_000);
    const run = payloads.at(-1)!.data.runProgress.run;
    expect(run.status).toBe('SUCCEEDED');
    expect(relativeError(run.result.radius.local, ref.certified_radius_local)).toBeLessThan(2e-2);
    expect(relativeError(run.result.radius.global, ref.certified_radius_global)).toBeLessThan(2e-2);
    expect(run.result.radius.evaluations).toBeGreaterThan(0);
    expect(run.result.radius.globalQuality).toBe(run.result.globalBound.quality);
  });

  test('serves an offline GraphiQL page at / and instead of the CDN landing page at /graphql', async () => {
    const root = await fetch(server.url.replace(/\/graphql$/, '/'));
    expect(root.status).toBe(200);
    expect(root.headers.get('content-type')).toMatch(/text\/html/);
    const html = await root.text();
    expect(html).toContain('renderYogaGraphiQL');
    expect(html).not.toMatch(/<script[^>]+src=["']https?:/);
    expect(html).not.toMatch(/<link[^>]+href=["']https?:/);
    const landing = await fetch(server.url, { headers: { accept: 'text/html' } });
    expect(await landing.text()).toBe(html);
  });

  test('answers CORS preflights for local frontends only', async () => {
    const preflight = (origin: string) =>
      fetch(server.url, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
    const local = await preflight('http://localhost:5173');
    expect(local.status).toBe(204);
    expect(local.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(local.headers.get('access-control-allow-headers')).toBe('content-type');
    const foreign = await preflight('https://example.com');
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    const post = await fetch(server.url, {
      method: 'POST',
      headers: { origin: 'http://127.0.0.1:3000', 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ about { engineVersion } }' }),
    });
    expect(post.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:3000');
  });

  test('lists runs newest first, page by page', async () => {
    const all = await gql(server.url, `query($m: ID) { runs(modelId: $m) { totalCount nodes { id } } }`, { m: modelId });
    const ids = all.data.runs.nodes.map((r: { id: string }) => r.id);
    expect(all.data.runs.totalCount).toBe(ids.length);
    expect(ids.length).toBeGreaterThanOrEqual(3);
    const page1 = await gql(server.url, `{ runs(first: 2) { nodes { id } hasNextPage endCursor } }`);
    expect(page1.data.runs.hasNextPage).toBe(true);
    const page2 = await gql(server.url, `query($after: String) { runs(first: 2, after: $after) { nodes { id } } }`, {
      after: page1.data.runs.endCursor,
    });
    expect([...page1.data.runs.nodes, ...page2.data.runs.nodes].map((r: { id: string }) => r.id)).toEqual(ids.slice(0, 4));
    const cached = await gql(server.url, `{ runs(status: SUCCEEDED) { nodes { status } } }`);
    expect(cached.data.runs.nodes.every((r: { status: string }) => r.status === 'SUCCEEDED')).toBe(true);
  });

  test('after a restart on the same data directory the result is still cached', async () => {
    await server.stop();
    server = await startServer({ port: 0, host: '127.0.0.1', dataDir: data.dir, log: quiet, backgroundBackend: 'cpu' });
    const models = await gql(server.url, '{ models { id globalBoundStatus inputs { id } } }');
    expect(models.data.models.map((m: { id: string }) => m.id)).toEqual([modelId]);
    expect(models.data.models[0].globalBoundStatus).toBe('DONE');
    const again = await gql(server.url, START, { model: modelId, input: inputId, eps });
    expect(again.data.startRun.cached).toBe(true);
    expect(again.data.startRun.result).toEqual(firstResult);
    expect(server.service.stats.runsComputed).toBe(0);
    expect(server.service.stats.globalBoundsComputed).toBe(0);
  });

  test('a run left RUNNING by a crash is FAILED at start-up, and the next run works', async () => {
    const started = await gql(server.url, START, { model: modelId, input: inputId, eps: [0.02] });
    const runId = started.data.startRun.id;
    await collectSubscription(server.wsUrl, PROGRESS, { id: runId });
    await server.stop();
    // What a crash mid-run leaves behind: the run still RUNNING, no result.
    const db = new Database(join(data.dir, 'lipcert.db'));
    db.prepare(`UPDATE "Run" SET "status" = 'RUNNING', "finishedAt" = NULL WHERE "id" = ?`).run(runId);
    db.close();

    server = await startServer({ port: 0, host: '127.0.0.1', dataDir: data.dir, log: quiet, backgroundBackend: 'cpu' });
    const run = (await gql(server.url, RUN, { id: runId })).data.run;
    expect(run.status).toBe('FAILED');
    expect(run.error.code).toBe('INTERRUPTED');
    expect(run.error.message).toMatch(/server stopped/);
    expect(run.result).toBeNull();

    const next = await gql(server.url, START, { model: modelId, input: inputId, eps: [0.03] });
    const { payloads } = await collectSubscription(server.wsUrl, PROGRESS, { id: next.data.startRun.id });
    expect(payloads.at(-1)!.data.runProgress.status).toBe('SUCCEEDED');
  });
});
