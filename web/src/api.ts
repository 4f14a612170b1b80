/**
 * The page's only way to the server: GraphQL over HTTP (fetch), subscriptions over graphql-ws on the
 * same URL, and the raw-bytes route for models too large for a base64 string. Every failure becomes
 * an ApiError carrying the server's `extensions.code` and message, for display next to the field.
 */
import { createClient, type Client } from 'graphql-ws';
import type { TypedDocumentString } from './generated/graphql';

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

interface GraphQLErrorShape {
  message: string;
  extensions?: { code?: string };
}
interface GraphQLBody<T> {
  data?: T | null;
  errors?: GraphQLErrorShape[];
}

const GRAPHQL_PATH = '/graphql';

function errorOf(errors: GraphQLErrorShape[]): ApiError {
  const first = errors[0]!;
  return new ApiError(first.extensions?.code ?? 'GRAPHQL_ERROR', first.message);
}

/** Parses a JSON answer in GraphQL's shape, or explains the HTTP failure. */
async function readBody<T>(res: Response): Promise<T> {
  let body: GraphQLBody<T>;
  try {
    body = (await res.json()) as GraphQLBody<T>;
  } catch {
    throw new ApiError(`HTTP_${res.status}`, `the server answered ${res.status} ${res.statusText || ''}`.trim());
  }
  if (body.errors?.length) throw errorOf(body.errors);
  if (!body.data) throw new ApiError(`HTTP_${res.status}`, 'the server sent no data');
  return body.data;
}

async function post(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, { method: 'POST', ...init });
  } catch {
    throw new ApiError('NETWORK_ERROR', 'the lipcert server cannot be reached');
  }
}

/** One operation over HTTP: its variables and answer typed by the document (generated/graphql.ts). */
export async function gql<T, V>(document: TypedDocumentString<T, V>, ...[variables]: V extends Record<string, never> ? [] : [V]): Promise<T> {
  const res = await post(GRAPHQL_PATH, {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: document.toString(), variables: variables ?? {} }),
  });
  return readBody<T>(res);
}

/** POST /models with the raw ONNX bytes: the answer is importModel's { id name sha256 }. */
export async function uploadModelBytes(name: string, file: Blob): Promise<{ id: string }> {
  const res = await post(`/models?name=${encodeURIComponent(name)}`, {
    headers: { 'content-type': 'application/octet-stream' },
    body: file,
  });
  return (await readBody<{ importModel: { id: string } }>(res)).importModel;
}

let client: Client | null = null;

function wsClient(): Client {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  client ??= createClient({ url: `${scheme}://${location.host}${GRAPHQL_PATH}`, lazy: true, retryAttempts: 2 });
  return client;
}

export interface Subscriber<T> {
  next(data: T): void;
  error(error: ApiError): void;
  complete(): void;
}

/** Starts a subscription; the function returned ends it. */
export function subscribe<T, V extends Record<string, unknown>>(document: TypedDocumentString<T, V>, variables: V, sink: Subscriber<T>): () => void {
  return wsClient().subscribe<T>(
    { query: document.toString(), variables },
    {
      next(value) {
        if (value.errors?.length) sink.error(errorOf(value.errors as GraphQLErrorShape[]));
        else if (value.data) sink.next(value.data as T);
      },
      error(error) {
        if (Array.isArray(error)) sink.error(errorOf(error as GraphQLErrorShape[]));
        else if (error instanceof Error) sink.error(new ApiError('SUBSCRIPTION_ERROR', error.message));
        else sink.error(new ApiError('SUBSCRIPTION_ERROR', 'the live connection to the server closed'));
      },
      complete: () => sink.complete(),
    },
  );
}

/** The ApiError inside anything thrown. */
export function asApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  return new ApiError('CLIENT_ERROR', error instanceof Error ? error.message : String(error));
}
