/**
 * `lipcert worker --redis URL --server URL [--name NAME] [--token T] [--backend B] [--cache DIR]`:
 * a compute process for a server started with LIPCERT_REDIS_URL (src/worker/worker.ts). Start any
 * number, on any machines that reach Redis and the server. Runs until SIGINT/SIGTERM: the first
 * finishes the current job and stops; a second stops at once (the job is then computed again by
 * another worker once its lock expires).
 */
import os from 'node:os';
import path from 'node:path';
import { type Command, Option } from 'commander';
import type { BackendName } from '../backend/backend.js';
import { BACKEND_NAMES } from '../backend/select.js';
import { BadInputError } from '../errors.js';
import { startWorker } from '../worker/worker.js';
import { parseCount } from './shared.js';

export interface WorkerCliOptions {
  redis?: string;
  server?: string;
  name?: string;
  token?: string;
  backend: string;
  cache?: string;
  concurrency?: string;
}

function defaultCacheDir(): string {
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'lipcert', 'models');
}

export async function runWorker(options: WorkerCliOptions): Promise<void> {
  const redisUrl = options.redis ?? process.env.LIPCERT_REDIS_URL;
  if (!redisUrl) throw new BadInputError('--redis URL is required (the Redis of the server, e.g. redis://server:6379), or LIPCERT_REDIS_URL');
  if (!options.server) throw new BadInputError('--server URL is required (the lipcert server, e.g. http://server:4000)');
  const name = options.name ?? `${os.hostname()}-${process.pid}`;
  const log = (message: string) => process.stdout.write(`lipcert worker ${name}: ${message}\n`);
  const worker = await startWorker({
    redisUrl,
    serverUrl: options.server,
    name,
    token: options.token ?? (process.env.LIPCERT_TOKEN || undefined),
    backend: options.backend as BackendName,
    cacheDir: options.cache ?? defaultCacheDir(),
    concurrency: parseCount(options.concurrency, '--concurrency', 1),
    log,
  });
  await new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals === 1) {
        log(`${signal}: finishing the current job, then stopping (${signal} again stops at once)`);
        worker.close().then(resolve, resolve);
      } else {
        // The job's lock then expires and another worker computes it (protocol.ts).
        log(`${signal}: stopping now; another worker computes the current job again`);
        process.exit(1);
      }
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  log(`stopped after computing ${worker.computed} run(s)`);
}

export function registerWorkerCommand(program: Command): Command {
  return program
    .command('worker')
    .description('compute runs for a lipcert server started with LIPCERT_REDIS_URL (any number of workers, on any machines)')
    .option('--redis <url>', 'the Redis the server queues runs on, e.g. redis://server:6379 (default LIPCERT_REDIS_URL)')
    .option('--server <url>', 'the lipcert server, for model bytes, e.g. http://server:4000')
    .option('--name <name>', 'recorded with every result this worker computes (default HOSTNAME-PID)')
    .option('--token <token>', "the server's API token, if it has one (default LIPCERT_TOKEN)")
    .addOption(new Option('--backend <name>', 'backend for runs that ask for AUTO').choices(BACKEND_NAMES).default('auto'))
    .option('--cache <dir>', 'where fetched models are kept (default ~/.cache/lipcert/models)')
    .option('--concurrency <n>', 'jobs at a time (default 1: one job uses the machine\'s cores)')
    .action(async (options: WorkerCliOptions) => {
      await runWorker(options);
    });
}
