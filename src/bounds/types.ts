/**
 * What a certification returns. Every number says what it is: `quality` on each bound tells the
 * user whether a figure is exact, an upper bound, or an estimate of one to a stated tolerance.
 * The CLI's `--json` output and the GraphQL `Run.result` are this structure.
 */
import type { LayerKind, Shape } from '../model/ir.js';

/**
 * - 'exact': computed in closed form (max pool √n_max, flatten 1, diagonal layers);
 * - 'estimate': a spectral norm from Lanczos iterated to the stated relative tolerance (from below);
 * - 'upper': a guaranteed upper bound.
 */
export type BoundQuality = 'exact' | 'estimate' | 'upper';

export interface SpectralNormReport {
  /** The norm ||Λ A D|| (or ||A|| for the global bound). */
  value: number;
  quality: BoundQuality;
  /** Applications of D Aᵀ Λ² A D. */
  iterations: number;
  /** Relative change of the estimate over the last `window` steps (over all steps taken where it stopped sooner; spectral.ts reportedChange). */
  relativeChange: number;
  /** ||G y − θ y|| / θ for the final Ritz pair (θ = value²). */
  relativeResidual: number;
  converged: boolean;
  /** For quality 'upper': which certificate gave the value (certificates.ts), e.g. 'deterministic:gram'. */
  certificate?: string;
  /** Probability that a probabilistic certificate fails (0 for deterministic ones). */
  failureProbability?: number;
}

export interface LayerBound {
  index: number;
  kind: LayerKind;
  /** True where a ReLU follows the affine map or sum (the paper's affine-ReLU layer), and for a lone ReLU. */
  relu: boolean;
  /** The activation other than ReLU that follows (or, for kind 'activation', is) the layer, e.g. 'clip(0,6)'. */
  activation?: string;
  /** The layers whose outputs this layer reads (−1: the network input). */
  inputs?: number[];
  name: string;
  inputShape: Shape;
  outputShape: Shape;
  /**
   * The layer's bound L_l: its output moves at most L_l times what it reads moves (`epsIn` for a
   * local bound). For an Add, what it reads is the sum of its inputs; for a Concat, the inputs
   * stacked (L = 1); docs/graphs.md.
   */
  bound: number;
  quality: BoundQuality;
  /** Which certificate makes `bound` an upper bound (see SpectralNormReport.certificate). */
  certificate?: string;
  /**
   * ε_l: radius of the set this layer sees (Proposition 2; for an Add, the sum of its inputs'
   * radii; for a Concat, their root-sum-of-squares). Absent for global bounds.
   */
  epsIn?: number;
  /** Slope counts λ = 0, 0 < λ < 1, λ ≥ 1 (Theorem 1); activated layers of a local bound only. */
  lambdaZero?: number;
  lambdaPartial?: number;
  lambdaOne?: number;
  /** Inputs of the layer not known to be inactive (the 1s of D). */
  activeInputs?: number;
  spectral?: SpectralNormReport;
}

export interface NetworkBound {
  /** Π_l L_l (Proposition 3) on a chain; on a DAG, the recursion of docs/graphs.md §1 at the last layer. */
  bound: number;
  /** 'estimate' if any factor is an estimate, else 'upper' (or 'exact'). */
  quality: BoundQuality;
  layers: LayerBound[];
  seconds: number;
  /** 'paper' (Algorithm 1) or 'tight' (docs/tightness.md); absent means 'paper'. */
  method?: BoundMethod;
  /**
   * Probability that the bound fails: at most the sum of its probabilistic certificates' δ
   * (union bound); 0 when every certificate is deterministic. Absent for estimates.
   */
  failureProbability?: number;
}

/** 'paper': Avant & Morgansen's Algorithm 1; 'tight': the refinements of docs/tightness.md. */
export type BoundMethod = 'paper' | 'tight';

export interface LocalBound extends NetworkBound {
  eps: number;
}

export interface RadiusResult {
  /**
   * Largest ε with ε·L(x0, ε) < δ/√2 found by bisection (Proposition 6), or what a bound evaluated at
   * a larger ε certifies on the smaller ball (docs/tightness.md §8): certified up to the quality of L.
   */
  local: number;
  /**
   * Smallest ε found where the search's criterion fails: the search certifies nothing at or beyond
   * it (the refinement and branching stages, with their full sweeps and branches, may).
   */
  localUpper: number;
  /** δ / (√2 L_global). */
  global: number;
  /** Local-bound evaluations used by the bracketing and bisection. */
  evaluations: number;
  /**
   * Relative width to which the search narrowed its bracket: the requested tolerance, and for a
   * certified radius at least CERTIFIED_SEARCH_TOLERANCE (methods.ts).
   */
  relativeTolerance: number;
  seconds: number;
  /** Criterion used: 'paper' (ε·L < δ/√2) or 'tight' (per-class margins, docs/tightness.md). */
  method?: BoundMethod;
  /** Quality of the bound that certifies `local` ('upper' when it was re-certified). */
  quality?: BoundQuality;
  /** Failure probability of that certificate (union bound over its probabilistic factors). */
  failureProbability?: number;
  /**
   * The refinement stage (tight method, docs/tightness.md §6): full sweeps within a time budget,
   * from the fast search's certified radius; absent when the stage did not run.
   */
  refinement?: {
    /** Full sweeps: the search's, on estimates, and the certifying one (0 where the fast sweeps left no unit unbounded). */
    evaluations: number;
    seconds: number;
    budgetSeconds: number;
    /** The certified radius before the stage. */
    fastRadius: number;
    /** True when the stage's search reached its tolerance (or had nothing to search) within the budget. */
    completed: boolean;
    /**
     * The branching stage (docs/tightness.md §7), when it ran (after a completed search): the
     * radius the full sweeps certified before it, the ε it tried, the branches it bounded in all
     * and those of them found empty.
     */
    refinedRadius?: number;
    branchAttempts?: number;
    branches?: number;
    emptyBranches?: number;
  };
  /**
   * False when the margin is below what the float32 forward pass resolves (the computed top-1 class
   * may not be the exact network's): then nothing is certified and every radius is 0.
   */
  marginResolved?: boolean;
}

export interface CertifyResult {
  /** Top-1 class at x0. */
  class: number;
  /** δ: top-1 minus top-2 logit, as computed in float32. */
  margin: number;
  /**
   * Bound on the float32 rounding in the margins (rounding.ts): the exact network's gap to every
   * other class is at least margin − marginError; radii are computed from those certified gaps.
   */
  marginError?: number;
  logits: number[];
  global?: NetworkBound;
  local: LocalBound[];
  radius?: RadiusResult;
  backend: string;
  adapter: string;
  /** Tolerance of every spectral norm estimate (relative change between steps). */
  tolerance: number;
  seconds: number;
  engineVersion: string;
}

export interface ProgressEvent {
  phase: 'prepare' | 'forward' | 'global' | 'local' | 'radius' | 'done';
  /** 0..1 over the whole request. */
  fraction: number;
  message: string;
  eps?: number;
  layer?: number;
  layers?: number;
  iteration?: number;
}

export interface CertifyOptions {
  /** Radii of the local bounds to compute. */
  eps: number[];
  /** Also compute the global bound (always computed when `radius` is set). */
  global?: boolean;
  /** Also compute the certified radius (local and global). */
  radius?: boolean;
  /** Relative change at which a spectral norm iteration stops (default 1e-6). */
  tolerance?: number;
  /** Most operator applications per spectral norm (default 5000). */
  maxIterations?: number;
  /** Relative width at which the radius bisection stops (default 1e-4). */
  radiusTolerance?: number;
  /** Bound method (default 'tight': defaults.ts). */
  method?: BoundMethod;
  /** Spectral norms: certified ('deterministic', 'probabilistic') or Lanczos estimates (default 'probabilistic': defaults.ts). */
  certificate?: 'deterministic' | 'probabilistic' | 'estimate';
  /** Failure probability of each probabilistic certificate (default 1e-3). */
  delta?: number;
  /** Seed of the Gaussian start vectors of probabilistic certificates (default: random). */
  seed?: number;
  /**
   * Seconds for the certified radius' refinement stage (tight method): full sweeps at larger ε
   * (docs/tightness.md §6). Default DEFAULT_BRANCH_BUDGET (0: the stage does not run).
   */
  branchBudget?: number;
  /**
   * The network's global bound computed earlier with the same method and certificate (it does not
   * depend on the input): used as it is instead of computing it again (a dataset's images).
   */
  globalBound?: NetworkBound;
  onProgress?: (event: ProgressEvent) => void;
  signal?: AbortSignal;
}
