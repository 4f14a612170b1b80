/**
 * A stored result as the API shows it (pure functions): every bound says how it was obtained.
 * Results and global bounds stored before method and certificate were choices were the paper's
 * method with Lanczos estimates, and read as such. A run that did not compute the global bound
 * shows its model's, with the model's own method and certificate.
 */
import type { AnalysisResult } from '../analysis/analyse.js';
import type { CertificateMode } from '../bounds/certificates.js';
import type { BoundMethod, BoundQuality, NetworkBound, RadiusResult } from '../bounds/types.js';
import type { ModelRow } from '../store/db.js';
import type { CertifyResult as ApiResult } from './generated/graphql.js';

/** How a stored bound was obtained. */
export interface Provenance {
  method: BoundMethod;
  certificate: CertificateMode;
}

/** A bound with its method and certificate; no failure probability for estimates. */
export function describedBound<B extends NetworkBound>(bound: B, provenance: Provenance): B & Provenance {
  const method = bound.method ?? provenance.method;
  const estimate = provenance.certificate === 'estimate' || bound.quality === 'estimate';
  return { ...bound, method, certificate: provenance.certificate, failureProbability: estimate ? undefined : (bound.failureProbability ?? 0) };
}

/** The model's background global bound and how it was obtained (null until it is computed). */
export function modelGlobalBound(model: Pick<ModelRow, 'globalResult' | 'globalMethod' | 'globalCertificate'>): (NetworkBound & Provenance) | null {
  if (!model.globalResult) return null;
  const bound = JSON.parse(model.globalResult) as NetworkBound;
  return describedBound(bound, { method: (model.globalMethod ?? 'paper') as BoundMethod, certificate: (model.globalCertificate ?? 'estimate') as CertificateMode });
}

/** The radius with the quality and failure probability of the bound that certifies it. */
function describedRadius(radius: RadiusResult, provenance: Provenance, globalQuality: BoundQuality | null) {
  // 'exact' factors only would still certify: the radius is UPPER unless a factor is an estimate.
  const quality: BoundQuality = radius.quality === undefined || radius.quality === 'estimate' ? 'estimate' : 'upper';
  return {
    ...radius,
    method: radius.method ?? provenance.method,
    quality,
    failureProbability: quality === 'estimate' ? undefined : (radius.failureProbability ?? 0),
    globalQuality,
  };
}

/** A stored result, legacy or not, in the API's terms. */
export function describedResult(stored: AnalysisResult, model: Pick<ModelRow, 'globalResult' | 'globalMethod' | 'globalCertificate'> | null): ApiResult {
  const provenance: Provenance = { method: stored.method ?? 'paper', certificate: stored.certificate ?? 'estimate' };
  const globalBound = stored.global ? describedBound(stored.global, provenance) : model ? modelGlobalBound(model) : null;
  return {
    ...stored,
    ...provenance,
    failureProbability: provenance.certificate === 'estimate' ? undefined : (stored.failureProbability ?? 0),
    globalBound,
    local: stored.local.map((l) => describedBound(l, provenance)),
    radius: stored.radius ? describedRadius(stored.radius, provenance, globalBound?.quality ?? null) : null,
  };
}
