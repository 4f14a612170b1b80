/**
 * One image of a labelled test set: its prediction, local bounds and certified radius as a
 * per-image record (what `lipcert dataset --json` lists under `images`, and what a server run or a
 * queue worker computes for one image). A misclassified image is not certified: radius 0, and no
 * radius search is spent on it.
 */
import type { Backend } from '../backend/backend.js';
import { certify, topTwo } from '../bounds/certify.js';
import { nominalPass } from '../bounds/layer-bounds.js';
import type { BoundQuality, CertifyOptions, CertifyResult } from '../bounds/types.js';
import type { Network } from '../model/ir.js';

export interface ImageLocalBound {
  eps: number;
  /** Upper bound on L(x0, eps) (estimate or certified: see quality). */
  bound: number;
  quality: BoundQuality;
  /** Union bound on the probability that a probabilistic bound fails; absent for estimates. */
  failureProbability?: number;
}

export interface ImageRecord {
  /** Position in the dataset. */
  index: number;
  label: number;
  predictedClass: number;
  /** Top-1 minus top-2 logit. */
  margin: number;
  /**
   * Certified radius: 0 when the image is misclassified (nothing is certified), null when the
   * radius was not asked for and the image is classified correctly.
   */
  radius: number | null;
  /** What `radius` is: 'exact' for the 0 of a misclassified image, else the certificate's quality. */
  quality: BoundQuality | null;
  /** Probability that a probabilistic radius certificate fails (union bound); absent otherwise. */
  failureProbability?: number;
  local: ImageLocalBound[];
  seconds: number;
}

/**
 * The options of one image's certification. Method and certificate have no defaults here: the
 * library's defaults may change, a dataset run states what it ran.
 */
export interface ImageCertifyOptions extends Pick<CertifyOptions, 'tolerance' | 'delta' | 'seed' | 'signal' | 'onProgress' | 'branchBudget' | 'globalBound'> {
  eps: number[];
  radius: boolean;
  method: NonNullable<CertifyOptions['method']>;
  certificate: NonNullable<CertifyOptions['certificate']>;
}

/**
 * The record of one image from its certify() result (computed with `radius` set when the image is
 * classified correctly). Pure: a server or worker that ran certify() itself builds the same record.
 */
export function imageRecord(index: number, label: number, result: Pick<CertifyResult, 'class' | 'margin' | 'local' | 'radius' | 'seconds'>): ImageRecord {
  const correct = result.class === label;
  let radius: number | null = null;
  let quality: BoundQuality | null = null;
  let failureProbability: number | undefined;
  if (!correct) {
    radius = 0;
    quality = 'exact';
  } else if (result.radius) {
    radius = result.radius.local;
    quality = result.radius.quality ?? 'estimate';
    failureProbability = result.radius.failureProbability || undefined;
  }
  return {
    index,
    label,
    predictedClass: result.class,
    margin: result.margin,
    radius,
    quality,
    ...(failureProbability ? { failureProbability } : {}),
    local: result.local.map((l) => ({ eps: l.eps, bound: l.bound, quality: l.quality, ...(l.failureProbability ? { failureProbability: l.failureProbability } : {}) })),
    seconds: result.seconds,
  };
}

/**
 * Certify image `index` (normalised input `x`, true class `label`): a forward pass decides whether
 * it is classified correctly; certify() then computes the local bounds at `eps` and, for a correct
 * image when asked, the certified radius.
 */
export async function certifyImage(network: Network, backend: Backend, x: Float32Array, label: number, index: number, options: ImageCertifyOptions): Promise<ImageRecord> {
  const started = performance.now();
  await backend.prepare(network);
  const forward = topTwo((await nominalPass(network, backend, x)).logits);
  const radius = options.radius && forward.cls === label;
  if (options.eps.length === 0 && !radius) {
    return imageRecord(index, label, { class: forward.cls, margin: forward.margin, local: [], seconds: (performance.now() - started) / 1000 });
  }
  const result = await certify(network, x, backend, {
    eps: options.eps,
    radius,
    global: false,
    method: options.method,
    certificate: options.certificate,
    delta: options.delta,
    seed: options.seed,
    tolerance: options.tolerance,
    signal: options.signal,
    onProgress: options.onProgress,
    branchBudget: options.branchBudget,
    globalBound: options.globalBound,
  });
  return imageRecord(index, label, { ...result, seconds: (performance.now() - started) / 1000 });
}
