/**
 * certify(): the one library call behind the CLI and the server. Runs the nominal pass, the global
 * bound, the local bound for each ε and the certified radius, reporting progress and honouring an
 * AbortSignal between layers and iterations.
 */
import type { Backend } from '../backend/backend.js';
import { BadInputError, CancelledError } from '../errors.js';
import { type Network, size } from '../model/ir.js';
import { globalBound, nominalPass, SpectralSolver } from './layer-bounds.js';
import { CertificateLedger } from './certificate-ledger.js';
import { certifiedSearch, methodOf, solverFor } from './methods.js';
import type { KnownPoint } from './radius.js';
import { certifyMargins } from './rounding.js';
import type { CertifyOptions, CertifyResult, LocalBound, NetworkBound, ProgressEvent } from './types.js';

/** Bumped whenever a change can alter a result: part of every cache key. */
export const ENGINE_VERSION = '0.3.3'; // 0.3.3: certified runs search on estimates to 1e-4 (methods.ts SEARCH_ESTIMATE_TOLERANCE); 0.3.2: a certified evaluation certifies smaller balls (docs/tightness.md §8); 0.3.1: the 'radius' sweep (§4), branching (§7)

export const DEFAULT_TOLERANCE = 1e-6;
export const DEFAULT_MAX_ITERATIONS = 5000;
export const DEFAULT_RADIUS_TOLERANCE = 1e-4;

export function validateEps(eps: number[]): void {
  for (const e of eps) {
    if (typeof e !== 'number' || !Number.isFinite(e) || e <= 0) throw new BadInputError(`eps must be finite and > 0, got ${e}`);
  }
}

/** Top-1 class and δ = top-1 minus top-2 logit. */
export function topTwo(logits: ArrayLike<number>): { cls: number; margin: number } {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  let second = -Infinity;
  for (let i = 0; i < logits.length; i++) if (i !== best && logits[i] > second) second = logits[i];
  return { cls: best, margin: logits.length > 1 ? logits[best] - second : Infinity };
}

/** Units of work certify() reports its progress over: the global bound and each ε one each, the radius two. */
export function progressUnits(options: Pick<CertifyOptions, 'eps' | 'global' | 'radius'>): number {
  return (options.global || options.radius ? 1 : 0) + (options.eps?.length ?? 0) + (options.radius ? 2 : 0) || 1;
}

/**
 * The bounds at the user's ε as known points of the radius search (radius.ts, `known`): the largest
 * passing one starts its bracket, saving the evaluation at the global radius (Fashion-MNIST: 93 → 83
 * evaluations over 12 images and the MNIST fixture), and the smallest failing one above it ends the
 * bracket, saving the first jump, with what its bound certifies on smaller balls (its within, §8 of
 * docs/tightness.md) as a floor. certifiedRadius's L is criterion/ε (margin √2: the criterion is ε·L < 1).
 */
function knownPoints(local: LocalBound[], criterion: (bound: LocalBound) => number, within: (bound: LocalBound) => number): KnownPoint[] {
  return local.flatMap((bound) => {
    const ratio = criterion(bound);
    return ratio > 0 && Number.isFinite(ratio) ? [{ eps: bound.eps, L: ratio / bound.eps, within: within(bound) }] : [];
  });
}

export async function certify(network: Network, x0: Float32Array, backend: Backend, options: CertifyOptions): Promise<CertifyResult> {
  const started = performance.now();
  const eps = options.eps ?? [];
  validateEps(eps);
  if (x0.length !== size(network.inputShape)) {
    throw new BadInputError(`input has ${x0.length} values, the model expects ${size(network.inputShape)} ([${network.inputShape}])`);
  }
  const tolerance = options.tolerance ?? DEFAULT_TOLERANCE;
  if (!(tolerance > 0 && tolerance < 1)) throw new BadInputError(`tolerance must be in (0, 1), got ${tolerance}`);
  const radiusTolerance = options.radiusTolerance ?? DEFAULT_RADIUS_TOLERANCE;
  const signal = options.signal;
  const layerCount = network.layers.length;
  const wantGlobal = options.global || options.radius;

  const units = progressUnits(options);
  let unitsDone = 0;
  // Layers are not always visited in order (the tight method's backward passes, a Lanczos iteration
  // report after its layer's start), so the fraction is the largest reached so far: it never goes back.
  let reached = 0;
  const report = (event: Omit<ProgressEvent, 'fraction'>, within = 0) => {
    reached = Math.max(reached, Math.min(1, (unitsDone + within) / units));
    options.onProgress?.({ ...event, fraction: reached });
  };
  const checkAbort = () => {
    if (signal?.aborted) throw new CancelledError();
  };
  // `within` maps progress inside the current phase (0..1, by layer) to units of work done in it.
  let phase: { name: ProgressEvent['phase']; eps?: number; label: string; within?: (layerFraction: number) => number } = { name: 'prepare', label: 'preparing' };
  const withinPhase = (layerFraction: number) => (phase.within ? phase.within(layerFraction) : layerFraction);
  const spectralSettings = {
    tolerance,
    maxIterations: options.maxIterations ?? DEFAULT_MAX_ITERATIONS,
    signal,
    onIteration: (layer: number, iteration: number) => {
      if (iteration % 25 === 0) {
        report(
          { phase: phase.name, eps: phase.eps, layer: layer + 1, layers: layerCount, iteration, message: `${phase.label}: layer ${layer + 1} of ${layerCount}, iteration ${iteration}` },
          withinPhase((layer + 0.5) / layerCount),
        );
      }
    },
  };
  // Estimates (warm-started Lanczos) drive the radius search; `solver` gives the reported norms:
  // certificates unless options.certificate is 'estimate' (docs/tightness.md).
  const estimator = new SpectralSolver(backend, spectralSettings);
  // The top Ritz vectors of the local bounds' certificates warm-start the radius search's estimates
  // of the same norms (a warm start only speeds convergence up; the first search evaluation
  // otherwise starts cold). The global bound's are dropped: no estimate asks for those norms.
  let seeding = false;
  const solver = solverFor(backend, spectralSettings, options, (key, vector) => (seeding ? estimator.seed(key, vector) : backend.vectors.free(vector))) ?? estimator;
  const method = methodOf(options);
  // The certified norms of the bounds at the user's ε, kept for the radius certification to reuse
  // where they cover its operators (certificate-ledger.ts).
  const ledger = solver !== estimator && options.radius ? new CertificateLedger() : undefined;
  // The number of radius evaluations is not known in advance: each one covers a fifth of what is left.
  const radiusPhase = (evaluation: number, e: number): typeof phase => {
    const before = 2 * (1 - 0.8 ** (evaluation - 1));
    return { name: 'radius', eps: e, label: `certified radius, evaluation ${evaluation} (eps ${e.toPrecision(6)})`, within: (f) => before + (2 - before) * 0.2 * f };
  };
  const onLayer = (layer: number) => {
    checkAbort();
    report({ phase: phase.name, eps: phase.eps, layer: layer + 1, layers: layerCount, message: `${phase.label}: layer ${layer + 1} of ${layerCount}` }, withinPhase(layer / layerCount));
  };

  try {
    report({ phase: 'prepare', message: 'preparing the backend' });
    await backend.prepare(network);
    checkAbort();
    phase = { name: 'forward', label: 'nominal forward pass' };
    const nominal = await nominalPass(network, backend, x0);
    const logits = Array.from(nominal.logits);
    const { cls, margin } = topTwo(logits);

    let global: NetworkBound | undefined;
    if (wantGlobal) {
      phase = { name: 'global', label: 'global bound' };
      // The global bound does not depend on the input: a caller certifying many inputs passes it in.
      global = options.globalBound ?? method.annotate(await globalBound(network, solver, onLayer));
      unitsDone++;
    }
    seeding = true;
    const local: LocalBound[] = [];
    for (const e of eps) {
      phase = { name: 'local', eps: e, label: `local bound at eps ${e}` };
      const bound = await method.local(network, backend, nominal, e, ledger ? ledger.view(solver, { ball: e, reuse: false }) : solver, cls, onLayer);
      local.push({ eps: e, ...bound });
      unitsDone++;
    }

    let radius: CertifyResult['radius'];
    // Lower bounds of the exact gaps y_c − y_j, from a float64 pass and its rounding (rounding.ts).
    let gaps: number[] = [];
    let certifiedMargin = Infinity;
    if (options.radius && global) {
      ({ gaps } = await certifyMargins(network, backend, x0, cls, global.layers.map((l) => l.bound)));
      if (logits.length > 1) certifiedMargin = Math.min(...gaps);
    }
    if (options.radius && global && !(certifiedMargin > 0)) {
      // The computed top-1 class is not certainly the exact network's: nothing is certified.
      radius = { local: 0, localUpper: 0, global: 0, evaluations: 0, relativeTolerance: radiusTolerance, seconds: 0, method: method.name, quality: 'exact', marginResolved: false };
      unitsDone += 2;
    } else if (options.radius && global) {
      // The search runs on estimates; with certificates, its result is then certified (methods.ts).
      const radiusStart = performance.now();
      const globalRadius = certifiedMargin / (Math.SQRT2 * global.bound);
      let evaluation = 0;
      const search = await certifiedSearch(method, network, backend, nominal, gaps, cls, globalRadius, estimator, solver, radiusTolerance, (e) => {
        evaluation++;
        phase = radiusPhase(evaluation, e);
      }, onLayer, options.branchBudget, knownPoints(local, (bound) => method.criterion(bound, gaps, bound.eps), (bound) => method.within(bound, gaps, bound.eps)), undefined, ledger);
      radius = { ...search, global: globalRadius, seconds: (performance.now() - radiusStart) / 1000, marginResolved: true };
      unitsDone += 2;
    }
    options.onProgress?.({ phase: 'done', fraction: 1, message: 'done' });
    return {
      class: cls,
      margin,
      marginError: Number.isFinite(certifiedMargin) ? Math.max(0, margin - certifiedMargin) : undefined,
      logits,
      global,
      local,
      radius,
      backend: backend.name,
      adapter: backend.adapter,
      tolerance,
      seconds: (performance.now() - started) / 1000,
      engineVersion: ENGINE_VERSION,
    };
  } finally {
    estimator.dispose();
    if (solver !== estimator) solver.dispose();
  }
}
