/**
 * analyse(): the one pipeline behind the server's runs and the CLI's `bound`, `audit` and `table`.
 * It runs the certified bounds (certify(): global, local at each ε, certified radius), then the
 * lower bounds on L(x0, ε) found by search (lower.ts) at the same ε, then the attacks (attacks.ts),
 * with one progress model and one cancellation rule:
 * - progress: `fraction` goes from 0 to 1 over the whole analysis; certify() takes its units of
 *   work (one per bound evaluation phase: global, each ε, two for the radius), the search one per ε
 *   and the attacks one per method. `phase` names what runs now (certify()'s phases, then 'lower',
 *   'attack', and 'done' once at the end).
 * - cancellation: abort `signal`; certify(), the search and the attacks stop at their next layer
 *   or step and the call rejects with a CancelledError.
 * One `seed` seeds every random draw: the lower-bound search (default 1 when absent) and the start
 * vectors of probabilistic certificates (fresh random ones when absent: any draw carries the same
 * guarantee). Attacks draw nothing.
 */
import type { Backend } from '../backend/backend.js';
import { type AttackEntry, type AttackMethod, attacks } from '../bounds/attacks.js';
import type { CertificateMode } from '../bounds/certificates.js';
import { certify, progressUnits } from '../bounds/certify.js';
import { DEFAULT_CERTIFICATE, DEFAULT_DELTA, DEFAULT_METHOD } from '../bounds/defaults.js';
import { DEFAULT_SEED, type LowerBoundEntry, type LowerMethod, lowerBounds } from '../bounds/lower.js';
import type { BoundMethod, CertifyOptions, CertifyResult, ProgressEvent } from '../bounds/types.js';
import { BadInputError, CancelledError } from '../errors.js';
import type { Network } from '../model/ir.js';

/** The lower-bound search of an analysis (lower.ts defaults where absent); it runs at the analysis' ε. */
export interface LowerSearch {
  methods?: LowerMethod[];
  samples?: number;
  restarts?: number;
  steps?: number;
}

/** The attacks of an analysis (attacks.ts defaults where absent). */
export interface AttackSearch {
  methods: AttackMethod[];
  steps?: number;
  tolerance?: number;
  maxRuns?: number;
}

export interface AnalysisOptions extends Omit<CertifyOptions, 'onProgress' | 'signal'> {
  /** Also search for lower bounds at each ε. */
  lower?: LowerSearch | null;
  /** Also run these attacks. */
  attacks?: AttackSearch | null;
  onProgress?: (event: AnalysisProgress) => void;
  signal?: AbortSignal;
}

export interface AnalysisProgress extends Omit<ProgressEvent, 'phase'> {
  phase: ProgressEvent['phase'] | 'lower' | 'attack';
}

/**
 * `send` called with the progress events worth passing on to another thread or process: the first of
 * each phase, and otherwise at most one per `ms` milliseconds (the server's compute threads, `lipcert
 * worker`).
 */
export function throttledProgress(ms: number, send: (event: AnalysisProgress) => void): (event: AnalysisProgress) => void {
  let last = 0;
  let phase: string | undefined;
  return (event) => {
    const now = Date.now();
    if (event.phase === phase && now - last < ms) return;
    last = now;
    phase = event.phase;
    send(event);
  };
}

/** certify()'s result, with how it was obtained and the searches asked for. */
export interface AnalysisResult extends CertifyResult {
  method: BoundMethod;
  certificate: CertificateMode;
  /** Failure probability of each probabilistic certificate (probabilistic only). */
  delta?: number;
  /** The seed given (absent: certificates drew fresh random starts, the search used its default). */
  seed?: number;
  /**
   * Probability that any certified number of the result fails: at most the sum over the global
   * bound, every local bound and the bound behind the radius (union bound). 0 when every
   * certificate is deterministic; absent for estimates.
   */
  failureProbability?: number;
  lowerBounds?: LowerBoundEntry[];
  attacks?: AttackEntry[];
}

/** The union bound over the result's certified numbers; undefined when it holds estimates. */
function resultFailureProbability(result: CertifyResult, certificate: CertificateMode): number | undefined {
  if (certificate === 'estimate') return undefined;
  const bounds = [result.global, ...result.local, result.radius];
  return bounds.reduce((sum, b) => sum + (b?.failureProbability ?? 0), 0);
}

export async function analyse(network: Network, x0: Float32Array, backend: Backend, options: AnalysisOptions): Promise<AnalysisResult> {
  const { lower, attacks: attack, onProgress, signal, ...certifyOptions } = options;
  const eps = options.eps ?? [];
  const method = options.method ?? DEFAULT_METHOD;
  const certificate = options.certificate ?? DEFAULT_CERTIFICATE;
  const delta = certificate === 'probabilistic' ? (options.delta ?? DEFAULT_DELTA) : undefined;
  if (lower && eps.length === 0) throw new BadInputError('lower bounds are searched at the eps of the analysis: give at least one eps');
  const searches = Boolean(lower) || Boolean(attack);
  const ownUnits = progressUnits(options);
  const units = ownUnits + (lower ? eps.length : 0) + (attack ? attack.methods.length : 0);
  let unitsDone = 0;
  const report = (event: Omit<AnalysisProgress, 'fraction'>) => onProgress?.({ ...event, fraction: Math.min(1, unitsDone / units) });
  const checkAbort = () => {
    if (signal?.aborted) throw new CancelledError();
  };

  const certified = await certify(network, x0, backend, {
    ...certifyOptions,
    method,
    certificate,
    delta,
    signal,
    onProgress: (event) => {
      if (event.phase === 'done' && searches) return;
      onProgress?.({ ...event, fraction: (event.fraction * ownUnits) / units });
    },
  });
  unitsDone = ownUnits;
  const result: AnalysisResult = {
    ...certified,
    method,
    certificate,
    ...(delta === undefined ? {} : { delta }),
    ...(options.seed === undefined ? {} : { seed: options.seed }),
    failureProbability: resultFailureProbability(certified, certificate),
  };
  if (result.failureProbability === undefined) delete result.failureProbability;

  // The searches run one ε and one attack at a time to report between them: each (seed, ε,
  // method) has its own random stream, so the entries are those of a single call.
  if (lower) {
    result.lowerBounds = [];
    for (const [i, e] of eps.entries()) {
      checkAbort();
      report({ phase: 'lower', eps: e, message: `lower bounds by search at eps ${e} (${i + 1} of ${eps.length})` });
      const found = await lowerBounds(network, x0, backend, { ...lower, eps: [e], seed: options.seed ?? DEFAULT_SEED, signal });
      result.lowerBounds.push(...found.lower);
      result.seconds += found.seconds;
      unitsDone++;
    }
  }
  if (attack) {
    result.attacks = [];
    for (const [i, m] of attack.methods.entries()) {
      checkAbort();
      report({ phase: 'attack', message: `attack ${m.toUpperCase()} (${i + 1} of ${attack.methods.length})` });
      const found = await attacks(network, x0, backend, { ...attack, methods: [m], signal });
      result.attacks.push(...found.attacks);
      result.seconds += found.seconds;
      unitsDone++;
    }
  }
  if (searches) report({ phase: 'done', message: 'done' });
  return result;
}
