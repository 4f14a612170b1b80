/**
 * Limits decided before work, on a real server: query cost (aliases counted), nesting and depth
 * with codes on HTTP and graphql-ws, the standard introspection query served, and input files
 * whose declared size does not match the model refused before decoding (a PNG decompression bomb).
 */
import { once } from 'node:events';
import { createDeflate } from 'node:zlib';
import { getIntrospectionQuery } from 'graphql';
import { MAX_NESTING, nestingDepth } from '../../src/server/query-limits.js';
import { startServer, type ServerHandle } from '../../src/server/server.js';
import { MNIST_NORM, RUN_FIELDS, codeOf, collectSubscription, fixtureBase64, gql, tempDataDir } from './client.js';

const quiet = () => undefined;

/** A PNG of width×height 8-bit gray pixels, all zero: a few hundred KB that decode to width·height bytes. */
async function zeroPng(width: number, height: number): Promise<Buffer> {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (bytes: Buffer) => {
    let c = 0xffffffff;
    for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(8 + data.length + 4);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc(body), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth; colour type 0 (gray), no interlace
  // The image data, deflated as a stream: one filter byte and `width` zeros per row.
  const deflate = createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  deflate.on('data', (d: Buffer) => parts.push(d));
  const row = Buffer.alloc(width + 1);
  for (let y = 0; y < height; y++) if (!deflate.write(row)) await once(deflate, 'drain');
  deflate.end();
  await once(deflate, 'end');
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', Buffer.concat(parts)), chunk('IEND', Buffer.alloc(0))]);
}

/** An .npy header declaring `shape` (float32) followed by `values` zeros. */
function npy(shape: number[], values: number): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
  const prefix = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1'), Buffer.alloc(4 * values)]);
}

describe('nesting scan', () => {
  test('counts brackets outside strings and comments', () => {
    expect(nestingDepth('{ a { b(x: [1, 2]) } }')).toBe(4);
    expect(nestingDepth('{ a(s: "{{{{", t: """ {{{ \\""" {{ """) # {{{{\n }')).toBe(2);
    expect(nestingDepth(getIntrospectionQuery())).toBeLessThan(MAX_NESTING);
    expect(nestingDepth('{' + 'a{'.repeat(2000) + 'b' + '}'.repeat(2001))).toBe(2001);
  });
});

describe('a server with query and input limits', () => {
  const data = tempDataDir();
  let server: ServerHandle;
  let mnist: string;
  beforeAll(async () => {
    server = await startServer({ port: 0, dataDir: data.dir, preload: false, log: quiet, backgroundBackend: 'cpu' });
    const model = await gql(server.url, `mutation($onnx: String!) { importModel(name: "mnist", onnxBase64: $onnx) { id } }`, {
      onnx: fixtureBase64('mnist_lenet.onnx'),
    });
    mnist = model.data.importModel.id;
  });
  afterAll(async () => {
    await server?.stop();
    data.remove();
  });

  test('the standard introspection query is answered (GraphiQL docs, codegen)', async () => {
    const r = await gql(server.url, getIntrospectionQuery());
    expect(r.errors).toBeUndefined();
    expect(r.data.__schema.types.some((t: { name: string }) => t.name === 'Model')).toBe(true);
  });

  test('1000 aliases are refused with QUERY_TOO_COMPLEX while a small query is answered at once', async () => {
    const aliases = '{' + Array.from({ length: 1000 }, (_, i) => `a${i}: models { layers { index kind } inputs { id margin } }`).join(' ') + '}';
    await gql(server.url, '{ about { engineVersion } }'); // warm
    const started = performance.now();
    const [big, small] = await Promise.all([gql(server.url, aliases), gql(server.url, '{ models { id name } }')]);
    const smallSeconds = (performance.now() - started) / 1000;
    expect(codeOf(big)).toBe('QUERY_TOO_COMPLEX');
    expect(big.status).toBe(400);
    expect(big.errors![0].message).toBe('the request has more than 5000 tokens (names, punctuation, values): split it');
    expect(small.errors).toBeUndefined();
    expect(small.data.models).toHaveLength(1);
    expect(smallSeconds).toBeLessThan(1);
    // Ten aliases are an ordinary query.
    const ten = await gql(server.url, '{' + Array.from({ length: 10 }, (_, i) => `a${i}: models { layers { index } inputs { id } }`).join(' ') + '}');
    expect(ten.errors).toBeUndefined();
  });

  test('the cost of a page follows `first`, also from variables', async () => {
    const page = `query($n: Int) { runs(first: $n) { nodes { ${RUN_FIELDS} } } }`;
    const refused = await gql(server.url, page, { n: 500 });
    expect(codeOf(refused)).toBe('QUERY_TOO_COMPLEX');
    expect(refused.status).toBe(400);
    expect(refused.errors![0].message).toMatch(/^the request would cost \d+ \(fields times list sizes\); the limit is 100000/);
    const small = await gql(server.url, page, { n: 5 });
    expect(small.errors).toBeUndefined();
    expect(small.data.runs.nodes).toEqual([]);
  });

  test('depth 2000 answers QUERY_TOO_COMPLEX, not a stack overflow, on HTTP and graphql-ws', async () => {
    const deep = '{' + 'models { inputs { model { '.repeat(700) + 'id' + ' } } }'.repeat(700) + '}';
    const http = await gql(server.url, deep);
    expect(codeOf(http)).toBe('QUERY_TOO_COMPLEX');
    const deepGet = '{' + 'models { inputs { model { '.repeat(30) + 'id' + ' } } }'.repeat(30) + '}'; // 91 levels, a short URL
    const get = await fetch(`${server.url}?query=${encodeURIComponent(deepGet)}`, { headers: { 'apollo-require-preflight': '1' } });
    expect(get.status).toBe(400);
    expect(((await get.json()) as any).errors[0].extensions.code).toBe('QUERY_TOO_COMPLEX');
    expect(http.errors![0].message).toMatch(/nests 2101 levels deep; the limit is 64/);
    const ws = await collectSubscription(server.wsUrl, deep, {}, 10_000);
    expect((ws.error as { extensions?: { code?: string } }[])[0].extensions?.code).toBe('QUERY_TOO_COMPLEX');
  });

  test('graphql-ws: validation, parse and cost errors carry their codes', async () => {
    const codeOfWs = async (query: string) => {
      const r = await collectSubscription(server.wsUrl, query, {}, 10_000);
      const errors = (r.error ?? r.payloads[0]?.errors) as { message: string; extensions?: { code?: string } }[];
      return errors[0].extensions?.code;
    };
    expect(await codeOfWs('{ models { nosuchfield } }')).toBe('GRAPHQL_VALIDATION_FAILED');
    // Deeper than the depth limit (12), below the cost limit.
    expect(await codeOfWs('{ model(id: "x") { ' + 'inputs { model { '.repeat(6) + 'id' + ' } }'.repeat(6) + ' } }')).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(await codeOfWs('{ models { id }')).toBe('GRAPHQL_PARSE_FAILED');
    expect(await codeOfWs('{' + Array.from({ length: 1000 }, (_, i) => `a${i}: models { layers { index } inputs { id } }`).join(' ') + '}')).toBe('QUERY_TOO_COMPLEX');
    expect(await codeOfWs('mutation { deleteModel(id: "nope") }')).toBe('NOT_FOUND'); // a resolver's error keeps its code
    const ok = await collectSubscription(server.wsUrl, '{ models { name } }', {}, 10_000);
    expect(ok.payloads[0].data.models[0].name).toBe('mnist');
  });

  const ADD = `mutation($m: ID!, $png: String, $npy: String, $mean: [Float!], $std: [Float!]) {
    addInput(modelId: $m, pngBase64: $png, npyBase64: $npy, mean: $mean, std: $std) { id } }`;

  test('a 16000×16000 PNG bomb is refused from its header: BAD_USER_INPUT, no decoding', async () => {
    const bomb = (await zeroPng(16000, 16000)).toString('base64');
    expect(bomb.length).toBeLessThan(400_000); // ~249 KB of PNG, 256 MB of pixels
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    const r = await gql(server.url, ADD, { m: mnist, png: bomb, ...MNIST_NORM });
    const seconds = (performance.now() - started) / 1000;
    const growth = process.memoryUsage().rss - rssBefore;
    expect(codeOf(r)).toBe('BAD_USER_INPUT');
    expect(r.errors![0].message).toBe('the PNG is 16000×16000, the model expects 28×28');
    expect(seconds).toBeLessThan(1);
    expect(growth).toBeLessThan(50 * 2 ** 20);
  });

  test('an .npy header declaring another shape is refused before its data is read', async () => {
    const r = await gql(server.url, ADD, { m: mnist, npy: npy([100000, 100000], 16).toString('base64') });
    expect(codeOf(r)).toBe('BAD_USER_INPUT');
    expect(r.errors![0].message).toBe('the .npy array has shape [100000,100000], the model expects [1,1,28,28]');
    // The right shape still works, and a small PNG of the right size too.
    const good = await gql(server.url, ADD, { m: mnist, npy: npy([1, 1, 28, 28], 784).toString('base64') });
    expect(good.errors).toBeUndefined();
    const png = await gql(server.url, ADD, { m: mnist, png: fixtureBase64('mnist_8.png'), ...MNIST_NORM });
    expect(png.errors).toBeUndefined();
  });
});
