/**
 * Lanes: the images of a dataset certified on several threads at once. Lane 0 is the calling thread
 * with the caller's backend; lanes 1…K−1 are worker threads (image-worker.ts), each with its own
 * backend of the same kind built for a copy of the network. Every lane runs certifyImage() with the
 * same options, one image at a time, taking the next image as it finishes the last, so the
 * records are those of the sequential loop: what a record holds depends only on the network, the
 * image and the options (certify() builds its solvers, random streams and warm starts afresh per
 * image; with --seed every certificate draws the same starts whichever lane runs it), never on which
 * lane ran it or what ran before. Only the wall clock changes: the tight method's per-image work is
 * JavaScript on one thread (and small onnxruntime calls), so a second thread uses a second core.
 */
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Backend, BackendName } from '../backend/backend.js';
import type { CpuBackendOptions } from '../backend/cpu/index.js';
import { autoPrefersCpu } from '../backend/select.js';
import { CancelledError, invariant } from '../errors.js';
import { fromWire, JobThread, threadScriptAvailable, type WireError } from '../job-thread.js';
import type { Dataset } from '../model/dataset.js';
import type { Network } from '../model/ir.js';
import { certifyImage, type ImageCertifyOptions, type ImageRecord } from './certify-image.js';

/** What a worker lane is started with (structured-cloned: plain data only). */
export interface LaneSetup {
  network: Network;
  backend: BackendName;
  cpu?: CpuBackendOptions;
  options: Omit<ImageCertifyOptions, 'signal' | 'onProgress'>;
}

export interface LaneRequest {
  index: number;
  label: number;
  x: Float32Array;
}

/** What the main thread sends a lane: an image, 'cancel' (the image in hand) or 'close'. */
export type LaneMessage = LaneRequest | 'cancel' | 'close';

export type LaneReply = { index: number; record: ImageRecord } | { index: number; error: WireError };

/** The compiled worker script next to this module (absent when running from TypeScript sources, e.g. under Jest). */
const WORKER_SCRIPT = new URL('./image-worker.js', import.meta.url);

/** Whether worker lanes can start here (the compiled worker script exists). */
export function workerLanesAvailable(): boolean {
  return threadScriptAvailable(WORKER_SCRIPT);
}

/**
 * How many lanes, and how many onnxruntime threads each lane's calls may use (the cores shared out).
 * By default one lane per core (at most one per image) for networks small enough that `auto` keeps
 * them on the CPU: their per-image work is mostly JavaScript on one thread. Larger networks get one
 * lane: their onnxruntime calls already use every core, and each lane holds its own copy of the
 * weights and sessions. `requested` (a user's choice) is taken as given, capped at the images.
 */
export function planLanes(network: Network, images: number, requested?: number): { lanes: number; threads: number } {
  const cores = os.availableParallelism();
  const wanted = requested ?? (autoPrefersCpu(network) && workerLanesAvailable() ? cores : 1);
  const lanes = Math.max(1, Math.min(wanted, images));
  return { lanes, threads: Math.max(1, Math.floor(cores / lanes)) };
}

interface PendingImage {
  index: number;
  resolve: (r: ImageRecord) => void;
  reject: (e: Error) => void;
}

/** One worker lane: a thread that certifies the images it is sent, one at a time. */
class WorkerLane extends JobThread<LaneMessage, LaneReply, PendingImage> {
  constructor(setup: LaneSetup) {
    super(WORKER_SCRIPT, setup, "a dataset lane's thread");
  }

  protected receive(reply: LaneReply, pending: PendingImage): void {
    invariant(pending.index === reply.index, `lane reply for image ${reply.index} unexpected`);
    this.done();
    if ('record' in reply) pending.resolve(reply.record);
    else pending.reject(fromWire(reply.error));
  }

  certify(request: LaneRequest): Promise<ImageRecord> {
    const failed = this.failed;
    if (failed) return Promise.reject(failed);
    return new Promise((resolve, reject) => this.begin({ index: request.index, resolve, reject }, request));
  }

  /** Let the thread finish the image in hand, dispose of its backend and exit. */
  close(): Promise<void> {
    return this.closeWith('close');
  }

  /** Stop the lane (abort, or another lane's error): its image is rejected now, and the thread aborts it at its next layer. */
  cancel(): void {
    this.giveUp(new CancelledError(), () => 'cancel');
  }
}

export interface LanesOptions {
  /** K ≥ 1: the calling thread plus K − 1 worker threads. */
  lanes: number;
  /** Options of the worker lanes' own CPU backends. */
  cpu?: CpuBackendOptions;
  signal?: AbortSignal;
  /** Called as each image finishes (in the order they finish), with the number done. */
  onImage?: (record: ImageRecord, done: number, total: number) => void;
}

/** Every image's record, in the dataset's order, certified on `lanes` lanes. */
export async function certifyInLanes(network: Network, dataset: Dataset, backend: Backend, options: ImageCertifyOptions, lanesOptions: LanesOptions): Promise<ImageRecord[]> {
  const lanes = Math.max(1, Math.min(lanesOptions.lanes, dataset.count));
  invariant(Number.isInteger(lanes), `lanes: ${lanesOptions.lanes}`);
  if (lanes > 1 && !workerLanesAvailable()) throw new Error(`lipcert internal error: dataset lanes need the compiled worker ${fileURLToPath(WORKER_SCRIPT)}`);
  const { signal, onProgress: _unused, ...plain } = options;
  const workers = Array.from({ length: lanes - 1 }, () => new WorkerLane({ network, backend: backend.name as BackendName, cpu: lanesOptions.cpu, options: plain }));
  const records: ImageRecord[] = new Array(dataset.count);
  let next = 0;
  let done = 0;
  let stopped = false;
  const run = async (certifyOne: (index: number) => Promise<ImageRecord>) => {
    while (!stopped && next < dataset.count) {
      if (signal?.aborted) throw new CancelledError();
      const index = next++;
      const record = await certifyOne(index);
      records[index] = record;
      lanesOptions.onImage?.(record, ++done, dataset.count);
    }
  };
  const onCaller = (index: number) => certifyImage(network, backend, dataset.image(index), dataset.labels[index], index, options);
  const onWorker = (lane: WorkerLane) => (index: number) => lane.certify({ index, label: dataset.labels[index], x: dataset.image(index) });
  const abort = () => {
    stopped = true;
    for (const w of workers) w.cancel();
  };
  signal?.addEventListener('abort', abort, { once: true });
  try {
    // The first error stops every lane (after the image each is on; worker threads at once) and is
    // rethrown once all have stopped, so nothing runs on the caller's backend after this returns.
    let failure: { error: unknown } | undefined;
    await Promise.all(
      [run(onCaller), ...workers.map((w) => run(onWorker(w)))].map((lane) =>
        lane.catch((error) => {
          if (!failure) {
            failure = { error };
            abort();
          }
        }),
      ),
    );
    if (failure) throw failure.error;
    if (signal?.aborted) throw new CancelledError();
    return records;
  } finally {
    signal?.removeEventListener('abort', abort);
    await Promise.all(workers.map((w) => w.close()));
  }
}
