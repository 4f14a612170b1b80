/**
 * Every error a client sees is one sentence in the API's own terms, with a code, on HTTP and on the
 * WebSocket. A battery of bad requests (broken ONNX, .npy and PNG files, bad normalisation, eps and
 * options, unknown ids, malformed and oversized queries) goes to a fresh server over both transports;
 * each answer must carry `extensions.code` and a one-line message free of internal text (typed-array
 * lengths, Node's range errors, library stream messages, stack frames, NaN, undefined).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { floatTensor, modelBytes, node, valueInfo } from '../../src/model/onnx-builder.js';
import { startServer, type ServerHandle } from '../../src/server/server.js';
import { FIXTURES, type GqlError, MNIST_NORM, collectSubscription, fixtureBase64, gql, importMnist8, tempDataDir } from './client.js';

/** Text that belongs to our code or a library, not to the API. */
const INTERNAL = [
  /typed array/i,
  /out of range/i,
  /\bReceived\b/,
  /\bat \S+ \(/, // a stack frame
  /\.[cm]?[jt]s:\d+/,
  /\bERR_[A-Z_]+/,
  /\b(Range|Type|Syntax|Reference)Error\b/,
  /Maximum call stack/,
  /waitng|read requests|end of stream/i, // pngjs
  /\bundefined\b|\bNaN\b|\[object /,
  /Cannot (read|return)/,
  /prisma|sqlite|SQLITE_/i,
];

function expectClean(what: string, errors: GqlError[] | undefined): string {
  expect({ what, hasErrors: Array.isArray(errors) && errors.length > 0 }).toEqual({ what, hasErrors: true });
  const [error] = errors!;
  expect({ what, code: typeof error.extensions?.code }).toEqual({ what, code: 'string' });
  const oneLine = !error.message.includes('\n') && error.message.length < 400;
  const leaks = INTERNAL.filter((pattern) => pattern.test(error.message)).map(String);
  expect({ what, message: error.message, oneLine, leaks }).toEqual({ what, message: error.message, oneLine: true, leaks: [] });
  return error.extensions!.code!;
}

const npy = (descr: string, shape: number[], dataBytes: number) => {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
  const prefix = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1'), Buffer.alloc(dataBytes)]).toString('base64');
};
const oneConvolution = (side: number, weightDims = [1, 1, 1, 1], weightValues = [1]) =>
  Buffer.from(
    modelBytes({
      nodes: [node('Conv', ['x', 'w'], ['y'])],
      initializers: [floatTensor('w', weightDims, weightValues)],
      inputs: [valueInfo('x', [1, 1, side, side])],
      outputs: [valueInfo('y', [1, 1, side, side])],
    }),
  ).toString('base64');

describe('error messages on a fresh server', () => {
  const data = tempDataDir();
  let server: ServerHandle;
  let cases: { what: string; query: string; variables: Record<string, unknown>; code: string }[];

  beforeAll(async () => {
    server = await startServer({ port: 0, dataDir: data.dir, preload: false, log: () => undefined, backgroundBackend: 'cpu' });
    const { m, i } = await importMnist8(server.url);
    const mnist = readFileSync(join(FIXTURES, 'mnist_lenet.onnx'));
    const png = readFileSync(join(FIXTURES, 'mnist_8.png'));
    const IMPORT = `mutation($onnx: String!) { importModel(name: "bad", onnxBase64: $onnx) { id } }`;
    const ADD = `mutation($m: ID!, $png: String, $npy: String, $mean: [Float!], $std: [Float!]) { addInput(modelId: $m, pngBase64: $png, npyBase64: $npy, mean: $mean, std: $std) { id } }`;
    const START = `mutation($m: ID!, $i: ID!, $eps: [Float!]!, $delta: Float, $seed: Int, $certificate: Certificate) {
      startRun(modelId: $m, inputId: $i, eps: $eps, delta: $delta, seed: $seed, certificate: $certificate) { id } }`;
    const b64 = (bytes: Buffer) => bytes.toString('base64');
    cases = [
      { what: 'random bytes as ONNX', query: IMPORT, variables: { onnx: b64(Buffer.from(Array.from({ length: 4096 }, (_, k) => (k * 7919) % 256))) }, code: 'UNSUPPORTED_MODEL' },
      { what: 'truncated ONNX', query: IMPORT, variables: { onnx: b64(mnist.subarray(0, 50_000)) }, code: 'UNSUPPORTED_MODEL' },
      { what: 'a PNG as ONNX', query: IMPORT, variables: { onnx: b64(png) }, code: 'UNSUPPORTED_MODEL' },
      { what: 'the 100000² convolution', query: IMPORT, variables: { onnx: oneConvolution(100000) }, code: 'RESOURCE_LIMIT' },
      { what: 'a weight shape over few bytes', query: IMPORT, variables: { onnx: oneConvolution(28, [100000, 100000, 1, 1], [1, 2, 3]) }, code: 'UNSUPPORTED_MODEL' },
      { what: 'a negative weight dimension', query: IMPORT, variables: { onnx: oneConvolution(28, [-36, 1, 1, 1], [1]) }, code: 'UNSUPPORTED_MODEL' },
      { what: 'not base64', query: IMPORT, variables: { onnx: 'not base64 at all!' }, code: 'BAD_USER_INPUT' },
      { what: '.npy of odd length', query: ADD, variables: { m, npy: npy('<f4', [1, 1, 28, 28], 4 * 784 + 3) }, code: 'BAD_USER_INPUT' },
      { what: 'truncated .npy', query: ADD, variables: { m, npy: npy('<f4', [1, 1, 28, 28], 100) }, code: 'BAD_USER_INPUT' },
      { what: 'big-endian .npy', query: ADD, variables: { m, npy: npy('>f4', [1, 1, 28, 28], 4 * 784) }, code: 'BAD_USER_INPUT' },
      { what: 'complex .npy', query: ADD, variables: { m, npy: npy('<c8', [1, 1, 28, 28], 8 * 784) }, code: 'BAD_USER_INPUT' },
      { what: '.npy of a huge shape', query: ADD, variables: { m, npy: npy('<f4', [100000, 100000], 16) }, code: 'BAD_USER_INPUT' },
      { what: '.npy with mean and std', query: ADD, variables: { m, npy: npy('<f4', [1, 1, 28, 28], 4 * 784), ...MNIST_NORM }, code: 'BAD_USER_INPUT' },
      { what: 'truncated PNG', query: ADD, variables: { m, png: b64(png.subarray(0, png.length - 20)), ...MNIST_NORM }, code: 'BAD_USER_INPUT' },
      { what: 'corrupt PNG', query: ADD, variables: { m, png: b64(Buffer.concat([png.subarray(0, 40), Buffer.alloc(100, 7), png.subarray(140)])), ...MNIST_NORM }, code: 'BAD_USER_INPUT' },
      { what: 'PNG of another size', query: ADD, variables: { m, png: fixtureBase64('cifar10_dog4.png') }, code: 'BAD_USER_INPUT' },
      { what: 'std zero', query: ADD, variables: { m, png: b64(png), mean: [0], std: [0] }, code: 'BAD_USER_INPUT' },
      { what: 'std negative', query: ADD, variables: { m, png: b64(png), std: [-1] }, code: 'BAD_USER_INPUT' },
      { what: 'infinite mean', query: `mutation($m: ID!, $png: String!) { addInput(modelId: $m, pngBase64: $png, mean: [1e400]) { id } }`, variables: { m, png: b64(png) }, code: 'BAD_USER_INPUT' },
      { what: 'eps 1e305', query: START, variables: { m, i, eps: [1e305] }, code: 'BAD_USER_INPUT' },
      { what: 'eps 0', query: START, variables: { m, i, eps: [0] }, code: 'BAD_USER_INPUT' },
      { what: 'infinite eps', query: `mutation($m: ID!, $i: ID!) { startRun(modelId: $m, inputId: $i, eps: [1e400]) { id } }`, variables: { m, i }, code: 'BAD_USER_INPUT' },
      { what: 'delta 2', query: START, variables: { m, i, eps: [0.1], delta: 2 }, code: 'BAD_USER_INPUT' },
      { what: 'seed without draws', query: START, variables: { m, i, eps: [0.1], seed: 3, certificate: 'DETERMINISTIC' }, code: 'BAD_USER_INPUT' },
      { what: 'eps as text', query: START, variables: { m, i, eps: ['abc'] }, code: 'BAD_USER_INPUT' },
      { what: 'unknown model', query: START, variables: { m: 'nobody', i, eps: [0.1] }, code: 'NOT_FOUND' },
      { what: 'unknown input', query: START, variables: { m, i: 'nobody', eps: [0.1] }, code: 'NOT_FOUND' },
      { what: 'unknown run', query: `mutation { cancelRun(id: "nobody") { id } }`, variables: {}, code: 'NOT_FOUND' },
      { what: 'a syntax error', query: '{ models { id }', variables: {}, code: 'GRAPHQL_PARSE_FAILED' },
      { what: 'an unknown field', query: '{ models { nosuchfield } }', variables: {}, code: 'GRAPHQL_VALIDATION_FAILED' },
      { what: 'too deep', query: '{ model(id: "x") { ' + 'inputs { model { '.repeat(6) + 'id' + ' } }'.repeat(6) + ' } }', variables: {}, code: 'GRAPHQL_VALIDATION_FAILED' },
      { what: 'too costly', query: '{ models { inputs { model { inputs { model { inputs { model { inputs { model { id } } } } } } } } } }', variables: {}, code: 'QUERY_TOO_COMPLEX' },
      { what: 'nesting 2000 deep', query: '{' + 'models { inputs { model { '.repeat(700) + 'id' + ' } } }'.repeat(700) + '}', variables: {}, code: 'QUERY_TOO_COMPLEX' },
      { what: '1000 aliases', query: '{' + Array.from({ length: 1000 }, (_, k) => `a${k}: models { id }`).join(' ') + '}', variables: {}, code: 'QUERY_TOO_COMPLEX' },
      { what: 'a costly page', query: '{ runs(first: 500) { nodes { result { local { layers { spectral { value } } } } } } }', variables: {}, code: 'QUERY_TOO_COMPLEX' },
    ];
  });
  afterAll(async () => {
    await server?.stop();
    data.remove();
  });

  test('over HTTP: every refusal has a code and a clean one-line message', async () => {
    for (const c of cases) {
      const r = await gql(server.url, c.query, c.variables);
      expect({ what: c.what, code: expectClean(c.what, r.errors) }).toEqual({ what: c.what, code: c.code });
    }
    // Outside GraphQL: a body that is not JSON, no query, the raw-bytes route.
    const notJson = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": ' });
    expect(notJson.status).toBe(400);
    expect(expectClean('not JSON', ((await notJson.json()) as { errors: GqlError[] }).errors)).toBe('BAD_REQUEST');
    const noQuery = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expectClean('no query', ((await noQuery.json()) as { errors: GqlError[] }).errors);
    const models = server.url.replace(/\/graphql$/, '/models?name=x');
    for (const [what, init, code] of [
      ['raw route, JSON content type', { headers: { 'content-type': 'application/json' }, body: '{}' }, 'BAD_USER_INPUT'],
      ['raw route, empty body', { headers: { 'content-type': 'application/octet-stream' }, body: '' }, 'UNSUPPORTED_MODEL'],
      ['raw route, the 100000² convolution', { headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(cases[3].variables.onnx as string, 'base64') }, 'RESOURCE_LIMIT'],
    ] as const) {
      const r = await fetch(models, { method: 'POST', ...init });
      expect({ what, code: expectClean(what, ((await r.json()) as { errors: GqlError[] }).errors) }).toEqual({ what, code });
    }
  });

  test('over graphql-ws: the same refusals, the same codes and clean messages', async () => {
    for (const c of cases) {
      const r = await collectSubscription(server.wsUrl, c.query, c.variables, 30_000);
      const errors = (Array.isArray(r.error) ? r.error : r.payloads[0]?.errors) as GqlError[] | undefined;
      expect({ what: c.what, code: expectClean(c.what, errors) }).toEqual({ what: c.what, code: c.code });
    }
  });
});
