/**
 * Resource limits decided before work, on fresh servers. `npm start`'s own entry point (main.ts,
 * run from source in a child process, LIPCERT_MAX_MEMORY_MB=1536) refuses the 272-byte models with
 * one 1×1 convolution on a declared [1,1,8000,8000] or [1,1,100000,100000] input at import, with
 * RESOURCE_LIMIT and the estimate in the message, writes no file for them, and its peak RSS (the
 * kernel's VmHWM) stays under 1.5 GB; the fixture still imports. A model imported before the limit
 * (by an earlier version, or under a larger limit) is refused again by its background global bound
 * and at startRun.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { floatTensor, modelBytes, node, valueInfo } from '../../src/model/onnx-builder.js';
import { Models } from '../../src/server/models.js';
import { startServer } from '../../src/server/server.js';
import { openStore } from '../../src/store/db.js';
import { codeOf, fixtureBase64, gql, tempDataDir, waitFor, zeroPng } from './client.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const GiB = 2 ** 30;

/** One 1×1 convolution on a declared [1,1,side,side] input: a few hundred bytes of ONNX. */
function oneConvolution(side: number): Uint8Array {
  return modelBytes({
    nodes: [node('Conv', ['x', 'w'], ['y'])],
    initializers: [floatTensor('w', [1, 1, 1, 1], [1])],
    inputs: [valueInfo('x', [1, 1, side, side])],
    outputs: [valueInfo('y', [1, 1, side, side])],
  });
}

/** The kernel's record of a process's peak resident memory (Linux /proc), in bytes. */
function peakRss(pid: number): number {
  const line = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!line) throw new Error(`no VmHWM for process ${pid}`);
  return Number(line[1]) * 1024;
}

const IMPORT = `mutation($name: String!, $onnx: String!) { importModel(name: $name, onnxBase64: $onnx) { id } }`;
const REFUSAL = (side: number) =>
  new RegExp(`^analysing this model would take about [\\d.]+ GiB of memory \\(largest layer input ${side * side} values\\); the limit is 1\\.5 GiB \\(LIPCERT_MAX_MEMORY_MB\\)$`);

describe('npm start with LIPCERT_MAX_MEMORY_MB=1536', () => {
  const data = tempDataDir();
  let child: ChildProcess;
  let url: string;

  beforeAll(async () => {
    child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'server', 'main.ts')], {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: '', PORT: '0', LIPCERT_DATA_DIR: data.dir, LIPCERT_PRELOAD: '0', LIPCERT_MAX_MEMORY_MB: '1536' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stderr!.on('data', (chunk) => (output += chunk));
    url = await new Promise<string>((resolve, reject) => {
      child.stdout!.on('data', (chunk) => {
        output += chunk;
        const serving = /serving GraphQL at (http:\/\/\S+\/graphql)/.exec(output);
        if (serving) resolve(serving[1]);
      });
      child.once('exit', (code) => reject(new Error(`the server exited (${code}) before serving:\n${output}`)));
    });
  }, 120_000);
  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    data.remove();
  });

  test('the 8000² and 100000² one-convolution models are refused at import with RESOURCE_LIMIT; peak RSS stays under 1.5 GB', async () => {
    for (const side of [8000, 100000]) {
      const bytes = oneConvolution(side);
      expect(bytes.length).toBeLessThan(300);
      const r = await gql(url, IMPORT, { name: `conv${side}`, onnx: Buffer.from(bytes).toString('base64') });
      expect(codeOf(r)).toBe('RESOURCE_LIMIT');
      expect(r.errors![0].message).toMatch(REFUSAL(side));
      // The raw-bytes route refuses it the same way.
      const raw = await fetch(url.replace(/\/graphql$/, `/models?name=conv${side}`), { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(bytes) });
      expect(raw.status).toBe(400);
      const body = (await raw.json()) as { errors: { message: string; extensions: { code: string } }[] };
      expect(body.errors[0].extensions.code).toBe('RESOURCE_LIMIT');
      expect(body.errors[0].message).toMatch(REFUSAL(side));
    }
    expect(peakRss(child.pid!)).toBeLessThan(1.5e9); // measured: 229 MiB
    // Nothing of them was kept, and an ordinary model still imports.
    expect((await gql(url, '{ models { id } }')).data.models).toEqual([]);
    expect(readdirSync(join(data.dir, 'models'))).toEqual([]);
    const mnist = await gql(url, IMPORT, { name: 'mnist', onnx: fixtureBase64('mnist_lenet.onnx') });
    expect(mnist.errors).toBeUndefined();
    expect(readdirSync(join(data.dir, 'models'))).toHaveLength(1);
    expect(peakRss(child.pid!)).toBeLessThan(1.5e9);
  });
});

describe('a model imported before the limit', () => {
  const data = tempDataDir();
  afterAll(() => data.remove());

  test('its global bound FAILS with RESOURCE_LIMIT before any work, and startRun refuses it', async () => {
    // A 1000² convolution (estimate about 1.9 GiB) imported without a limit, as an earlier version did.
    const store = await openStore(data.dir);
    const { model } = await new Models(store, { maxUploadBytes: 2 ** 20, resourceLimits: { maxMemoryBytes: Infinity } }).import('conv1000', oneConvolution(1000));
    await store.close();

    const server = await startServer({ port: 0, dataDir: data.dir, preload: false, log: () => undefined, backgroundBackend: 'cpu', resourceLimits: { maxMemoryBytes: 1.5 * GiB } });
    try {
      const status = `query($id: ID!) { model(id: $id) { globalBound globalBoundStatus globalBoundError } }`;
      const failed = await waitFor('the global bound to end', async () => {
        const { data } = await gql(server.url, status, { id: model.id });
        return data.model.globalBoundStatus === 'FAILED' && data.model;
      });
      expect(failed.globalBound).toBeNull();
      expect(failed.globalBoundError).toMatch(/^analysing this model would take about [\d.]+ GiB of memory \(largest layer input 1000000 values\); the limit is 1\.5 GiB/);
      expect(server.service.stats.globalBoundsComputed).toBe(0);

      const input = await gql(server.url, `mutation($m: ID!, $png: String!) { addInput(modelId: $m, pngBase64: $png) { id } }`, {
        m: model.id,
        png: (await zeroPng(1000, 1000)).toString('base64'),
      });
      expect(input.errors).toBeUndefined();
      const run = await gql(server.url, `mutation($m: ID!, $i: ID!) { startRun(modelId: $m, inputId: $i, eps: [0.01]) { id } }`, { m: model.id, i: input.data.addInput.id });
      expect(codeOf(run)).toBe('RESOURCE_LIMIT');
      expect(run.errors![0].message).toMatch(/^analysing this model would take about [\d.]+ GiB of memory/);
      expect((await gql(server.url, '{ runs { totalCount } }')).data.runs.totalCount).toBe(0);
    } finally {
      await server.stop();
    }
  });
});
