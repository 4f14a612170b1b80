/**
 * startRun's arguments as a request, in pure functions (no store, no queue): validation with one
 * clear sentence per mistake (a LipcertError with code BAD_USER_INPUT), the defaults filled in
 * (method, certificate and delta from bounds/defaults.ts, search budgets from lower.ts and
 * attacks.ts), the cache key, the request's columns of a Run row and back, and the analyse()
 * options that compute it.
 */
import type { AnalysisOptions } from '../analysis/analyse.js';
import { ATTACK_METHODS, type AttackMethod, DEFAULT_ATTACK_STEPS, DEFAULT_MAX_RUNS, DEFAULT_SEARCH_TOLERANCE } from '../bounds/attacks.js';
import type { CertificateMode } from '../bounds/certificates.js';
import { DEFAULT_TOLERANCE, ENGINE_VERSION } from '../bounds/certify.js';
import { DEFAULT_CERTIFICATE, DEFAULT_DELTA, DEFAULT_METHOD } from '../bounds/defaults.js';
import { DEFAULT_RESTARTS, DEFAULT_SAMPLES, DEFAULT_SEED, DEFAULT_STEPS } from '../bounds/lower.js';
import type { BoundMethod, NetworkBound } from '../bounds/types.js';
import type { BackendName } from '../backend/backend.js';
import { LipcertError } from '../errors.js';
import type { AnalysisShape } from '../resources.js';
import { cacheKey } from '../store/cache-key.js';
import type { ModelRow, RunRow } from '../store/db.js';
import type { MutationStartRunArgs } from './generated/graphql.js';
import { epsError } from './numbers.js';

/** The family name of every run's computation in the cache key (the method itself is a parameter). */
const KEY_METHOD = 'avant-morgansen-local';
const MAX_EPS_VALUES = 64;
/** Largest search budgets a run may ask for (each is a loop of forward passes). */
const MAX_LOWER_SAMPLES = 100_000;
const MAX_LOWER_RESTARTS = 1_000;
const MAX_STEPS = 10_000;
/** Longest refinement stage a run may ask for (seconds). */
const MAX_BRANCH_BUDGET = 3600;

export type StartRunArgs = MutationStartRunArgs;

/** The effective options of a run's lower-bound search (Run.lowerBounds, as JSON). */
export interface LowerSearchOptions {
  samples: number;
  restarts: number;
  steps: number;
  seed: number;
}

/** The effective options of a run's attacks (Run.attacks, as JSON); methods in ATTACK_METHODS order. */
export interface AttackSearchOptions {
  methods: AttackMethod[];
  steps: number;
  tolerance: number;
  maxRuns: number;
}

/** What a run computes, defaults filled in. */
export interface RunRequest {
  eps: number[];
  radius: boolean;
  method: BoundMethod;
  certificate: CertificateMode;
  /** Failure probability of each probabilistic certificate; null for other certificates. */
  delta: number | null;
  /** The seed as given (null: certificates draw fresh starts, the search uses its default). */
  seed: number | null;
  /** As given (null: the engine's default). */
  tolerance: number | null;
  /** Seconds of the radius' refinement stage (tight method with radius); null: no stage. */
  branchBudget: number | null;
  backend: BackendName;
  lower: LowerSearchOptions | null;
  attack: AttackSearchOptions | null;
}

const badInput = (message: string) => new LipcertError('BAD_USER_INPUT', message);

/** A search budget: an integer from 1 to `max`, or `fallback` when not given. */
function budget(value: number | null | undefined, name: string, max: number, fallback: number): number {
  if (value == null) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) throw badInput(`${name} must be an integer from 1 to ${max} (got ${value})`);
  return value;
}

function unused(args: StartRunArgs, names: (keyof StartRunArgs)[], without: string): void {
  const given = names.filter((name) => args[name] != null);
  if (given.length > 0) throw badInput(`${given.join(', ')} given without ${without}`);
}

/**
 * Validates startRun's arguments and fills in the defaults. `globalBound`, the model's when known,
 * refuses an eps whose bound would leave single precision (numbers.ts epsError).
 */
export function runRequest(args: StartRunArgs, globalBound?: number | null): RunRequest {
  if (args.eps.length > MAX_EPS_VALUES) throw badInput(`at most ${MAX_EPS_VALUES} eps per run`);
  for (const eps of args.eps) {
    const problem = epsError(eps, globalBound);
    if (problem) throw badInput(problem);
  }
  const radius = args.radius ?? false;
  const method = args.method ?? DEFAULT_METHOD;
  const certificate = args.certificate ?? DEFAULT_CERTIFICATE;
  let delta: number | null = null;
  if (certificate === 'probabilistic') {
    delta = args.delta ?? DEFAULT_DELTA;
    if (!(Number.isFinite(delta) && delta > 0 && delta < 1)) throw badInput(`delta must be in (0, 1) (got ${delta})`);
  }
  const tolerance = args.tolerance ?? null;
  if (tolerance !== null && !(Number.isFinite(tolerance) && tolerance > 0 && tolerance < 1)) {
    throw badInput(`tolerance must be in (0, 1) (got ${tolerance})`);
  }
  // 0 is "no stage", as absent: the same request (and cache key).
  const branchBudget = args.branchBudget ? args.branchBudget : null;
  if (branchBudget !== null) {
    if (!(Number.isFinite(branchBudget) && branchBudget > 0 && branchBudget <= MAX_BRANCH_BUDGET)) throw badInput(`branchBudget must be from 0 to ${MAX_BRANCH_BUDGET} seconds (got ${branchBudget})`);
    if (!radius) throw badInput('branchBudget refines the certified radius: set radius: true');
    if (method !== 'tight') throw badInput('branchBudget is a stage of the TIGHT method; the PAPER method has none');
  }
  const seed = args.seed ?? null;
  if (seed !== null && certificate !== 'probabilistic' && !args.lowerBounds) {
    throw badInput(`seed seeds probabilistic certificates and the lower-bound search; this run has neither (certificate ${certificate.toUpperCase()}, no lowerBounds)`);
  }

  let lower: LowerSearchOptions | null = null;
  if (args.lowerBounds) {
    if (args.eps.length === 0) throw badInput('lower bounds are searched at the run\'s eps: give at least one eps');
    lower = {
      samples: budget(args.lowerSamples, 'lowerSamples', MAX_LOWER_SAMPLES, DEFAULT_SAMPLES),
      restarts: budget(args.lowerRestarts, 'lowerRestarts', MAX_LOWER_RESTARTS, DEFAULT_RESTARTS),
      steps: budget(args.lowerSteps, 'lowerSteps', MAX_STEPS, DEFAULT_STEPS),
      seed: seed ?? DEFAULT_SEED,
    };
  } else {
    unused(args, ['lowerSamples', 'lowerRestarts', 'lowerSteps'], 'lowerBounds: true');
  }
  let attack: AttackSearchOptions | null = null;
  const methods = args.attacks ?? [];
  for (const m of methods) if (!ATTACK_METHODS.includes(m)) throw badInput(`unknown attack '${m}'`);
  if (methods.length > 0) {
    attack = {
      // One order whatever the request's: [PGD, FGSM] and [FGSM, PGD, PGD] are the same request.
      methods: ATTACK_METHODS.filter((m) => methods.includes(m)),
      steps: budget(args.attackSteps, 'attackSteps', MAX_STEPS, DEFAULT_ATTACK_STEPS),
      tolerance: DEFAULT_SEARCH_TOLERANCE,
      maxRuns: DEFAULT_MAX_RUNS,
    };
  } else {
    unused(args, ['attackSteps'], 'attacks');
  }
  if (args.eps.length === 0 && !radius && !attack) {
    throw badInput('nothing to compute: give at least one eps, set radius or ask for attacks');
  }
  return { eps: args.eps, radius, method, certificate, delta, seed, tolerance, branchBudget, backend: args.backend ?? 'auto', lower, attack };
}

/** The computation before method and certificate were choices: its cache entries keep their key. */
function isLegacy(request: Pick<RunRequest, 'method' | 'certificate'>): boolean {
  return request.method === 'paper' && request.certificate === 'estimate';
}

/**
 * The cache key of a request on a model and input. Effective values: leaving a parameter out and
 * giving its default are the same request. Parameters enter only where they change the result:
 * the searches' only when asked for; delta and the certificates' seed only for probabilistic
 * certificates; method and certificate except for the paper's method with estimates, the only
 * computation before they were choices, so that its entries keep their key and their meaning.
 * The backend is not part of it: both compute the same bounds.
 */
export function runCacheKey(request: RunRequest, modelSha256: string, inputSha256: string): string {
  const probabilistic = request.certificate === 'probabilistic';
  return cacheKey({
    modelSha256,
    inputSha256,
    eps: request.eps,
    method: KEY_METHOD,
    params: {
      radius: request.radius,
      tolerance: request.tolerance ?? DEFAULT_TOLERANCE,
      branchBudget: request.branchBudget ?? undefined,
      boundMethod: isLegacy(request) ? undefined : request.method,
      certificate: isLegacy(request) ? undefined : request.certificate,
      delta: probabilistic ? request.delta! : undefined,
      certificateSeed: probabilistic ? (request.seed ?? undefined) : undefined,
      lowerSamples: request.lower?.samples,
      lowerRestarts: request.lower?.restarts,
      lowerSteps: request.lower?.steps,
      lowerSeed: request.lower?.seed,
      attacks: request.attack?.methods.join(','),
      attackSteps: request.attack?.steps,
      attackTolerance: request.attack?.tolerance,
      attackMaxRuns: request.attack?.maxRuns,
    },
    engineVersion: ENGINE_VERSION,
  });
}

/** The request's columns of a Run row. */
export function requestColumns(request: RunRequest) {
  return {
    eps: JSON.stringify(request.eps),
    radius: request.radius,
    method: request.method,
    certificate: request.certificate,
    delta: request.delta,
    seed: request.seed,
    tolerance: request.tolerance,
    branchBudget: request.branchBudget,
    lowerBounds: request.lower ? JSON.stringify(request.lower) : null,
    attacks: request.attack ? JSON.stringify(request.attack) : null,
    requestedBackend: request.backend,
  };
}

/** The request a Run row records (rows from before method and certificate were choices: paper, estimate). */
export function requestOf(row: RunRow): RunRequest {
  const lower = row.lowerBounds ? (JSON.parse(row.lowerBounds) as LowerSearchOptions) : null;
  return {
    eps: JSON.parse(row.eps) as number[],
    radius: row.radius,
    method: row.method as BoundMethod,
    certificate: row.certificate as CertificateMode,
    delta: row.delta,
    seed: row.seed ?? (lower && lower.seed !== DEFAULT_SEED ? lower.seed : null),
    tolerance: row.tolerance,
    branchBudget: row.branchBudget,
    backend: row.requestedBackend as BackendName,
    lower,
    attack: row.attacks ? (JSON.parse(row.attacks) as AttackSearchOptions) : null,
  };
}

/** What a request's analysis holds in memory depends on (resources.ts). */
export function analysisShape(request: Pick<RunRequest, 'certificate' | 'delta'>): AnalysisShape {
  return { certificate: request.certificate, delta: request.delta ?? DEFAULT_DELTA };
}

/**
 * The model's stored global bound, when a run may take it as its own instead of computing it again
 * (it does not depend on the input; a dataset run's images each need it): the run asks for the
 * radius, for the method and certificate the model's was computed with, and for the default δ and
 * spectral tolerance it used, and for no seed (a seeded run reproduces its own draws). The bound is
 * a certificate of the same kind either way; what the run reports is the model's.
 */
export function reusableGlobalBound(model: Pick<ModelRow, 'globalStatus' | 'globalResult' | 'globalMethod' | 'globalCertificate'>, request: RunRequest): NetworkBound | undefined {
  if (!request.radius || model.globalStatus !== 'DONE' || !model.globalResult) return undefined;
  if (request.method !== model.globalMethod || request.certificate !== model.globalCertificate) return undefined;
  if (request.seed !== null || request.tolerance !== null || (request.delta !== null && request.delta !== DEFAULT_DELTA)) return undefined;
  return JSON.parse(model.globalResult) as NetworkBound;
}

/** What analyse() is asked to compute for a request (with a global bound to use as it is, if given). */
export function analysisOptions(request: RunRequest, globalBound?: NetworkBound): AnalysisOptions {
  return {
    ...(globalBound ? { globalBound } : {}),
    eps: request.eps,
    global: request.radius,
    radius: request.radius,
    method: request.method,
    certificate: request.certificate,
    delta: request.delta ?? undefined,
    seed: request.seed ?? undefined,
    tolerance: request.tolerance ?? undefined,
    branchBudget: request.branchBudget ?? undefined,
    lower: request.lower && { samples: request.lower.samples, restarts: request.lower.restarts, steps: request.lower.steps },
    attacks: request.attack && { methods: request.attack.methods, steps: request.attack.steps, tolerance: request.attack.tolerance, maxRuns: request.attack.maxRuns },
  };
}
