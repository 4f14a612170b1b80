/**
 * Real processes for the scale-out benchmark and tests: Debian's redis-server on a free port (no
 * persistence) and `lipcert worker` child processes with their output.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Debian's redis-server; LIPCERT_REDIS_SERVER points elsewhere (a missing file skips the suites that need it). */
export const REDIS_SERVER = process.env.LIPCERT_REDIS_SERVER || '/usr/bin/redis-server';
export const haveRedis = existsSync(REDIS_SERVER);

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** Output of a child process, line by line, with a wait for a line that matches. */
export class Output {
  readonly lines: string[] = [];
  private waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  private partial = '';

  constructor(child: ChildProcess) {
    const take = (chunk: Buffer) => {
      this.partial += chunk.toString('utf8');
      const lines = this.partial.split('\n');
      this.partial = lines.pop()!;
      for (const line of lines) {
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) => !(w.pattern.test(line) && (w.resolve(line), true)));
      }
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
  }

  waitFor(pattern: RegExp, timeoutMs: number, what: string): Promise<string> {
    const seen = this.lines.find((l) => pattern.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; output:\n${this.lines.join('\n')}`)), timeoutMs);
      this.waiters.push({ pattern, resolve: (line) => (clearTimeout(timer), resolve(line)) });
    });
  }
}

export interface Redis {
  url: string;
  stop(): Promise<void>;
}

/** redis-server on a free loopback port, without persistence. */
export async function startRedis(): Promise<Redis> {
  const port = await freePort();
  const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = new Output(child);
  await output.waitFor(/Ready to accept connections/, 20_000, 'redis-server');
  return { url: `redis://127.0.0.1:${port}`, stop: () => stopProcess(child) };
}

/** Sends SIGTERM and waits for the exit (SIGKILL after `graceMs`). */
export function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => (clearTimeout(timer), resolve()));
    child.kill('SIGTERM');
  });
}

export interface WorkerProcess {
  name: string;
  child: ChildProcess;
  output: Output;
  stop(): Promise<void>;
}

/** `lipcert worker` as a child process, ready once it says so. */
export async function startWorkerProcess(cli: string, name: string, args: string[]): Promise<WorkerProcess> {
  const cache = mkdtempSync(join(tmpdir(), 'lipcert-worker-cache-'));
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // Jest's --experimental-vm-modules is not the worker's
  delete env.LIPCERT_TOKEN;
  // The Node flags of the CLI's shebang (src/cli.ts), as `lipcert worker` gets them.
  const child = spawn(process.execPath, ['--single-threaded-gc', '--initial-old-space-size=64', cli, 'worker', '--name', name, '--cache', cache, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const output = new Output(child);
  await output.waitFor(/ready: taking runs/, 60_000, `worker ${name} to start`);
  return {
    name,
    child,
    output,
    stop: async () => {
      await stopProcess(child);
      rmSync(cache, { recursive: true, force: true });
    },
  };
}
