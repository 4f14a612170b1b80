/**
 * Test helpers: a GraphQL-over-HTTP call, a graphql-ws subscription collector, temp data dirs,
 * the fixtures as base64, and PNGs of any size written without holding their pixels.
 */
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDeflate } from 'node:zlib';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures');

export interface GqlError {
  message: string;
  extensions?: { code?: string };
}
export interface GqlResponse<T = any> {
  status: number;
  data?: T;
  errors?: GqlError[];
}

export async function gql<T = any>(url: string, query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<GqlResponse<T>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: GqlError[] };
  return { status: res.status, data: body.data ?? undefined, errors: body.errors };
}

/** The first error's code, failing loudly when the call succeeded. */
export function codeOf(response: GqlResponse): string | undefined {
  if (!response.errors?.length) throw new Error(`expected an error, got ${JSON.stringify(response.data)}`);
  return response.errors[0]!.extensions?.code;
}

/** Runs one subscription to completion; returns every `next` payload and the error, if any. */
export function collectSubscription(
  wsUrl: string,
  query: string,
  variables: Record<string, unknown>,
  timeoutMs = 60_000,
): Promise<{ payloads: { data?: any; errors?: GqlError[] }[]; error?: unknown }> {
  const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
  const payloads: { data?: any; errors?: GqlError[] }[] = [];
  return new Promise((resolve) => {
    const finish = (error?: unknown) => {
      clearTimeout(timer);
      void client.dispose();
      resolve({ payloads, error });
    };
    const timer = setTimeout(() => finish(new Error('subscription timed out')), timeoutMs);
    client.subscribe(
      { query, variables },
      {
        next: (value) => payloads.push(value as { data?: any; errors?: GqlError[] }),
        error: (error) => finish(error),
        complete: () => finish(),
      },
    );
  });
}

export function tempDataDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'lipcert-server-test-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function fixtureBase64(name: string): string {
  return readFileSync(join(FIXTURES, name)).toString('base64');
}

export function reference(): any {
  return JSON.parse(readFileSync(join(FIXTURES, 'reference.json'), 'utf8'));
}

export const MNIST_NORM = { mean: [0.1307], std: [0.3081] };
export const CIFAR_NORM = { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] };

export async function waitFor<T>(what: string, poll: () => Promise<T | undefined | null | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await poll();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const RUN_FIELDS = `
  id status progress message cached eps radius method certificate delta seed backend adapter requestedBackend
  error { code message }
  timings { createdAt startedAt finishedAt queuedSeconds computeSeconds }
  result {
    class margin engineVersion tolerance method certificate delta failureProbability
    globalBound { bound quality method certificate failureProbability layers { index bound quality certificate } }
    local { eps bound quality method failureProbability seconds layers { index kind bound quality certificate epsIn } }
    radius { local localUpper global globalQuality method quality failureProbability evaluations marginResolved }
  }`;

/** Imports the MNIST fixture and adds its image 8 (MNIST normalisation): the ids of both. */
export async function importMnist8(url: string): Promise<{ m: string; i: string }> {
  const model = await gql(url, `mutation($onnx: String!) { importModel(name: "mnist", onnxBase64: $onnx) { id } }`, { onnx: fixtureBase64('mnist_lenet.onnx') });
  const input = await gql(
    url,
    `mutation($m: ID!, $png: String!, $mean: [Float!], $std: [Float!]) { addInput(modelId: $m, pngBase64: $png, mean: $mean, std: $std) { id } }`,
    { m: model.data.importModel.id, png: fixtureBase64('mnist_8.png'), ...MNIST_NORM },
  );
  return { m: model.data.importModel.id, i: input.data.addInput.id };
}

/** A PNG of width×height 8-bit gray pixels, all zero: a few hundred KB that decode to width·height bytes. */
export async function zeroPng(width: number, height: number): Promise<Buffer> {
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
