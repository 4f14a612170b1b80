/**
 * Graphs over the API: a residual network (torch's export, test/model/fixtures/tiny_residual_op13)
 * imports with each layer's `inputs` and `activation`; its global bound is computed in the background;
 * a run with the default (tight) method and a PAPER run both succeed with the Add layer's inputs in
 * their results, the tight bound no larger than the paper's.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, type ServerHandle } from '../../src/server/server.js';
import { collectSubscription, gql, tempDataDir, waitFor } from './client.js';

const MODELS = join(dirname(fileURLToPath(import.meta.url)), '..', 'model', 'fixtures');
const quiet = () => undefined;

/** A float32 .npy of the given shape (format 1.0, little-endian, C order). */
function npy(shape: number[], data: number[]): string {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const prefix = Buffer.concat([Buffer.from([0x93]), Buffer.from('NUMPY'), Buffer.from([1, 0]), Buffer.from(new Uint16Array([header.length]).buffer), Buffer.from(header, 'latin1')]);
  return Buffer.concat([prefix, Buffer.from(Float32Array.from(data).buffer)]).toString('base64');
}

const START = `mutation($m: ID!, $i: ID!, $method: Method) {
  startRun(modelId: $m, inputId: $i, eps: [0.01], radius: true, method: $method, certificate: ESTIMATE, backend: CPU) { id }
}`;
const PROGRESS = `subscription($id: ID!) { runProgress(runId: $id) { status run {
  status error { code message } result { local { bound layers { index kind inputs relu activation epsIn bound } } radius { local } } } } }`;

describe('a residual network over the API', () => {
  const data = tempDataDir();
  let server: ServerHandle;
  let modelId: string;
  let inputId: string;

  beforeAll(async () => {
    server = await startServer({ port: 0, dataDir: data.dir, log: quiet, backgroundBackend: 'cpu', preload: false });
  });
  afterAll(async () => {
    await server?.stop();
    data.remove();
  });

  async function finalRun(method?: string) {
    const started = await gql(server.url, START, { m: modelId, i: inputId, method });
    expect(started.errors).toBeUndefined();
    const { payloads, error } = await collectSubscription(server.wsUrl, PROGRESS, { id: started.data.startRun.id }, 110_000);
    expect(error).toBeUndefined();
    return payloads.at(-1)!.data.runProgress.run;
  }

  test('imports with each layer\'s inputs and activation', async () => {
    const onnx = readFileSync(join(MODELS, 'tiny_residual_op13.onnx')).toString('base64');
    const imported = await gql(server.url, `mutation($onnx: String!) { importModel(name: "residual", onnxBase64: $onnx) { id layers { index kind inputs relu activation } } }`, { onnx });
    expect(imported.errors).toBeUndefined();
    modelId = imported.data.importModel.id;
    expect(imported.data.importModel.layers).toEqual([
      { index: 0, kind: 'conv', inputs: [-1], relu: true, activation: null },
      { index: 1, kind: 'conv', inputs: [0], relu: true, activation: null },
      { index: 2, kind: 'conv', inputs: [1], relu: false, activation: null },
      { index: 3, kind: 'add', inputs: [0, 2], relu: true, activation: null },
      { index: 4, kind: 'flatten', inputs: [3], relu: false, activation: null },
      { index: 5, kind: 'dense', inputs: [4], relu: false, activation: null },
    ]);
    const x = JSON.parse(readFileSync(join(MODELS, 'tiny_residual_op13.json'), 'utf8'));
    const added = await gql(server.url, `mutation($m: ID!, $npy: String!) { addInput(modelId: $m, npyBase64: $npy) { id } }`, { m: modelId, npy: npy(x.shape, x.data) });
    expect(added.errors).toBeUndefined();
    inputId = added.data.addInput.id;
  });

  test('the global bound is computed in the background (it does not depend on the method)', async () => {
    const model = await waitFor('the global bound', async () => {
      const r = await gql(server.url, `query($id: ID!) { model(id: $id) { globalBoundStatus globalBoundError globalBound } }`, { id: modelId });
      const m = r.data.model;
      if (m.globalBoundStatus === 'FAILED') throw new Error(m.globalBoundError);
      return m.globalBoundStatus === 'DONE' ? m : null;
    });
    expect(model.globalBound).toBeGreaterThan(0);
  });

  test('a run with the default (tight) method and a PAPER run both succeed; the tight bound is no larger', async () => {
    const tight = await finalRun();
    expect(tight.status).toBe('SUCCEEDED');
    const run = await finalRun('PAPER');
    expect(run.status).toBe('SUCCEEDED');
    for (const r of [tight, run]) {
      const add = r.result.local[0].layers.find((l: { kind: string }) => l.kind === 'add');
      expect(add).toMatchObject({ index: 3, inputs: [0, 2], relu: true, activation: null });
      expect(add.bound).toBeLessThanOrEqual(1);
      expect(r.result.radius.local).toBeGreaterThan(0);
    }
    expect(tight.result.local[0].bound).toBeLessThanOrEqual(run.result.local[0].bound * (1 + 1e-3));
  });
});
