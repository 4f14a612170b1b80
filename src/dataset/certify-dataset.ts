/**
 * certifyDataset(): every image of a Dataset through certifyImage(), then the summary (summary.ts).
 * The one-process path of `lipcert dataset`; a server or a queue of workers runs certifyImage() per
 * image and summarise() over the records instead. One lane (the default) certifies one image after
 * another on the calling thread; with `lanes` > 1 the images are shared out over the calling thread
 * and worker threads (lanes.ts): the same records, in the same order, sooner.
 */
import type { Backend } from '../backend/backend.js';
import type { CpuBackendOptions } from '../backend/cpu/index.js';
import type { Dataset } from '../model/dataset.js';
import type { Network } from '../model/ir.js';
import { certify } from '../bounds/certify.js';
import type { ImageCertifyOptions, ImageRecord } from './certify-image.js';
import { certifyInLanes } from './lanes.js';
import { type DatasetSummary, summarise } from './summary.js';

export interface DatasetResult extends DatasetSummary {
  images: ImageRecord[];
  /** Wall-clock seconds of the whole set. */
  seconds: number;
  /** Threads that certified images (1: one after another on the caller's thread). */
  lanes: number;
}

export interface DatasetCertifyOptions extends Omit<ImageCertifyOptions, 'onProgress'> {
  /** Called after each image (in the order they finish) with the number done so far. */
  onImage?: (record: ImageRecord, done: number, total: number) => void;
  /** Threads certifying images at once: the caller's plus lanes − 1 worker threads (default 1). */
  lanes?: number;
  /** Options of the worker lanes' CPU backends (their onnxruntime threads). */
  laneBackend?: CpuBackendOptions;
}

export async function certifyDataset(network: Network, dataset: Dataset, backend: Backend, options: DatasetCertifyOptions): Promise<DatasetResult> {
  const started = performance.now();
  const { onImage, lanes: requestedLanes, laneBackend, ...imageOptions } = options;
  // The global bound (the radius search's start) does not depend on the image: computed once.
  const globalBound = imageOptions.radius && !imageOptions.globalBound && dataset.count > 0 ? (await certify(network, dataset.image(0), backend, { ...imageOptions, eps: [], global: true, radius: false })).global : imageOptions.globalBound;
  const lanes = Math.max(1, Math.min(requestedLanes ?? 1, dataset.count));
  const images = await certifyInLanes(network, dataset, backend, { ...imageOptions, globalBound }, { lanes, cpu: laneBackend, signal: options.signal, onImage });
  return { ...summarise(images), images, seconds: (performance.now() - started) / 1000, lanes };
}
