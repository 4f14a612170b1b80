/**
 * What the server and `lipcert worker` processes say to each other through Redis: the BullMQ queue
 * of runs, a job's data (the model by sha256, the normalised input, the request), its progress
 * messages, its result and how a failure is encoded, the channel on which the server asks workers to
 * cancel a run, and the lock and stall settings that decide how soon a dead worker's job is retried.
 * Model bytes are not in Redis: a worker fetches them from the server (`GET /models/<sha256>`).
 */
import { Redis } from 'ioredis';
import type { AnalysisProgress, AnalysisResult } from '../analysis/analyse.js';
import { type ErrorCode, LipcertError } from '../errors.js';
import type { RunRequest } from '../server/run-request.js';
import type { NetworkBound } from '../bounds/types.js';

/** The BullMQ queue of runs (under BullMQ's default key prefix). */
export const RUN_QUEUE = 'lipcert-runs';
/** Pub/sub channel: a message is the id of a run to cancel on whichever worker computes it. */
export const CANCEL_CHANNEL = 'lipcert-runs:cancel';

/**
 * A worker holds a job's lock for LOCK_DURATION_MS and renews it every half of that; the workers
 * look for jobs whose lock expired every STALLED_INTERVAL_MS and put them back in the queue. A
 * SIGKILLed worker's job is therefore computed again, by another worker, within about
 * LOCK_DURATION_MS + STALLED_INTERVAL_MS = 20 s. A job may stall MAX_STALLED_COUNT times
 * (its worker killed each time) before it fails.
 */
export const LOCK_DURATION_MS = 15_000;
export const STALLED_INTERVAL_MS = 5_000;
export const MAX_STALLED_COUNT = 5;

/** Completed jobs stay in Redis a day (a server restarted meanwhile still collects the result); failed ones a week. */
export const KEEP_COMPLETED_S = 24 * 3600;
export const KEEP_FAILED_S = 7 * 24 * 3600;

export interface RunJobData {
  runId: string;
  model: { sha256: string; name: string };
  /** The normalised input x0: float32 little-endian, base64. */
  input: string;
  request: RunRequest;
  /** The model's global bound, when the run takes it as its own (reusableGlobalBound). */
  globalBound?: NetworkBound;
}

export interface RunJobResult {
  result: AnalysisResult;
  /** The worker that computed it. */
  worker: string;
}

/** A job's progress messages: a worker starts it (again, when another died), then analyse()'s progress. */
export type RunJobProgress =
  | { kind: 'started'; worker: string; backend?: string; adapter?: string }
  | { kind: 'progress'; worker: string; event: AnalysisProgress };

export function encodeInput(x: Float32Array): string {
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('base64');
}

export function decodeInput(base64: string): Float32Array {
  const bytes = Buffer.from(base64, 'base64');
  const copy = new Uint8Array(bytes); // aligned
  return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
}

/** A failed job's reason: the error's code and message as JSON, so the server records the same error. */
export function encodeFailure(error: unknown): string {
  if (error instanceof LipcertError) return JSON.stringify({ code: error.code, message: error.message });
  return JSON.stringify({ code: 'INTERNAL_SERVER_ERROR', message: `internal error on the worker: ${(error as Error)?.message ?? String(error)}` });
}

/** The error of a failed job (BullMQ's own reasons, such as a job stalled too often, are internal errors). */
export function decodeFailure(reason: string | undefined): Error {
  try {
    const { code, message } = JSON.parse(reason ?? '') as { code: string; message: string };
    if (typeof code === 'string' && typeof message === 'string') {
      if (code === 'INTERNAL_SERVER_ERROR') return new Error(message);
      return new LipcertError(code as ErrorCode, message);
    }
  } catch {
    // not one of ours
  }
  return new Error(`the queue failed the job: ${reason ?? 'no reason given'}`);
}

/** Connects once to Redis to say clearly whether it is there (BullMQ itself would retry forever). */
export async function checkRedis(url: string, timeoutMs = 5000): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    throw new LipcertError('BACKEND_UNAVAILABLE', `cannot reach Redis at ${redactedUrl(url)}: ${(error as Error).message}`);
  } finally {
    client.disconnect();
  }
}

/** A Redis URL without its password, for messages and logs. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}
