/**
 * The worker thread of a dataset lane (lanes.ts): it builds its own backend for the network it was
 * given, then certifies the images the main thread sends it, one at a time, with certifyImage() —
 * the same function, options and network as the main thread's lane — and posts each record back.
 * Errors go back as {code, message} so the main thread rethrows the same LipcertError.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Backend } from '../backend/backend.js';
import { createBackend } from '../backend/select.js';
import { LipcertError } from '../errors.js';
import { certifyImage } from './certify-image.js';
import type { LaneReply, LaneRequest, LaneSetup } from './lanes.js';

const setup = workerData as LaneSetup;
let backend: Promise<Backend> | undefined;

async function certify(request: LaneRequest): Promise<LaneReply> {
  try {
    backend ??= createBackend(setup.backend, setup.network, setup.cpu);
    const record = await certifyImage(setup.network, await backend, request.x, request.label, request.index, setup.options);
    return { index: request.index, record };
  } catch (e) {
    const error = e as Error;
    return { index: request.index, error: { message: error.message ?? String(e), code: e instanceof LipcertError ? e.code : undefined, name: error.name } };
  }
}

parentPort!.on('message', (message: LaneRequest | 'close') => {
  if (message === 'close') {
    void (async () => {
      if (backend) await (await backend).dispose().catch(() => {});
      parentPort!.close();
    })();
    return;
  }
  void certify(message).then((reply) => parentPort!.postMessage(reply));
});
