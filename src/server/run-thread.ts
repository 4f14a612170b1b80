/**
 * A compute thread of the server's own process (run-threads.ts): it computes the runs the main
 * thread sends it, one at a time, with analyse() — the pipeline of the main thread and of `lipcert
 * worker` — on a CPU backend kept for the next run of the same model, and posts back that it started,
 * its progress (at most every PROGRESS_MS, and at each new phase) and the result, or the error as
 * {code, message}. A 'cancel' aborts the run's analysis; a 'close' waits for the run in hand, disposes
 * of the backend and lets the thread exit. The network comes with the first run of a model
 * (structured-cloned); later runs of the same model name it by its sha256 only.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { analyse, throttledProgress } from '../analysis/analyse.js';
import { BackendPool } from '../backend/pool.js';
import type { CpuBackendOptions } from '../backend/cpu/index.js';
import { invariant } from '../errors.js';
import { toWire } from '../job-thread.js';
import type { Network } from '../model/ir.js';
import type { RunThreadReply, RunThreadRequest } from './run-threads.js';
import { analysisOptions } from './run-request.js';

const PROGRESS_MS = 100;

const cpu = (workerData as { cpu?: CpuBackendOptions } | undefined)?.cpu ?? {};
const backends = new BackendPool(1, cpu);
let model: { sha256: string; network: Network } | undefined;
let current: { runId: string; abort: AbortController } | undefined;
/** The run in hand (resolved when there is none): 'close' waits for it. */
let running: Promise<void> = Promise.resolve();

const post = (reply: RunThreadReply) => parentPort!.postMessage(reply);

async function run(request: Extract<RunThreadRequest, { kind: 'run' }>): Promise<void> {
  const { runId } = request;
  const abort = new AbortController();
  current = { runId, abort };
  try {
    if (request.network) model = { sha256: request.sha256, network: request.network };
    invariant(model?.sha256 === request.sha256, `compute thread: no network for model ${request.sha256}`);
    const { network } = model;
    const result = await backends.use(network, 'cpu', async (backend) => {
      post({ kind: 'started', runId, backend: backend.name, adapter: backend.adapter });
      const onProgress = throttledProgress(PROGRESS_MS, (event) => post({ kind: 'progress', runId, event }));
      return analyse(network, request.input, backend, { ...analysisOptions(request.request, request.globalBound), signal: abort.signal, onProgress });
    });
    post({ kind: 'result', runId, result });
  } catch (e) {
    post({ kind: 'error', runId, error: toWire(e) });
  } finally {
    current = undefined;
  }
}

parentPort!.on('message', (message: RunThreadRequest) => {
  switch (message.kind) {
    case 'run':
      running = run(message);
      break;
    case 'cancel':
      if (current?.runId === message.runId) current.abort.abort();
      break;
    case 'close':
      // After the run in hand (a server stop cancels it first): the thread is never torn down while
      // onnxruntime computes for it.
      void running.then(() => backends.dispose()).finally(() => parentPort!.close());
      break;
  }
});
