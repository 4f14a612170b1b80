/**
 * Datasets and dataset runs through the server, in one process (no Redis): importing the
 * Fashion-MNIST sample (GraphQL and raw POST /datasets), every refusal up front, a dataset run
 * followed over graphql-ws against the library's own per-image certification (certifyDataset() of
 * src/dataset/), the cache (extending limit 10 → 20 computes only the 10 new images; a single-image
 * run of the same pixels is served from a dataset image's cache entry), cancelling, and deleting the
 * model.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { dump } from 'npyjs';
import { PNG } from 'pngjs';
import { createBackend } from '../../src/backend/select.js';
import { certifyDataset as certifyInProcess } from '../../src/dataset/certify-dataset.js';
import { loadDataset } from '../../src/model/dataset.js';
import { importOnnx } from '../../src/model/onnx-import.js';
import { startServer, type ServerHandle } from '../../src/server/server.js';
import { codeOf, collectSubscription, FIXTURES, gql, tempDataDir, waitFor } from './client.js';
import { certifyDataset, DATASET_RUN, DATASET_RUN_PROGRESS, FASHION_NORM, importFashion, START_DATASET_RUN } from './dataset-client.js';

const quiet = () => undefined;
const FAST = { method: 'PAPER', certificate: 'ESTIMATE' };
const IMPORT = `mutation($name: String!, $npz: String!, $mean: [Float!], $std: [Float!]) {
  importDataset(name: $name, npzBase64: $npz, mean: $mean, std: $std) { id name sha256 count inputShape pixels mean std } }`;

/** An .npz (stored zip) of `x` uint8 [n,1,28,28] and int64 labels `y`. */
function npz(x: Uint8Array, shape: number[], labels: number[]): string {
  const y = BigInt64Array.from(labels.map(BigInt));
  const files = { 'x.npy': new Uint8Array(dump(x, shape)), 'y.npy': new Uint8Array(dump(y, [labels.length])) };
  return Buffer.from(zipSync(files, { level: 0 })).toString('base64');
}

describe('dataset runs in one process', () => {
  const data = tempDataDir();
  let server: ServerHandle;
  let ids: { m: string; d: string };

  beforeAll(async () => {
    server = await startServer({ port: 0, dataDir: data.dir, log: quiet, backgroundBackend: 'cpu' });
    ids = await importFashion(server.url);
  });
  afterAll(async () => {
    await server?.stop();
    data.remove();
  });

  test('imports an .npz once per bytes and normalisation, through GraphQL or raw bytes', async () => {
    const bytes = readFileSync(join(FIXTURES, 'fashion_test_1000.npz'));
    const again = (await gql(server.url, IMPORT, { name: 'again', npz: bytes.toString('base64'), ...FASHION_NORM })).data.importDataset;
    expect(again).toMatchObject({ id: ids.d, name: 'fashion-test', count: 1000, inputShape: [1, 28, 28], pixels: 'UINT8', mean: [0.286], std: [0.353] });
    const raw = await fetch(`${server.url.replace(/\/graphql$/, '')}/datasets?name=raw&mean=0.286&std=0.353`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
    expect(raw.status).toBe(200);
    expect((await raw.json()).data.importDataset).toMatchObject({ id: ids.d, count: 1000, inputShape: [1, 28, 28] });
    // Other normalisation: another dataset over the same stored file.
    const other = (await gql(server.url, IMPORT, { name: 'unnormalised', npz: bytes.toString('base64') })).data.importDataset;
    expect(other.id).not.toBe(ids.d);
    expect(other.sha256).toBe(again.sha256);
    const listed = (await gql(server.url, `{ datasets { id } }`)).data.datasets.map((d: { id: string }) => d.id);
    expect(listed).toEqual([ids.d, other.id]);
  });

  test('refuses bad data and bad requests up front with BAD_USER_INPUT, one sentence each', async () => {
    const refused = async (query: string, variables: Record<string, unknown>, pattern: RegExp) => {
      const response = await gql(server.url, query, variables);
      expect(codeOf(response)).toBe('BAD_USER_INPUT');
      expect(response.errors![0].message).toMatch(pattern);
    };
    await refused(IMPORT, { name: 'x', npz: 'not base64 !' }, /not valid base64/);
    await refused(IMPORT, { name: 'x', npz: Buffer.from('not a zip').toString('base64') }, /not a valid \.npz/);
    const noLabels = Buffer.from(zipSync({ 'x.npy': new Uint8Array(dump(new Uint8Array(784), [1, 1, 28, 28])) })).toString('base64');
    await refused(IMPORT, { name: 'x', npz: noLabels }, /no array 'y'/);
    await refused(IMPORT, { name: 'x', npz: npz(new Uint8Array(784), [1, 1, 28, 28], [0]), std: [0] }, /std must be positive/);

    // Labels out of the model's range and images of the wrong shape: refused when bound to the model.
    const badLabels = (await gql(server.url, IMPORT, { name: 'labels', npz: npz(new Uint8Array(2 * 784), [2, 1, 28, 28], [3, 10]), ...FASHION_NORM })).data.importDataset;
    await refused(START_DATASET_RUN, { m: ids.m, d: badLabels.id, eps: [0.001] }, /label 10 of image 1 is out of range: the model has 10 classes/);
    // ... but not when the run does not reach the bad label.
    const first = await gql(server.url, START_DATASET_RUN, { m: ids.m, d: badLabels.id, eps: [0.001], limit: 1, ...FAST });
    expect(first.errors).toBeUndefined();
    const wrongShape = (await gql(server.url, IMPORT, { name: 'shape', npz: npz(new Uint8Array(2 * 900), [2, 1, 30, 30], [0, 1]) })).data.importDataset;
    await refused(START_DATASET_RUN, { m: ids.m, d: wrongShape.id, eps: [0.001] }, /images of shape \[1,30,30\], the model expects/);
    await refused(START_DATASET_RUN, { m: ids.m, d: ids.d, eps: [0.001], limit: 1001 }, /limit must be an integer from 1 to 1000/);
    await refused(START_DATASET_RUN, { m: ids.m, d: ids.d, eps: [0.001], limit: 0 }, /limit must be an integer/);
    await refused(START_DATASET_RUN, { m: ids.m, d: ids.d, eps: [-1] }, /eps must be finite and > 0/);
    await refused(START_DATASET_RUN, { m: ids.m, d: ids.d, eps: [], radius: false }, /nothing to compute/);
    await refused(START_DATASET_RUN, { m: ids.m, d: ids.d, eps: [0.001], seed: 3, ...FAST }, /seed/);
    const unknown = await gql(server.url, START_DATASET_RUN, { m: ids.m, d: 'nope', eps: [0.001] });
    expect(codeOf(unknown)).toBe('NOT_FOUND');
    // Nothing was started by the refusals (the one limit-1 run aside).
    expect((await gql(server.url, `{ datasetRuns(first: 100) { id } }`)).data.datasetRuns).toHaveLength(1);
  });

  test('certifies 10 images with live progress, each an ordinary run, as the library certifies them', async () => {
    const { events, run } = await certifyDataset(server.url, server.wsUrl, { ...ids, eps: [0.001], radius: true, limit: 10, ...FAST });
    expect(run).toMatchObject({ status: 'SUCCEEDED', done: 10, total: 10, method: 'PAPER', certificate: 'ESTIMATE', radiusQuality: 'ESTIMATE', workers: ['server'] });
    expect(events.at(-1)).toMatchObject({ status: 'SUCCEEDED', done: 10, total: 10 });
    const done = events.map((e) => e.done);
    expect(done).toEqual([...done].sort((a, b) => a - b)); // never goes back
    expect(new Set(done).size).toBeGreaterThan(2); // progress in between, not only the ends

    // The library's loop over the same images, in this process.
    const network = importOnnx(readFileSync(join(FIXTURES, 'fashion_cnn.onnx')), 'fashion');
    const dataset = loadDataset(join(FIXTURES, 'fashion_test_1000.npz'), network, { ...FASHION_NORM, limit: 10 });
    const backend = await createBackend('cpu', network);
    const expected = await certifyInProcess(network, dataset, backend, { eps: [0.001], radius: true, method: 'paper', certificate: 'estimate' });
    await backend.dispose();
    expect(run.images.map((im: any) => im.index)).toEqual([...Array(10).keys()]);
    for (const [i, im] of run.images.entries()) {
      const want = expected.images[i];
      expect(im).toMatchObject({ status: 'DONE', label: want.label, predictedClass: want.predictedClass, worker: 'server' });
      expect(im.run).toMatchObject({ status: 'SUCCEEDED', worker: 'server' });
      expect(im.margin).toBeCloseTo(want.margin, 4);
      expect(im.local[0].bound).toBeCloseTo(want.local[0].bound, 3);
      if (want.predictedClass === want.label) expect(Math.abs(im.radius / want.radius! - 1)).toBeLessThan(2e-3);
      else expect([im.radius, im.quality]).toEqual([0, 'EXACT']);
    }
    expect(run.accuracy).toBe(expected.accuracy);
    expect(run.certifiedAccuracy.map((p: any) => p.accuracy)).toEqual(expected.certifiedAccuracy!.map((p) => p.accuracy));
    // The dataset's images are not listed among the model's inputs.
    expect((await gql(server.url, `query($m: ID!) { model(id: $m) { inputs { id } } }`, { m: ids.m })).data.model.inputs).toEqual([]);
  });

  test('extending limit 10 → 20 computes only the 10 new images; a single-image run of the same pixels is cached', async () => {
    const computed = server.service.stats.runsComputed;
    const { run } = await certifyDataset(server.url, server.wsUrl, { ...ids, eps: [0.001], radius: true, limit: 20, ...FAST });
    expect(run).toMatchObject({ status: 'SUCCEEDED', done: 20, total: 20 });
    expect(server.service.stats.runsComputed - computed).toBe(10);
    expect(run.images.map((im: any) => im.run.cached)).toEqual([...Array(20).keys()].map((i) => i < 10));
    const curve = run.certifiedAccuracy;
    for (let i = 1; i < curve.length; i++) {
      expect(curve[i].radius).toBeGreaterThan(curve[i - 1].radius);
      expect(curve[i].accuracy).toBeLessThanOrEqual(curve[i - 1].accuracy);
    }

    // Image 12 as a PNG, added as a nominal input with the same normalisation: the same input and cache entry.
    const { x } = { x: readNpzPixels(12) };
    const png = new PNG({ width: 28, height: 28 });
    for (let p = 0; p < 784; p++) png.data.set([x[p], x[p], x[p], 255], 4 * p);
    const input = (await gql(server.url, `mutation($m: ID!, $png: String!, $mean: [Float!], $std: [Float!]) { addInput(modelId: $m, pngBase64: $png, mean: $mean, std: $std) { id } }`, {
      m: ids.m,
      png: PNG.sync.write(png).toString('base64'),
      ...FASHION_NORM,
    })).data.addInput;
    const image = run.images[12];
    const single = (await gql(server.url, `mutation($m: ID!, $i: ID!) { startRun(modelId: $m, inputId: $i, eps: [0.001], radius: ${image.predictedClass === image.label}, method: PAPER, certificate: ESTIMATE) { id cached input { id } } }`, { m: ids.m, i: input.id })).data.startRun;
    expect(single.cached).toBe(true);
    const imageRun = (await gql(server.url, `query($id: ID!) { run(id: $id) { input { id } } }`, { id: image.run.id })).data.run;
    expect(single.input.id).toBe(imageRun.input.id);
    // Added directly, it is now one of the model's inputs.
    expect((await gql(server.url, `query($m: ID!) { model(id: $m) { inputs { id } } }`, { m: ids.m })).data.model.inputs).toEqual([{ id: input.id }]);
  });

  test('cancels a dataset run: its active image runs are cancelled and nothing more is computed', async () => {
    const started = (await gql(server.url, START_DATASET_RUN, { ...ids, eps: [0.003], radius: true, limit: 200, ...FAST })).data.startDatasetRun;
    const watcher = collectSubscription(server.wsUrl, DATASET_RUN_PROGRESS, { id: started.id });
    await waitFor('two images done', async () => (await gql(server.url, DATASET_RUN, { id: started.id })).data.datasetRun.done >= 2);
    const cancelled = (await gql(server.url, `mutation($id: ID!) { cancelDatasetRun(id: $id) { status error { code } } }`, { id: started.id })).data.cancelDatasetRun;
    expect(cancelled).toEqual({ status: 'CANCELLED', error: { code: 'CANCELLED' } });
    const { payloads } = await watcher;
    expect(payloads.at(-1)!.data.datasetRunProgress.status).toBe('CANCELLED');
    await waitFor('the queue to empty', async () => server.service.queue.size.running + server.service.queue.size.pending === 0);
    const run = (await gql(server.url, DATASET_RUN, { id: started.id })).data.datasetRun;
    expect(run.accuracy).toBeNull();
    expect(run.certifiedAccuracy).toBeNull();
    expect(run.images.length).toBeLessThan(200);
    for (const im of run.images) expect(['DONE', 'CANCELLED']).toContain(im.status);
    for (const im of run.images.filter((i: any) => i.status === 'CANCELLED')) expect(im.run.status).toBe('CANCELLED');
  });

  test('deleting the model cancels and removes its dataset runs; the dataset stays', async () => {
    const started = (await gql(server.url, START_DATASET_RUN, { ...ids, eps: [0.002], radius: true, limit: 100, ...FAST })).data.startDatasetRun;
    await waitFor('an image done', async () => (await gql(server.url, DATASET_RUN, { id: started.id })).data.datasetRun.done >= 1);
    const deleted = await gql(server.url, `mutation($m: ID!) { deleteModel(id: $m) }`, { m: ids.m });
    expect(deleted.data.deleteModel).toBe(true);
    expect((await gql(server.url, `query($id: ID!) { datasetRun(id: $id) { id } }`, { id: started.id })).data.datasetRun).toBeNull();
    expect((await gql(server.url, `{ datasetRuns(first: 100) { id } }`)).data.datasetRuns).toEqual([]);
    expect(await server.service.store.prisma.datasetImage.count()).toBe(0);
    expect((await gql(server.url, `query($d: ID!) { dataset(id: $d) { id count } }`, { d: ids.d })).data.dataset).toEqual({ id: ids.d, count: 1000 });
    await waitFor('the queue to empty', async () => server.service.queue.size.running + server.service.queue.size.pending === 0);
    const again = await gql(server.url, START_DATASET_RUN, { ...ids, eps: [0.001] });
    expect(again.errors![0].extensions!.code).toBe('NOT_FOUND');
  });
});

/** Raw uint8 pixels of image i of the fixture, read without the server. */
function readNpzPixels(i: number): Uint8Array {
  const network = importOnnx(readFileSync(join(FIXTURES, 'fashion_cnn.onnx')), 'fashion');
  // Unnormalised floats in [0,1] back to the bytes they came from.
  const scaled = loadDataset(join(FIXTURES, 'fashion_test_1000.npz'), network, { mean: [0], std: [1], limit: i + 1 }).image(i);
  return Uint8Array.from(scaled, (v) => Math.round(v * 255));
}
