/**
 * The worker thread of a dataset lane (lanes.ts): it builds its own backend for the network it was
 * given, then certifies the images the main thread sends it, one at a time, with certifyImage() —
 * the same function, options and network as the main thread's lane — and posts each record back.
 * Errors go back as {code, message} so the main thread rethrows the same LipcertError. A 'cancel'
 * aborts the image in hand (at its next layer); a 'close' waits for it, disposes of the backend and
 * lets the thread exit: the thread is never terminated while onnxruntime may be computing for it (an
 * addon call finishing in a torn-down thread aborts the whole process).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Backend } from '../backend/backend.js';
import { createBackend } from '../backend/select.js';
import { toWire } from '../job-thread.js';
import { certifyImage } from './certify-image.js';
import type { LaneMessage, LaneReply, LaneRequest, LaneSetup } from './lanes.js';

const setup = workerData as LaneSetup;
let backend: Promise<Backend> | undefined;
let abort = new AbortController();
let current: Promise<void> = Promise.resolve();

async function certify(request: LaneRequest): Promise<LaneReply> {
  try {
    backend ??= createBackend(setup.backend, setup.network, setup.cpu);
    const record = await certifyImage(setup.network, await backend, request.x, request.label, request.index, { ...setup.options, signal: abort.signal });
    return { index: request.index, record };
  } catch (e) {
    return { index: request.index, error: toWire(e) };
  }
}

parentPort!.on('message', (message: LaneMessage) => {
  if (message === 'cancel') {
    abort.abort();
    return;
  }
  if (message === 'close') {
    void current.then(async () => {
      if (backend) await (await backend).dispose().catch(() => {});
      parentPort!.close();
    });
    return;
  }
  if (abort.signal.aborted) abort = new AbortController();
  current = certify(message).then((reply) => parentPort!.postMessage(reply));
});
