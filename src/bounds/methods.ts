/**
 * The bound methods behind certify(): 'paper' (Algorithm 1 and Proposition 6, unchanged) and 'tight'
 * (tight/), each with its radius criterion, and the radius search that ends on a certificate: the
 * search runs on warm-started Lanczos estimates, then the radius found is evaluated with certificates
 * (those of the user's ε that cover its operators first, certificate-ledger.ts; the rest freshly
 * computed from fresh Gaussian starts): the radius is what that bound certifies on the ball or a
 * smaller one (docs/tightness.md §8); when certificates sit far above the estimates, a second search
 * runs on certified bounds.
 */
import type { Backend, DeviceVector } from '../backend/backend.js';
import { BadInputError } from '../errors.js';
import { isAffine, type Network } from '../model/ir.js';
import type { CertificateLedger } from './certificate-ledger.js';
import { CertifiedSolver, DEFAULT_KW_EPSILON } from './certificates.js';
import { DEFAULT_BRANCH_BUDGET, DEFAULT_CERTIFICATE, DEFAULT_DELTA, DEFAULT_METHOD } from './defaults.js';
import { localBound, type NominalPass, SpectralSolver, type SpectralSettings } from './layer-bounds.js';
import type { NormSolver } from './norms.js';
import { BudgetExhausted, checkBudget } from './budget.js';
import { certifiedRadius, type KnownPoint, SCREEN_TOLERANCE } from './radius.js';
import { certifiedWithin, marginRatio, type TightBound, tightBoundAndSweep, tightLocalBound } from './tight/index.js';
import { branchAndBound, type BranchCount } from './tight/branching.js';
import type { BoundMethod, CertifyOptions, NetworkBound, RadiusResult } from './types.js';

export interface MethodImpl {
  name: BoundMethod;
  /**
   * The same bound with every per-unit refinement (the tight method's 'full' sweep), stopping with
   * BudgetExhausted after `deadline`; for the refinement stage of the radius. Absent: no stage.
   */
  refined?(network: Network, backend: Backend, nominal: NominalPass, eps: number, solver: NormSolver, cls: number, deadline: number, onLayer?: (index: number) => void): Promise<NetworkBound>;
  /**
   * Whether ε is certified by the full sweep or, where it fails, by branch and bound on its unstable
   * units (tight/branching.ts), with the full sweep's bound (its certificates are the branches'),
   * stopping with BudgetExhausted after `deadline`; for the branching stage of the radius.
   */
  branched?(network: Network, backend: Backend, nominal: NominalPass, eps: number, solver: NormSolver, cls: number, gaps: number[], deadline: number, count: BranchCount, onLayer?: (index: number) => void): Promise<{ bound: NetworkBound; certified: boolean }>;
  local(network: Network, backend: Backend, nominal: NominalPass, eps: number, solver: NormSolver, cls: number, onLayer?: (index: number) => void): Promise<NetworkBound>;
  /** The bound the radius search and its certification evaluate (absent: `local`; docs/tightness.md §4). */
  searched?(network: Network, backend: Backend, nominal: NominalPass, eps: number, solver: NormSolver, cls: number, onLayer?: (index: number) => void): Promise<NetworkBound>;
  /**
   * Certified at ε iff this is < 1. `gaps[j]` is a lower bound of the exact y_c − y_j at x0
   * (float32 rounding accounted for, rounding.ts), +Infinity at j = c.
   */
  criterion(bound: NetworkBound, gaps: number[], eps: number): number;
  /**
   * The largest ε' ≤ ε that a bound computed on the ε-ball certifies (ε itself where the criterion
   * passes, 0 if none): the ε-ball's bounds hold on every smaller ball around x0 (docs/tightness.md §8).
   */
  within(bound: NetworkBound, gaps: number[], eps: number): number;
  annotate(bound: NetworkBound): NetworkBound;
}

/**
 * within() of a criterion linear in ε' given the bound (the paper's ε'·L·√2/δ): ε/ratio, stepped
 * inside the strict inequality and checked.
 */
function linearWithin(ratio: number, eps: number): number {
  if (ratio < 1) return eps;
  if (!Number.isFinite(ratio)) return 0;
  const candidate = (eps / ratio) * (1 - 1e-6);
  return (candidate / eps) * ratio < 1 ? candidate : 0;
}

/** Copy each layer's certificate up from its spectral report; sum the failure probabilities. */
function annotate(bound: NetworkBound, method: BoundMethod): NetworkBound {
  for (const l of bound.layers) if (l.spectral?.certificate) l.certificate = l.spectral.certificate;
  const failureProbability = bound.quality === 'estimate' ? undefined : bound.layers.reduce((a, l) => a + (l.spectral?.failureProbability ?? 0), 0);
  return { ...bound, method, failureProbability: bound.failureProbability ?? failureProbability };
}

export const PAPER: MethodImpl = {
  name: 'paper',
  local: async (network, backend, nominal, eps, solver, _cls, onLayer) => annotate(await localBound(network, backend, nominal, eps, solver, onLayer), 'paper'),
  // Proposition 6: ε·L(x0, ε) < δ/√2, with δ the smallest certified gap.
  criterion: (bound, gaps, eps) => (eps * bound.bound * Math.SQRT2) / Math.min(...gaps),
  within: (bound, gaps, eps) => linearWithin(PAPER.criterion(bound, gaps, eps), eps),
  annotate: (bound) => annotate(bound, 'paper'),
};

export const TIGHT: MethodImpl = {
  name: 'tight',
  local: (network, backend, nominal, eps, solver, cls, onLayer) => tightLocalBound(network, backend, nominal, eps, solver, cls, onLayer),
  searched: (network, backend, nominal, eps, solver, cls, onLayer) => tightLocalBound(network, backend, nominal, eps, solver, cls, onLayer, { refinement: 'radius' }),
  refined: (network, backend, nominal, eps, solver, cls, deadline, onLayer) => tightLocalBound(network, backend, nominal, eps, solver, cls, onLayer, { refinement: 'full', deadline }),
  branched: async (network, backend, nominal, eps, solver, cls, gaps, deadline, count, onLayer) => {
    const { bound, sweep } = await tightBoundAndSweep(network, backend, nominal, eps, solver, cls, onLayer, { refinement: 'full', deadline });
    if (marginRatio(bound, gaps, eps) < 1) return { bound, certified: true };
    return { bound, certified: await branchAndBound(sweep, bound, nominal, gaps, deadline, count, onLayer) };
  },
  criterion: (bound, gaps, eps) => marginRatio(bound as TightBound, gaps, eps),
  within: (bound, gaps, eps) => certifiedWithin(bound as TightBound, gaps, eps),
  annotate: (bound) => annotate(bound, 'tight'),
};

export function methodOf(options: Pick<CertifyOptions, 'method'>): MethodImpl {
  const name = options.method ?? DEFAULT_METHOD;
  if (name === 'paper') return PAPER;
  if (name === 'tight') return TIGHT;
  throw new BadInputError(`unknown method '${name as string}' (expected paper or tight)`);
}

/** A CertifiedSolver when options ask for certificates; null for estimates. */
export function solverFor(
  backend: Backend,
  settings: SpectralSettings,
  options: Pick<CertifyOptions, 'certificate' | 'delta' | 'seed'>,
  topVectors?: (key: string, vector: DeviceVector) => void,
): NormSolver | null {
  const mode = options.certificate ?? DEFAULT_CERTIFICATE;
  if (mode === 'estimate') return null;
  if (mode !== 'deterministic' && mode !== 'probabilistic') throw new BadInputError(`unknown certificate '${mode as string}'`);
  const delta = options.delta ?? DEFAULT_DELTA;
  if (!(delta > 0 && delta < 1)) throw new BadInputError(`delta must be in (0, 1), got ${delta}`);
  return new CertifiedSolver(backend, settings, { mode, delta, seed: options.seed }, topVectors);
}

/**
 * How far below the point it evaluates at a certified evaluation's own radius (within, §8) may lie
 * and still be taken (relative); further below, the certification evaluates again.
 */
export const CERTIFICATE_SLACK = 1e-2;

/**
 * The relative width to which a certified run's estimate search narrows its bracket before the
 * certified evaluation at its lower end (docs/tightness.md §8): the certificates' own 0.2–0.5% and
 * the slack above make a finer search worth little (twelve Fashion-MNIST images and the MNIST
 * fixture: 76 evaluations at 2.5e-3, 69 at 1e-2, radii within 0.1%).
 */
export const CERTIFIED_SEARCH_TOLERANCE = CERTIFICATE_SLACK;

/**
 * Spectral tolerance of a certified run's search estimates (the user's when looser). They only
 * choose where the certified evaluation goes, and the search stops at CERTIFIED_SEARCH_TOLERANCE
 * (1%): a norm converged to 1e-4 instead of 1e-6 moves each criterion value by about 1e-4 per layer,
 * a hundredth of that width, and the reported radius is still what one fresh certified evaluation
 * certifies. Measured: Fashion-MNIST test images 0–19, 30% fewer estimate Lanczos steps (12472 →
 * 8674), the same evaluations, radii within 2e-5 relative (test/bounds/search-estimates.test.ts).
 */
export const SEARCH_ESTIMATE_TOLERANCE = 1e-4;

/** How far above a certification's ε a ball may lie for its kept certificates to answer there (relative). */
export const REUSE_RANGE = 2;

/** Whether the radius certification tries covering certificates first (certificate-ledger.ts); off for comparisons in tests. */
export const CERTIFICATE_REUSE = { enabled: true };

export type RadiusSearchResult = Omit<RadiusResult, 'global' | 'seconds'>;

/**
 * The certified radius of `method`: the largest ε passing the method's criterion, searched on
 * estimates, then (when `solver` certifies) evaluated with certificates at the radius found: the
 * radius is the largest ε' ≤ it that bound certifies (§8), re-evaluated further in only where that
 * lies beyond CERTIFICATE_SLACK below; if that fails twice, searched again on certified bounds and
 * the result certified afresh (0 if nothing passes).
 */
export async function certifiedSearch(
  method: MethodImpl,
  network: Network,
  backend: Backend,
  nominal: NominalPass,
  gaps: number[],
  cls: number,
  start: number,
  estimator: SpectralSolver,
  solver: NormSolver,
  tolerance: number,
  onEvaluation: (eps: number) => void,
  onLayer?: (index: number) => void,
  budget?: number,
  known?: KnownPoint[],
  searchEstimateTolerance = SEARCH_ESTIMATE_TOLERANCE,
  ledger?: CertificateLedger,
): Promise<RadiusSearchResult> {
  const evaluate = (s: NormSolver, e: number) => {
    onEvaluation(e);
    return (method.searched ?? method.local)(network, backend, nominal, e, s, cls, onLayer);
  };
  // certifiedRadius's criterion ε·L < margin/√2 with margin √2 and L = criterion/ε is criterion < 1.
  // Screening saves spectral iterations, the paper's cost; a tight evaluation's cost is its per-unit
  // backward passes, which a looser tolerance does not shrink, so there a screened point near the
  // threshold would only be evaluated twice (MNIST: 16 evaluations with screening, 13 without).
  const screen = estimator.withTolerance(SCREEN_TOLERANCE);
  const searchTolerance = solver === estimator ? tolerance : Math.max(tolerance, CERTIFIED_SEARCH_TOLERANCE);
  // An estimate run reports its search's numbers: they keep the user's spectral tolerance.
  const searching = solver === estimator ? estimator : estimator.withTolerance(Math.max(estimator.tolerance, searchEstimateTolerance));
  // Each evaluation also reports how far below its ε its own bound certifies (within, §8).
  // The ε the search evaluated, with the units each one's sweep left without per-unit bounds (the
  // refinement stage's test; undefined for the paper's method).
  const evaluated = new Map<number, number | undefined>();
  // The criterion at every ε the search saw: the known bounds at the user's ε (certified where the
  // run certifies), and its own evaluations (estimates).
  const knownRatios = (known ?? []).map((k): [number, number] => [k.eps, k.eps * k.L]);
  const ratios = new Map(knownRatios);
  const searchPoint = async (s: NormSolver, e: number) => {
    const bound = await evaluate(s, e);
    evaluated.set(e, (bound as Partial<TightBound>).unitsLeft);
    const ratio = method.criterion(bound, gaps, e);
    ratios.set(e, ratio);
    return { L: ratio / e, within: method.within(bound, gaps, e) };
  };
  const search = await certifiedRadius(
    Math.SQRT2,
    start,
    (e, precision) => searchPoint(precision === 'screen' ? screen : searching, e),
    searchTolerance,
    { screening: method.name === 'paper' && SCREEN_TOLERANCE > estimator.tolerance, known },
  );
  const base = { localUpper: search.upper, method: method.name, relativeTolerance: searchTolerance };
  if (solver === estimator) return { ...base, local: search.lower, evaluations: search.evaluations, quality: 'estimate' };
  let evaluations = search.evaluations;
  // The reported radius is the first or the largest ε that one of several certifying evaluations
  // passed: a choice among their draws, so its failure probability is the union bound over every
  // evaluation whose pass would have been reported (each one's draws are fresh, whatever chose its ε),
  // summed here. The searches' evaluations only choose where to certify and are not counted.
  let failureProbability = 0;
  const certifying = <T extends NetworkBound>(bound: T): T => {
    failureProbability += bound.failureProbability ?? 0;
    return bound;
  };
  // Certify with a fresh evaluation at ε: the largest ε' ≤ ε its bound certifies (ε itself where it
  // passes; §8) is the radius, when it lies within CERTIFICATE_SLACK of ε. Otherwise shrink by the
  // criterion's ratio and retry; the best ε' seen stays the fallback (each was certified).
  let fallback: { eps: number; bound: NetworkBound | null } = { eps: 0, bound: null };
  // One certifying evaluation at ε. With a ledger, the norms its kept certificates cover (those of
  // a larger ball: the user's ε, an earlier attempt) come from it first, without a KW run; that bound
  // is taken only where it passes at ε itself, and otherwise ε is evaluated again with every norm
  // computed afresh, which decides as it would have alone. So reuse can only turn a certifying
  // attempt's result into ε itself, never lower it (docs/tightness.md §0, "Reuse"); both
  // evaluations count in the failure probability. Only certificates of balls at most REUSE_RANGE
  // above ε answer: the norms of a much larger ball sit too far above (VGG-16's user ε 10⁴ above its
  // radius: criterion 18 against 1.03 fresh, 11–14 s a sweep for nothing).
  const certifiedBound = async (eps: number) => {
    if (!ledger) return certifying(await evaluate(solver, eps));
    const reusing = ledger.view(solver, { ball: eps, reuse: CERTIFICATE_REUSE.enabled, range: REUSE_RANGE });
    const bound = certifying(await evaluate(reusing, eps));
    if (reusing.reused === 0 || method.criterion(bound, gaps, eps) < 1) return bound;
    evaluations++;
    return certifying(await evaluate(ledger.view(solver, { ball: eps, reuse: false }), eps));
  };
  const certifyAt = async (eps: number, tries: number) => {
    for (let attempt = 1; attempt <= tries && eps > 0; attempt++) {
      evaluations++;
      const bound = await certifiedBound(eps);
      const within = method.within(bound, gaps, eps);
      if (within >= eps * (1 - CERTIFICATE_SLACK)) return { eps: within, bound };
      if (within > fallback.eps) fallback = { eps: within, bound };
      eps = Math.max(within, (eps / method.criterion(bound, gaps, eps)) * (1 - 1e-3));
    }
    return { eps, bound: null };
  };
  // Certificates sit above the estimates the search ran on (KW's 1/(1 − ε) inflation, about 0.2%
  // per norm; the criterion's root moves 0.2–3% down: the MNIST fixture, VGG-16). The certifying
  // evaluation goes where the estimates' criterion, as the search saw it grow, leaves room for that
  // (certificationPoint): where the radius is bound by §5 constants (§8: they do not shrink with
  // ε'), a certified bound failing at its point would certify little below it and cost another.
  const first = certificationPoint(search.lower, ratios, certificateExcess(network, solver), new Map(knownRatios));
  let found = await certifyAt(first, 2);
  if (!found.bound && found.eps > 0) {
    // The certificates sit well above the estimates (e.g. deterministic ones): search again on
    // certified bounds, then certify its result afresh (its draws chose it).
    const again = await certifiedRadius(Math.SQRT2, found.eps, (e) => searchPoint(solver, e), searchTolerance);
    evaluations += again.evaluations;
    found = await certifyAt(again.lower, 4);
  }
  if (!found.bound && fallback.bound) found = fallback;
  if (!found.bound) return { ...base, local: 0, evaluations, quality: 'upper' };
  const fast = { ...base, local: found.eps, evaluations, quality: found.bound.quality, failureProbability };
  const budgetSeconds = budget ?? DEFAULT_BRANCH_BUDGET;
  if (!method.refined || !(budgetSeconds > 0)) return fast;
  const started = performance.now();
  const deadline = started + budgetSeconds * 1000;
  // A sweep that left no unit without its per-unit bounds is what a full sweep would be. Where the
  // certified radius's sweep and the search's smallest failing one both did, full sweeps pass where
  // these do and fail where they fail, so beyond the failing one (the criterion grows with ε)
  // nothing passes either: the refinement stage could only repeat them.
  // (The search's upper end may be c/L at its lower end, not evaluated: the failing sweep is then the
  // smallest evaluated beyond it.)
  const failingSweep = Math.min(...[...evaluated.keys()].filter((e) => e >= search.upper && e > search.lower));
  const room = !((found.bound as Partial<TightBound>).unitsLeft === 0 && evaluated.get(failingSweep) === 0);
  const refined = !room ? { eps: found.eps, bound: null, evaluations: 0, completed: true } : await refineRadius(found.eps, deadline, {
    certifies: solver !== estimator,
    evaluate: (e, certify, until) => {
      onEvaluation(e);
      const bound = method.refined!(network, backend, nominal, e, certify ? solver : searching, cls, until, onLayer);
      return certify ? bound.then(certifying) : bound;
    },
    criterion: (bound, e) => method.criterion(bound, gaps, e),
    within: (bound, e) => method.within(bound, gaps, e),
  });
  evaluations += refined.evaluations;
  let best: { local?: number; quality?: NetworkBound['quality'] } = refined.bound ? { local: refined.eps, quality: refined.bound.quality } : {};
  const count: BranchCount = { branches: 0, empty: 0 };
  let branching: Awaited<ReturnType<typeof branchRadius>> | undefined;
  if (method.branched && refined.completed) {
    branching = await branchRadius(refined.eps, deadline, (e, until) => {
      onEvaluation(e);
      evaluations++;
      return method.branched!(network, backend, nominal, e, solver, cls, gaps, until, count, onLayer).then((result) => ({ ...result, bound: certifying(result.bound) }));
    });
    if (branching.bound) best = { local: branching.eps, quality: branching.bound.quality };
  }
  const refinement = {
    evaluations: refined.evaluations,
    seconds: (performance.now() - started) / 1000,
    budgetSeconds,
    fastRadius: found.eps,
    completed: refined.completed,
    ...(branching ? { refinedRadius: refined.eps, branchAttempts: branching.attempts, branches: count.branches, emptyBranches: count.empty } : {}),
  };
  return { ...fast, ...best, evaluations, failureProbability, refinement };
}

/**
 * Where the certifying evaluation of a search's lower end goes. The estimates' criterion near
 * `lower` is modelled as the line through it (its value there, or 1 where `lower` is a failing
 * point's within and was not evaluated) and the nearest passing point below, in (log ε, log r),
 * with slope at least 1 (ε·L with L non-decreasing). Certificates sit above the estimates by
 * `excess` (certificateExcess), or by what a certified known point just above `lower` (the bound
 * at the user's ε, within CALIBRATION_RANGE) shows against the line where that is more. The point
 * is where the line reaches 1/(excess·(1 + CERTIFICATION_MARGIN)), never above `lower`, and with
 * such a known point at least CERTIFICATE_SLACK below `lower` (its certificates are reused). It only
 * chooses where the certified bound is evaluated; that bound alone decides (certifyAt), so a wrong
 * guess costs an evaluation, never a wrong radius.
 */
export function certificationPoint(lower: number, ratios: ReadonlyMap<number, number>, excess = 1, certified: ReadonlyMap<number, number> = new Map()): number {
  const r = ratios.get(lower) ?? 1;
  if (!(r <= 1)) return lower / (1 + CERTIFICATE_SLACK);
  let below = 0;
  for (const [e, ratio] of ratios) if (e < lower && e > below && ratio > 0 && ratio < r) below = e;
  const slope = below > 0 ? Math.max(1, Math.log(r / ratios.get(below)!) / Math.log(lower / below)) : 1;
  let inflation = excess;
  let covered = false;
  for (const [e, ratio] of certified) {
    if (!(e > lower && e <= lower * CALIBRATION_RANGE)) continue;
    covered = true;
    inflation = Math.max(inflation, ratio / (r * (e / lower) ** slope));
  }
  const aim = 1 / (inflation * (1 + CERTIFICATION_MARGIN));
  const point = lower * Math.min(1, Math.exp(Math.log(aim / r) / slope));
  // Near a certified known point the certification reuses its certificates (certificate-ledger.ts),
  // which sit above fresh ones by the norms' growth up to that ε: at least CERTIFICATE_SLACK inside.
  return covered ? Math.min(point, lower / (1 + CERTIFICATE_SLACK)) : point;
}

/** Room left below the certificates' expected excess by certificationPoint (relative, on the criterion). */
export const CERTIFICATION_MARGIN = 2e-3;

/**
 * How far a probabilistic certificate's criterion may sit above the estimates': each KW norm is
 * at most 1/√(1 − ε) above its run's top Ritz value (ε = DEFAULT_KW_EPSILON, certificates.ts), and
 * the criterion's terms multiply at most every layer's norm: that factor to the power of the
 * network's affine layers (VGG-16: 3.3%, the MNIST fixture: 1.0%). 1 for other solvers.
 */
export function certificateExcess(network: Network, solver: NormSolver): number {
  if (!(solver instanceof CertifiedSolver && solver.certificate.mode === 'probabilistic')) return 1;
  return (1 - DEFAULT_KW_EPSILON) ** (-network.layers.filter(isAffine).length / 2);
}

/** How far above a search's lower end a certified known point calibrates certificationPoint (relative). */
export const CALIBRATION_RANGE = 1.1;

/** The branching stage's first step beyond the certified radius (relative), halved after each ε it could not certify ... */
export const BRANCH_STEP = 0.05;
/** ... down to this. */
export const BRANCH_MIN_STEP = 0.005;

/**
 * The branching stage of the radius (docs/tightness.md §7), after the refinement stage: tries
 * ε = certified·(1 + step), certified by the full sweep or by branch and bound on its unstable units;
 * a success becomes the certified radius, a failure (a branch with nothing left to split, or half
 * of the remaining budget spent on this ε) halves the step; it ends when the step falls below
 * BRANCH_MIN_STEP or the budget is spent. Each try's own full sweep and branches certify it (their
 * failure probability is that sweep's); the step only chooses where to try.
 */
async function branchRadius(
  certified: number,
  deadline: number,
  attempt: (eps: number, deadline: number) => Promise<{ bound: NetworkBound; certified: boolean }>,
): Promise<{ eps: number; bound: NetworkBound | null; attempts: number }> {
  let lo = certified;
  let bound: NetworkBound | null = null;
  let step = BRANCH_STEP;
  let attempts = 0;
  while (step >= BRANCH_MIN_STEP && performance.now() < deadline) {
    const eps = lo * (1 + step);
    attempts++;
    try {
      const result = await attempt(eps, Math.min(deadline, performance.now() + (deadline - performance.now()) / 2));
      if (result.certified) {
        lo = eps;
        bound = result.bound;
        continue;
      }
    } catch (error) {
      if (!(error instanceof BudgetExhausted)) throw error;
    }
    step /= 2;
  }
  return { eps: lo, bound, attempts };
}

/** Relative width at which the refinement stage's search stops (each step is a full sweep). */
export const REFINEMENT_TOLERANCE = 1e-2;

/**
 * The refinement stage searches only where its first full sweep, at the fast stage's radius, promises
 * more than this (the Newton step ε/r, which the criterion's superlinear growth in ε makes an
 * overestimate): MNIST 8 and Fashion-MNIST images leave 1–3%, CIFAR-10 dog 4 a factor 29.
 */
export const REFINEMENT_MIN_ROOM = 0.05;

/** The refinement stage's search grows ε at most this much per step until a full sweep fails. */
export const REFINEMENT_GROWTH = 3;

/** What the refinement stage evaluates: a full sweep at ε, on search estimates or certified (`certify`). */
export interface RefinementEvaluator {
  /** Whether `certify` sweeps differ from the search's (false with `--certify estimate`: the search's sweeps are the answer). */
  certifies: boolean;
  evaluate(eps: number, certify: boolean, deadline: number): Promise<NetworkBound>;
  criterion(bound: NetworkBound, eps: number): number;
  within(bound: NetworkBound, eps: number): number;
}

/**
 * The refinement stage of the radius (docs/tightness.md §6): from a certified ε, full sweeps — every
 * unit that may switch or settle a max pool bounded by §5 — search for the largest ε they pass, on
 * the search's estimates (warm-started: they only choose where to certify), then one full sweep with
 * fresh certificates certifies it, as the fast search's result is (§0, §8). The search: while every
 * sweep passed, the next ε follows the criterion's growth in ε (a straight line in log ε, log ratio
 * through the last two passing points; the Newton step ε/r from the first), at most
 * REFINEMENT_GROWTH times the last; then regula falsi in log ε between the largest passing and the
 * smallest failing ε (a failing sweep's `within` raising the lower end) down to REFINEMENT_TOLERANCE.
 * It stops early where the time left would not fit the certifying sweep (1.5 times the last search
 * sweep). The certifying sweep runs CERTIFICATE_SLACK inside the search's lower end (or at a failing
 * sweep's `within`); the radius is the largest ε' ≤ it that certified bound passes at (§8), kept only
 * where it beats the fast stage's. A sweep the deadline interrupts is dropped. The estimates only
 * choose where the one certified sweep goes: the result is always an ε a certified evaluation passed.
 * (With `--certify estimate` the search's sweeps are the answer, as in the fast search.)
 */
export async function refineRadius(
  certified: number,
  deadline: number,
  stage: RefinementEvaluator,
): Promise<{ eps: number; bound: NetworkBound | null; evaluations: number; completed: boolean }> {
  const { evaluate, criterion, within, certifies } = stage;
  const passed: { eps: number; ratio: number; bound: NetworkBound }[] = []; // the search's passing sweeps, ε increasing
  let floor = 0; // the largest ε' a failing sweep's bound passes at on its smaller ball (§8)
  let hi = Infinity;
  let hiRatio = NaN;
  let evaluations = 0;
  let converged = false;
  let lastSweepSeconds = 0;
  const best = () => passed[passed.length - 1];
  // The bracket's lower end: the largest passing sweep, or above it a failing sweep's within.
  const lower = () => Math.max(best()?.eps ?? certified, floor);
  const timeLeft = () => (deadline - performance.now()) / 1000;
  const sweep = async (eps: number, certify: boolean) => {
    const started = performance.now();
    evaluations++;
    const bound = await evaluate(eps, certify, deadline);
    lastSweepSeconds = (performance.now() - started) / 1000;
    return bound;
  };
  try {
    for (;;) {
      if (hi !== Infinity && hi / lower() - 1 <= REFINEMENT_TOLERANCE) {
        converged = true;
        break;
      }
      let eps: number;
      if (passed.length === 0) eps = certified;
      else if (hi === Infinity) {
        const last = best();
        let growth = 1 / last.ratio; // the Newton step: the criterion about linear in ε
        if (passed.length >= 2) {
          const before = passed[passed.length - 2];
          const slope = Math.log(last.ratio / before.ratio) / Math.log(last.eps / before.eps);
          if (slope > 0) growth = Math.pow(1 / last.ratio, 1 / slope);
        }
        eps = last.eps * Math.min(Math.max(growth * (1 - 1e-3), 1 + REFINEMENT_TOLERANCE), REFINEMENT_GROWTH);
      } else {
        // Regula falsi in (log ε, log ratio) between the largest passing and the smallest failing
        // sweep, kept a quarter of the tolerance inside the bracket (whose lower end may be a floor).
        const [a, b] = [Math.log(best().eps), Math.log(hi)];
        const [fa, fb] = [Math.log(best().ratio), Math.log(hiRatio)];
        let t = fb > fa ? a - (fa * (b - a)) / (fb - fa) : (a + b) / 2;
        const from = Math.log(lower());
        // The line puts the root within the tolerance of the lower end: the search is done there.
        if (t - from <= Math.log1p(REFINEMENT_TOLERANCE)) {
          converged = true;
          break;
        }
        const inset = Math.min(0.1 * (b - from), Math.log1p(REFINEMENT_TOLERANCE) / 4);
        t = Math.min(Math.max(t, from + inset), b - inset);
        eps = Math.exp(t);
      }
      if (passed.length > 0 && timeLeft() < 1.5 * lastSweepSeconds) break; // keep the certifying sweep's time
      checkBudget(deadline);
      const bound = await sweep(eps, false);
      const ratio = criterion(bound, eps);
      if (ratio < 1) {
        if (eps > (best()?.eps ?? 0)) passed.push({ eps, ratio, bound });
        if (passed.length === 1 && 1 / ratio - 1 <= REFINEMENT_MIN_ROOM) {
          converged = true; // little room beyond the fast stage's radius: not worth a search
          break;
        }
      } else {
        if (passed.length === 0) break; // the full sweep fails where the fast one passed: nothing to refine
        hi = eps;
        hiRatio = ratio;
        floor = Math.max(floor, within(bound, eps));
      }
    }
  } catch (error) {
    if (!(error instanceof BudgetExhausted)) throw error;
  }
  const lo = passed.length > 0 ? lower() : certified;
  const loEvaluated = lo === best()?.eps; // a point the search evaluated (not a failing sweep's within)
  const estimateBound = best()?.bound ?? null;
  if (!(lo > certified * (1 + REFINEMENT_TOLERANCE / 4))) return { eps: certified, bound: null, evaluations, completed: converged };
  if (!certifies) return { eps: lo, bound: estimateBound, evaluations, completed: converged };
  try {
    checkBudget(deadline);
    const target = loEvaluated ? lo / (1 + CERTIFICATE_SLACK) : lo;
    const bound = await sweep(target, true);
    const radius = within(bound, target);
    // The search finished: branching (§7) goes on from what the certified sweep certifies.
    if (radius > certified) return { eps: radius, bound, evaluations, completed: converged };
  } catch (error) {
    if (!(error instanceof BudgetExhausted)) throw error;
  }
  return { eps: certified, bound: null, evaluations, completed: false };
}
