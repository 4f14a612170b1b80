/**
 * Bad input never takes the server down: each mistake comes back as a GraphQL error with its
 * `extensions.code`, and the server answers the next request. A model whose file was lost is
 * NOT_FOUND at startRun, and importing its bytes again restores it. (A run that fails while it
 * computes, recorded FAILED with its code: test/server/overflow.test.ts.)
 */
import { randomBytes } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, type ServerHandle } from '../../src/server/server.js';
import {
  CIFAR_NORM,
  MNIST_NORM,
  RUN_FIELDS,
  codeOf,
  collectSubscription,
  fixtureBase64,
  gql,
  tempDataDir,
} from './client.js';

const quiet = () => undefined;
const MAX_UPLOAD = 256 * 1024; // the MNIST model (179 KB) fits, the CIFAR-10 model (3.5 MB) does not

describe('lipcert server with bad input', () => {
  const data = tempDataDir();
  let server: ServerHandle;
  let mnist: string;
  let eight: string;

  const stillAnswers = async () => {
    const r = await gql(server.url, '{ about { engineVersion } models { id } }');
    expect(r.errors).toBeUndefined();
    expect(r.data.about.engineVersion).toBeTruthy();
  };

  beforeAll(async () => {
    server = await startServer({ port: 0, dataDir: data.dir, log: quiet, maxUploadBytes: MAX_UPLOAD, maxDepth: 8, backgroundBackend: 'cpu' });
    const model = await gql(server.url, `mutation($onnx: String!) { importModel(name: "mnist", onnxBase64: $onnx) { id } }`, {
      onnx: fixtureBase64('mnist_lenet.onnx'),
    });
    mnist = model.data.importModel.id;
    const input = await gql(
      server.url,
      `mutation($m: ID!, $png: String!, $mean: [Float!], $std: [Float!]) { addInput(modelId: $m, pngBase64: $png, mean: $mean, std: $std) { id } }`,
      { m: mnist, png: fixtureBase64('mnist_8.png'), ...MNIST_NORM },
    );
    eight = input.data.addInput.id;
  });
  afterAll(async () => {
    await server?.stop();
    data.remove();
  });

  const IMPORT = `mutation($onnx: String!) { importModel(name: "bad", onnxBase64: $onnx) { id } }`;
  const ADD = `mutation($m: ID!, $png: String, $npy: String, $mean: [Float!], $std: [Float!]) {
    addInput(modelId: $m, pngBase64: $png, npyBase64: $npy, mean: $mean, std: $std) { id } }`;
  const START = `mutation($m: ID!, $i: ID!, $eps: [Float!]!) { startRun(modelId: $m, inputId: $i, eps: $eps, backend: CPU) { id } }`;

  test('malformed ONNX bytes: UNSUPPORTED_MODEL', async () => {
    expect(codeOf(await gql(server.url, IMPORT, { onnx: randomBytes(4096).toString('base64') }))).toBe('UNSUPPORTED_MODEL');
    expect(codeOf(await gql(server.url, IMPORT, { onnx: '' }))).toBe('UNSUPPORTED_MODEL');
    // A valid protobuf that is not a network: a PNG is not an ONNX model either.
    expect(codeOf(await gql(server.url, IMPORT, { onnx: fixtureBase64('mnist_8.png') }))).toBe('UNSUPPORTED_MODEL');
    expect(codeOf(await gql(server.url, IMPORT, { onnx: 'not base64 at all!' }))).toBe('BAD_USER_INPUT');
    await stillAnswers();
  });

  test('an input of the wrong shape or format: BAD_USER_INPUT', async () => {
    // A 32×32 RGB image for a 1×28×28 model.
    expect(codeOf(await gql(server.url, ADD, { m: mnist, png: fixtureBase64('cifar10_dog4.png'), ...CIFAR_NORM }))).toBe('BAD_USER_INPUT');
    // The CIFAR-10 nominal input as npy: [1,3,32,32].
    expect(codeOf(await gql(server.url, ADD, { m: mnist, npy: fixtureBase64('cifar10_net_x0.npy') }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await gql(server.url, ADD, { m: mnist, npy: randomBytes(64).toString('base64') }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await gql(server.url, ADD, { m: mnist }))).toBe('BAD_USER_INPUT');
    expect(
      codeOf(await gql(server.url, ADD, { m: mnist, png: fixtureBase64('mnist_8.png'), npy: fixtureBase64('mnist_lenet_x0.npy') })),
    ).toBe('BAD_USER_INPUT');
    expect(codeOf(await gql(server.url, ADD, { m: mnist, png: fixtureBase64('mnist_8.png'), mean: [0], std: [0] }))).toBe('BAD_USER_INPUT');
    await stillAnswers();
  });

  test('eps <= 0 or not finite: BAD_USER_INPUT', async () => {
    for (const eps of [[0], [-0.1], [0.1, -1]]) {
      expect(codeOf(await gql(server.url, START, { m: mnist, i: eight, eps }))).toBe('BAD_USER_INPUT');
    }
    expect(codeOf(await gql(server.url, START, { m: mnist, i: eight, eps: [] }))).toBe('BAD_USER_INPUT');
    // JSON cannot carry Infinity, a GraphQL literal can.
    const literal = await gql(server.url, `mutation($m: ID!, $i: ID!) { startRun(modelId: $m, inputId: $i, eps: [1e400]) { id } }`, {
      m: mnist,
      i: eight,
    });
    expect(codeOf(literal)).toBe('BAD_USER_INPUT');
    const runs = await gql(server.url, '{ runs { totalCount } }');
    expect(runs.data.runs.totalCount).toBe(0);
    await stillAnswers();
  });

  test('unknown ids: NOT_FOUND', async () => {
    const nobody = '00000000-0000-0000-0000-000000000000';
    expect((await gql(server.url, `query($id: ID!) { model(id: $id) { id } }`, { id: nobody })).data.model).toBeNull();
    expect((await gql(server.url, `query($id: ID!) { run(id: $id) { id } }`, { id: nobody })).data.run).toBeNull();
    expect(codeOf(await gql(server.url, `mutation($id: ID!) { deleteModel(id: $id) }`, { id: nobody }))).toBe('NOT_FOUND');
    expect(codeOf(await gql(server.url, `mutation($id: ID!) { cancelRun(id: $id) { id } }`, { id: nobody }))).toBe('NOT_FOUND');
    expect(codeOf(await gql(server.url, ADD, { m: nobody, png: fixtureBase64('mnist_8.png') }))).toBe('NOT_FOUND');
    expect(codeOf(await gql(server.url, START, { m: nobody, i: eight, eps: [0.1] }))).toBe('NOT_FOUND');
    expect(codeOf(await gql(server.url, START, { m: mnist, i: nobody, eps: [0.1] }))).toBe('NOT_FOUND');
    const sub = await collectSubscription(server.wsUrl, `subscription($id: ID!) { runProgress(runId: $id) { status } }`, { id: nobody });
    const errors = sub.payloads.flatMap((p) => p.errors ?? []);
    expect(errors[0]?.extensions?.code).toBe('NOT_FOUND');
    await stillAnswers();
  });

  test('oversized uploads: PAYLOAD_TOO_LARGE', async () => {
    // Over the upload limit, within the request body limit: the resolver refuses it.
    const model = await gql(server.url, IMPORT, { onnx: randomBytes(MAX_UPLOAD + 1024).toString('base64') });
    expect(codeOf(model)).toBe('PAYLOAD_TOO_LARGE');
    const input = await gql(server.url, ADD, { m: mnist, npy: randomBytes(MAX_UPLOAD + 1024).toString('base64') });
    expect(codeOf(input)).toBe('PAYLOAD_TOO_LARGE');
    // Over the request body limit: refused before parsing, still as a GraphQL error.
    const body = await gql(server.url, IMPORT, { onnx: fixtureBase64('cifar10_net.onnx') });
    expect(body.status).toBe(413);
    expect(codeOf(body)).toBe('PAYLOAD_TOO_LARGE');
    const raw = await fetch(server.url.replace(/\/graphql$/, '/models?name=big'), {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: randomBytes(MAX_UPLOAD + 1),
    });
    expect(raw.status).toBe(413);
    expect(((await raw.json()) as any).errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
    await stillAnswers();
  });

  test('queries nested too deep are refused, over HTTP and WebSocket', async () => {
    const deep = `query($id: ID!) { model(id: $id) { inputs { model { inputs { model { inputs { model { inputs { model { id } } } } } } } } } }`;
    const http = await gql(server.url, deep, { id: mnist });
    expect(codeOf(http)).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(http.errors![0]!.message).toMatch(/depth \d+ exceeds the limit of 8/);
    const shallow = await gql(server.url, `query($id: ID!) { model(id: $id) { inputs { model { id } } } }`, { id: mnist });
    expect(shallow.data.model.inputs[0].model.id).toBe(mnist);

    const ws = await collectSubscription(
      server.wsUrl,
      `subscription { runProgress(runId: "x") { run { model { inputs { model { inputs { model { inputs { model { id } } } } } } } } } }`,
      {},
    );
    const errors = (ws.error as GqlErrors | undefined) ?? [];
    expect(Array.isArray(errors) ? errors[0]?.message : String(errors)).toMatch(/depth \d+ exceeds/);
    await stillAnswers();
  });

  test('a model whose file went missing: startRun says so (NOT_FOUND), and importing the same bytes restores it', async () => {
    // Take the model's ONNX file away behind the server's back, then restart so nothing is cached in memory.
    const sha = (await gql(server.url, `query($id: ID!) { model(id: $id) { sha256 } }`, { id: mnist })).data.model.sha256;
    await server.stop();
    unlinkSync(join(data.dir, 'models', `${sha}.onnx`));
    server = await startServer({ port: 0, dataDir: data.dir, log: quiet, maxUploadBytes: MAX_UPLOAD, maxDepth: 8, backgroundBackend: 'cpu' });

    // startRun reads the network (its resource check) before it queues anything.
    const refused = await gql(server.url, START, { m: mnist, i: eight, eps: [0.1] });
    expect(codeOf(refused)).toBe('NOT_FOUND');
    expect(refused.errors![0].message).toBe("the ONNX file of model 'mnist' is missing from the data directory");
    expect((await gql(server.url, '{ runs { totalCount } }')).data.runs.totalCount).toBe(0);

    // Importing the same bytes again restores the file: same model, and the next run succeeds.
    const again = await gql(server.url, IMPORT, { onnx: fixtureBase64('mnist_lenet.onnx') });
    expect(again.data.importModel.id).toBe(mnist);
    const next = await gql(server.url, START, { m: mnist, i: eight, eps: [0.1] });
    const done = await collectSubscription(
      server.wsUrl,
      `subscription($id: ID!) { runProgress(runId: $id) { status run { ${RUN_FIELDS} } } }`,
      { id: next.data.startRun.id },
    );
    const final = done.payloads.at(-1)!.data.runProgress;
    expect(final.status).toBe('SUCCEEDED');
    expect(final.run.result.local[0].bound).toBeGreaterThan(0);
  });

  test('deleting a model removes it with its inputs and runs', async () => {
    const before = await gql(server.url, `query($m: ID) { runs(modelId: $m) { totalCount } }`, { m: mnist });
    expect(before.data.runs.totalCount).toBeGreaterThan(0);
    expect((await gql(server.url, `mutation($id: ID!) { deleteModel(id: $id) }`, { id: mnist })).data.deleteModel).toBe(true);
    expect((await gql(server.url, `query($id: ID!) { model(id: $id) { id } }`, { id: mnist })).data.model).toBeNull();
    const after = await gql(server.url, `query($m: ID) { runs(modelId: $m) { totalCount } }`, { m: mnist });
    expect(after.data.runs.totalCount).toBe(0);
    expect(codeOf(await gql(server.url, START, { m: mnist, i: eight, eps: [0.1] }))).toBe('NOT_FOUND');
    await stillAnswers();
  });
});

type GqlErrors = { message: string }[];
