/**
 * Numbers the API can always return, on a fresh server: an eps whose bound would overflow is refused
 * up front (1e305; 1e29 once the model's global bound is known); a run whose arithmetic leaves
 * floating point ends FAILED with NUMERIC_OVERFLOW and no result (nothing cached), and the next run
 * works; an input whose logits overflow is refused; a global bound that overflows is FAILED with
 * NUMERIC_OVERFLOW, and the model with finite weights of 1e25 is never DONE without its numbers;
 * rows an earlier version stored without their numbers (JSON turned Infinity into null) read as
 * FAILED NUMERIC_OVERFLOW after a restart, so `runs` listings never error. The overflowing models
 * are the MNIST fixture with scaled weights and a chain of dense layers, written as ONNX here.
 */
import { floatTensor, modelBytes, node, valueInfo } from '../../src/model/onnx-builder.js';
import { exportOnnx } from '../../src/model/onnx-export.js';
import { importOnnxFile } from '../../src/model/onnx-import.js';
import { MAX_EPS } from '../../src/server/numbers.js';
import { startServer, type ServerHandle } from '../../src/server/server.js';
import { fixture } from '../helpers/fixtures.js';
import { MNIST_NORM, RUN_FIELDS, codeOf, collectSubscription, fixtureBase64, gql, tempDataDir, waitFor } from './client.js';

const quiet = () => undefined;

/** The MNIST fixture with the weights of its first affine layer (or of all) multiplied by `factor`, as ONNX in base64. */
function scaledMnist(factor: number, layers: 'first' | 'all'): { base64: string; maxWeights: number[] } {
  const network = importOnnxFile(fixture('mnist_lenet.onnx'));
  const affine = network.layers.flatMap((l) => (l.kind === 'conv' || l.kind === 'dense' ? [l] : []));
  for (const layer of layers === 'all' ? affine : affine.slice(0, 1)) layer.weight.forEach((w, i, a) => (a[i] = w * factor));
  const maxWeights = network.layers.map((l) => (l.kind === 'conv' || l.kind === 'dense' ? l.weight.reduce((m, w) => Math.max(m, Math.abs(w)), 0) : 0));
  return { base64: Buffer.from(exportOnnx(network)).toString('base64'), maxWeights };
}

/** `layers` dense 4×4 layers with ReLUs between, weights ±3e38 (finite in float32): each layer's norm is about 7.5e38, their product past float64. */
function denseChain(layers: number): string {
  const weights = Array.from({ length: 16 }, (_, i) => (i % 3 === 0 ? 3e38 : -1.5e38));
  const nodes = [];
  let current = 'x';
  for (let k = 0; k < layers; k++) {
    nodes.push(node('Gemm', [current, `w${k}`], [`h${k}`], { transB: 1 }));
    current = `h${k}`;
    if (k < layers - 1) nodes.push(node('Relu', [current], [(current = `r${k}`)]));
  }
  const initializers = Array.from({ length: layers }, (_, k) => floatTensor(`w${k}`, [4, 4], weights));
  return Buffer.from(modelBytes({ nodes, initializers, inputs: [valueInfo('x', [1, 4])], outputs: [valueInfo(current, [1, 4])] })).toString('base64');
}

const IMPORT = `mutation($name: String!, $onnx: String!) { importModel(name: $name, onnxBase64: $onnx) { id } }`;
const ADD = `mutation($m: ID!, $png: String!, $mean: [Float!], $std: [Float!]) { addInput(modelId: $m, pngBase64: $png, mean: $mean, std: $std) { id margin } }`;
const START = `mutation($m: ID!, $i: ID!, $eps: [Float!]!, $method: Method, $certificate: Certificate) {
  startRun(modelId: $m, inputId: $i, eps: $eps, method: $method, certificate: $certificate, backend: CPU) { id cached } }`;
const FOLLOW = `subscription($id: ID!) { runProgress(runId: $id) { status run { ${RUN_FIELDS} } } }`;
const LISTING = `{ runs(first: 100) { totalCount nodes { ${RUN_FIELDS} } } }`;
const GLOBAL = `query($id: ID!) { model(id: $id) { globalBound globalBoundStatus globalBoundError layers { index globalBound } } }`;

describe('a server whose numbers overflow', () => {
  const data = tempDataDir();
  let server: ServerHandle;
  let mnist: string;
  let eight: string;

  const settledGlobal = (id: string) =>
    waitFor(`the global bound of ${id}`, async () => {
      const { data } = await gql(server.url, GLOBAL, { id });
      return ['DONE', 'FAILED'].includes(data.model.globalBoundStatus) && data.model;
    }, 120_000);
  const follow = async (runId: string) => (await collectSubscription(server.wsUrl, FOLLOW, { id: runId }, 120_000)).payloads.at(-1)!.data.runProgress.run;

  beforeAll(async () => {
    server = await startServer({ port: 0, dataDir: data.dir, preload: false, log: quiet, backgroundBackend: 'cpu' });
    mnist = (await gql(server.url, IMPORT, { name: 'mnist', onnx: fixtureBase64('mnist_lenet.onnx') })).data.importModel.id;
    eight = (await gql(server.url, ADD, { m: mnist, png: fixtureBase64('mnist_8.png'), ...MNIST_NORM })).data.addInput.id;
  });
  afterAll(async () => {
    await server?.stop();
    data.remove();
  });

  test('eps 1e305 is refused up front, and eps 1e29 once the global bound is known', async () => {
    const huge = await gql(server.url, START, { m: mnist, i: eight, eps: [1e305] });
    expect(codeOf(huge)).toBe('BAD_USER_INPUT');
    expect(huge.errors![0].message).toBe(`eps must be at most ${MAX_EPS} (got 1e+305): larger radii overflow the bound's arithmetic`);
    const model = await settledGlobal(mnist);
    expect(model.globalBoundStatus).toBe('DONE');
    const large = await gql(server.url, START, { m: mnist, i: eight, eps: [1e29] });
    expect(codeOf(large)).toBe('BAD_USER_INPUT');
    expect(large.errors![0].message).toMatch(/^eps 1e\+29 times the model's global bound [\d.e+]+ exceeds 3\.2e\+32, past single precision; the global bound itself bounds L\(x0, eps\) at every eps$/);
    expect((await gql(server.url, '{ runs { totalCount } }')).data.runs.totalCount).toBe(0);
  });

  test('a run whose bound overflows ends FAILED with NUMERIC_OVERFLOW and no result, nothing is cached, and the next run works', async () => {
    // First layer ×1e20: the logits stay finite (the input is accepted), the paper's estimates overflow.
    const model = (await gql(server.url, IMPORT, { name: 'conv1 x1e20', onnx: scaledMnist(1e20, 'first').base64 })).data.importModel.id;
    const input = await gql(server.url, ADD, { m: model, png: fixtureBase64('mnist_8.png'), ...MNIST_NORM });
    expect(input.errors).toBeUndefined();
    const args = { m: model, i: input.data.addInput.id, eps: [0.01], method: 'PAPER', certificate: 'ESTIMATE' };
    for (let attempt = 0; attempt < 2; attempt++) {
      const started = await gql(server.url, START, args);
      expect(started.data.startRun.cached).toBe(false); // the failure was not cached: attempt 2 computes again
      const run = await follow(started.data.startRun.id);
      expect(run.status).toBe('FAILED');
      expect(run.error.code).toBe('NUMERIC_OVERFLOW');
      // Either the result's completeness check or the spectral norms' own guard (bounds/norms.ts) stops it.
      expect(run.error.message).toMatch(/^the computation left the range of floating point \((\d+ numbers? missing or infinite, first CertifyResult\.local\.0\.bound|[^)]* in a spectral norm, float32)\): use a smaller eps, or a model with smaller weights$/);
      expect(run.result).toBeNull();
    }
    const next = await gql(server.url, START, { m: mnist, i: eight, eps: [0.01] });
    const ok = await follow(next.data.startRun.id);
    expect(ok.status).toBe('SUCCEEDED');
    expect(ok.result.local[0].bound).toBeGreaterThan(0);
    const listing = await gql(server.url, LISTING);
    expect(listing.errors).toBeUndefined();
    expect(listing.data.runs.nodes.map((r: { status: string }) => r.status).sort()).toEqual(['FAILED', 'FAILED', 'SUCCEEDED']);
  });

  test('a global bound past float64 (eight dense layers of 3e38) is FAILED with NUMERIC_OVERFLOW, not DONE without its number', async () => {
    const model = (await gql(server.url, IMPORT, { name: 'dense 3e38', onnx: denseChain(8) })).data.importModel.id;
    const settled = await settledGlobal(model);
    expect(settled.globalBoundStatus).toBe('FAILED');
    expect(settled.globalBound).toBeNull();
    expect(settled.globalBoundError).toMatch(/^the computation left the range of floating point \(1 number missing or infinite, first NetworkBound\.bound\): use a smaller eps, or a model with smaller weights$/);
    expect(settled.layers.every((l: { globalBound: number | null }) => l.globalBound === null)).toBe(true);
  });

  test('weights of 1e25: the input is refused with NUMERIC_OVERFLOW, and the model is never DONE without its numbers', async () => {
    const huge = scaledMnist(1e25, 'all');
    const model = (await gql(server.url, IMPORT, { name: 'x1e25', onnx: huge.base64 })).data.importModel.id;
    const input = await gql(server.url, ADD, { m: model, png: fixtureBase64('mnist_8.png'), ...MNIST_NORM });
    expect(codeOf(input)).toBe('NUMERIC_OVERFLOW');
    expect(input.errors![0].message).toMatch(/^the computation left the range of floating point \(\d+ numbers missing or infinite, first Input\.margin\)/);
    const settled = await settledGlobal(model);
    if (settled.globalBoundStatus === 'DONE') {
      expect(Number.isFinite(settled.globalBound)).toBe(true);
      for (const layer of settled.layers) expect(layer.globalBound).not.toBeNull();
    } else {
      expect(settled.globalBoundError).toMatch(/^the computation left the range of floating point/);
    }
    expect((await gql(server.url, '{ models { globalBound globalBoundStatus } }')).errors).toBeUndefined();
  });

  /*
   * With weights of 1e25 the float32 operators overflow inside the spectral norms; that once came
   * out as a certified 0 (a silently wrong number). A layer's bound is at least its largest |weight|
   * (an entry of its operator): the model either reports that, or fails with the reason.
   */
  test('weights of 1e25: every layer bound the model reports is at least its largest weight, or the bound fails with its reason', async () => {
    const huge = scaledMnist(1e25, 'all');
    const { data } = await gql(server.url, '{ models { id name } }');
    const model = data.models.find((m: { name: string }) => m.name === 'x1e25').id;
    const settled = await settledGlobal(model);
    if (settled.globalBoundStatus === 'FAILED') {
      expect(settled.globalBoundError).toMatch(/^the computation left the range of floating point/);
      return;
    }
    for (const layer of settled.layers) expect(layer.globalBound).toBeGreaterThanOrEqual(huge.maxWeights[layer.index] * (1 - 1e-6));
  });

  test('results and global bounds stored without their numbers read as FAILED NUMERIC_OVERFLOW after a restart; listings never error', async () => {
    // What an earlier version stored for an overflow: JSON wrote Infinity as null.
    const prisma = server.service.store.prisma;
    const succeeded = await prisma.run.findFirstOrThrow({ where: { status: 'SUCCEEDED', modelId: mnist } });
    const row = await prisma.result.findUniqueOrThrow({ where: { cacheKey: succeeded.cacheKey } });
    const stored = JSON.parse(row.result);
    stored.local[0].bound = null;
    await prisma.result.update({ where: { cacheKey: row.cacheKey }, data: { result: JSON.stringify(stored) } });
    const model = await prisma.model.findUniqueOrThrow({ where: { id: mnist } });
    const global = JSON.parse(model.globalResult!);
    global.bound = null;
    await prisma.model.update({ where: { id: mnist }, data: { globalBound: null, globalResult: JSON.stringify(global) } });
    // Served as it is, the row breaks every listing: the state the repair must leave behind.
    const broken = await gql(server.url, LISTING);
    expect(broken.errors?.[0]?.message).toMatch(/Cannot return null for non-nullable field/);

    await server.stop();
    server = await startServer({ port: 0, dataDir: data.dir, preload: false, log: quiet, backgroundBackend: 'cpu' });
    const listing = await gql(server.url, LISTING);
    expect(listing.errors).toBeUndefined();
    const repaired = listing.data.runs.nodes.find((r: { id: string }) => r.id === succeeded.id);
    expect(repaired.status).toBe('FAILED');
    expect(repaired.error.code).toBe('NUMERIC_OVERFLOW');
    expect(repaired.error.message).toMatch(/first CertifyResult\.local\.0\.bound/);
    expect(repaired.result).toBeNull();
    const { data: after } = await gql(server.url, GLOBAL, { id: mnist });
    expect(after.model.globalBoundStatus).toBe('FAILED');
    expect(after.model.globalBoundError).toMatch(/^the computation left the range of floating point .* first NetworkBound\.bound/);
    expect(after.model.globalBound).toBeNull();
    // The broken result left the cache: the same request computes again.
    const again = await gql(server.url, START, { m: mnist, i: eight, eps: [0.01] });
    expect(again.data.startRun.cached).toBe(false);
    expect((await follow(again.data.startRun.id)).status).toBe('SUCCEEDED');
  });
});
