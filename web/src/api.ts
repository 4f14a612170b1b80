/**
 * The page's only way to the server: GraphQL over HTTP (fetch), subscriptions over graphql-ws on the
 * same URL, and the raw-bytes routes for models and datasets too large for a base64 string. Every failure becomes
 * an ApiError carrying the server's `extensions.code` and message, for display next to the field.
 * A server started with LIPCERT_TOKEN wants the token: the user enters it once (kept in this
 * browser's localStorage), and it goes as `Authorization: Bearer <token>` on HTTP and as
 * `authorization` in graphql-ws's connection_init payload. A refusal (UNAUTHENTICATED, or the socket
 * closed 4403) tells the listeners of `onTokenNeeded`, which ask for it.
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
const TOKEN_KEY = 'lipcert.token';
/** graphql-ws close code of a connection_init the server refuses (server/token.ts). */
const FORBIDDEN_CLOSE = 4403;

/** The API token entered on this page, or null. */
export function apiToken(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

/** Remembers the token (null forgets it); the live connection reopens with it. */
export function setApiToken(token: string | null): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
  const old = client;
  client = null;
  void old?.dispose();
}

const tokenListeners = new Set<(error: ApiError) => void>();

/** Calls `listener` whenever the server refuses the page for want of its token; returns the unsubscribe. */
export function onTokenNeeded(listener: (error: ApiError) => void): () => void {
  tokenListeners.add(listener);
  return () => tokenListeners.delete(listener);
}

function tokenNeeded(error: ApiError): ApiError {
  for (const listener of tokenListeners) listener(error);
  return error;
}

function authorization(): Record<string, string> {
  const token = apiToken();
  return token ? { authorization: `Bearer ${token}` } : {};
}

function errorOf(errors: GraphQLErrorShape[]): ApiError {
  const first = errors[0]!;
  const error = new ApiError(first.extensions?.code ?? 'GRAPHQL_ERROR', first.message);
  return error.code === 'UNAUTHENTICATED' ? tokenNeeded(error) : error;
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
    return await fetch(url, { method: 'POST', ...init, headers: { ...(init.headers as Record<string, string>), ...authorization() } });
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

/** POST /datasets with the raw .npz bytes: the answer is importDataset's { id ... }. */
export async function uploadDatasetBytes(name: string, file: Blob, mean: number[] | null, std: number[] | null): Promise<{ id: string }> {
  const query = new URLSearchParams({ name });
  if (mean) query.set('mean', mean.join(','));
  if (std) query.set('std', std.join(','));
  const res = await post(`/datasets?${query}`, { headers: { 'content-type': 'application/octet-stream' }, body: file });
  return (await readBody<{ importDataset: { id: string } }>(res)).importDataset;
}

let client: Client | null = null;

/** The code of a WebSocket close event, or null for anything else. */
function closeCode(event: unknown): number | null {
  return typeof event === 'object' && event !== null && 'code' in event && 'reason' in event && typeof event.code === 'number' ? event.code : null;
}

function wsClient(): Client {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  client ??= createClient({
    url: `${scheme}://${location.host}${GRAPHQL_PATH}`,
    lazy: true,
    retryAttempts: 2,
    // Read at each connection: a token entered later opens the next one.
    connectionParams: () => authorization(),
    // As graphql-ws's default (close events only), but a refused token will not be accepted on a retry.
    shouldRetry: (event) => closeCode(event) !== null && closeCode(event) !== FORBIDDEN_CLOSE,
  });
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
        else if (closeCode(error) === FORBIDDEN_CLOSE) {
          sink.error(tokenNeeded(new ApiError('UNAUTHENTICATED', 'the server refused the live connection: it needs its API token')));
        } else if (error instanceof Error) sink.error(new ApiError('SUBSCRIPTION_ERROR', error.message));
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
