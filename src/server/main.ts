/**
 * `npm start`: migrates the store, preloads the fixture models and serves GraphQL (and graphql-ws)
 * at /graphql with GraphiQL at /. Configuration from the environment:
 *   PORT (4000), HOST (127.0.0.1), LIPCERT_DATA_DIR (./data), LIPCERT_MAX_UPLOAD_MB (600),
 *   LIPCERT_CONCURRENCY (the cores: runs at once), LIPCERT_PRELOAD (1; 0 to skip the fixtures),
 *   LIPCERT_BACKGROUND_BACKEND (auto; cpu or webgpu) for the global bounds computed after imports,
 *   LIPCERT_CORS_ORIGINS (local: localhost origins; * for any; or a comma-separated list),
 *   LIPCERT_ALLOWED_HOSTS (host names served besides localhost and IP addresses; * for any),
 *   LIPCERT_TOKEN (API token every request must carry), LIPCERT_ALLOW_NO_TOKEN (1: serve a HOST
 *   beyond loopback without one), LIPCERT_MAX_QUERY_COST (fields × list sizes per operation),
 *   LIPCERT_MAX_MEMORY_MB (largest estimated peak memory of a model's analysis; 60% of RAM).
 *   LIPCERT_REDIS_URL (runs go through a BullMQ queue on this Redis to `lipcert worker` processes).
 * A configuration the server refuses is one line on stderr and exit status 2.
 */
import os from 'node:os';
import { LipcertError } from '../errors.js';
import type { BackendName } from '../index.js';
import { resourceLimitsFromEnv } from '../resources.js';
import { parseAllowedHosts } from './host-check.js';
import { DEFAULT_MAX_COST } from './query-limits.js';
import { startServer, type ServerHandle } from './server.js';

function numberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) {
    console.error(`lipcert: ${name}=${raw} is not a non-negative number`);
    process.exit(2);
  }
  return value;
}

const background = process.env.LIPCERT_BACKGROUND_BACKEND || 'auto';
if (!['auto', 'cpu', 'webgpu'].includes(background)) {
  console.error(`lipcert: LIPCERT_BACKGROUND_BACKEND=${background} is not one of auto, cpu, webgpu`);
  process.exit(2);
}

const corsEnv = process.env.LIPCERT_CORS_ORIGINS || 'local';
const corsOrigins = corsEnv === '*' || corsEnv === 'local' ? corsEnv : corsEnv.split(',').map((o) => o.trim());

let handle: ServerHandle;
try {
  handle = await startServer({
    port: numberFromEnv('PORT', 4000),
    host: process.env.HOST || '127.0.0.1',
    dataDir: process.env.LIPCERT_DATA_DIR || './data',
    maxUploadBytes: Math.round(numberFromEnv('LIPCERT_MAX_UPLOAD_MB', 600) * 1024 * 1024),
    concurrency: Math.max(1, Math.floor(numberFromEnv('LIPCERT_CONCURRENCY', os.availableParallelism()))),
    preload: process.env.LIPCERT_PRELOAD !== '0',
    backgroundBackend: background as BackendName,
    corsOrigins,
    allowedHosts: parseAllowedHosts(process.env.LIPCERT_ALLOWED_HOSTS),
    token: process.env.LIPCERT_TOKEN || undefined,
    allowNoToken: process.env.LIPCERT_ALLOW_NO_TOKEN === '1',
    maxQueryCost: numberFromEnv('LIPCERT_MAX_QUERY_COST', DEFAULT_MAX_COST),
    resourceLimits: resourceLimitsFromEnv(),
    redisUrl: process.env.LIPCERT_REDIS_URL || undefined,
  });
} catch (error) {
  if (!(error instanceof LipcertError)) throw error;
  console.error(`lipcert: ${error.message}`);
  process.exit(2);
}

// `on`, not `once`: a library's signal-exit hook re-raises the signal when it sees no other listener.
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    console.log(`lipcert: ${signal}, stopping (running jobs are queued again for the next start)`);
    handle.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  });
}
