/**
 * Test helpers: a GraphQL-over-HTTP call, a graphql-ws subscription collector, temp data dirs and
 * the fixtures as base64.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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

export async function gql<T = any>(url: string, query: string, variables: Record<string, unknown> = {}): Promise<GqlResponse<T>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
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
    radius { local localUpper global globalQuality method quality failureProbability evaluations }
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
