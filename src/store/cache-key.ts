/**
 * The result cache key: sha256 over the canonical JSON of everything a result depends on — model
 * bytes, input values, the eps list, the method and its parameters, and the engine version. The
 * compute backend is not part of it: both backends compute the same bounds.
 */
import { createHash } from 'node:crypto';

export interface CacheKeyParts {
  modelSha256: string;
  inputSha256: string;
  eps: number[];
  method: string;
  /** Method parameters; undefined values are dropped, keys are sorted. */
  params: Record<string, number | boolean | string | undefined>;
  engineVersion: string;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function cacheKey(parts: CacheKeyParts): string {
  const params = Object.fromEntries(
    Object.entries(parts.params)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  const canonical = JSON.stringify({
    v: 1,
    model: parts.modelSha256,
    input: parts.inputSha256,
    // eps keep the caller's order: the result lists local bounds in that order.
    eps: parts.eps,
    method: parts.method,
    params,
    engine: parts.engineVersion,
  });
  return createHash('sha256').update(canonical).digest('hex');
}
