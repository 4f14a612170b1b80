/**
 * certifyDataset(): every image of a Dataset through certifyImage(), one after another on one
 * backend, then the summary (summary.ts). The one-process path of `lipcert dataset`; a server or a
 * queue of workers runs certifyImage() per image and summarise() over the records instead.
 */
import type { Backend } from '../backend/backend.js';
import { CancelledError } from '../errors.js';
import type { Dataset } from '../model/dataset.js';
import type { Network } from '../model/ir.js';
import { certify } from '../bounds/certify.js';
import { certifyImage, type ImageCertifyOptions, type ImageRecord } from './certify-image.js';
import { type DatasetSummary, summarise } from './summary.js';

export interface DatasetResult extends DatasetSummary {
  images: ImageRecord[];
  /** Wall-clock seconds of the whole set. */
  seconds: number;
}

export interface DatasetCertifyOptions extends Omit<ImageCertifyOptions, 'onProgress'> {
  /** Called after each image with the records so far. */
  onImage?: (record: ImageRecord, done: number, total: number) => void;
}

export async function certifyDataset(network: Network, dataset: Dataset, backend: Backend, options: DatasetCertifyOptions): Promise<DatasetResult> {
  const started = performance.now();
  const { onImage, ...imageOptions } = options;
  const images: ImageRecord[] = [];
  // The global bound (the radius search's start) does not depend on the image: computed once.
  const globalBound = imageOptions.radius && !imageOptions.globalBound && dataset.count > 0 ? (await certify(network, dataset.image(0), backend, { ...imageOptions, eps: [], global: true, radius: false })).global : imageOptions.globalBound;
  for (let index = 0; index < dataset.count; index++) {
    if (options.signal?.aborted) throw new CancelledError();
    const record = await certifyImage(network, backend, dataset.image(index), dataset.labels[index], index, { ...imageOptions, globalBound });
    images.push(record);
    onImage?.(record, images.length, dataset.count);
  }
  return { ...summarise(images), images, seconds: (performance.now() - started) / 1000 };
}
