/**
 * The one definition of what a bound computes when the caller does not say: certify(), the CLI, the
 * server (and its schema's argument defaults, checked by test/server/defaults.test.ts) and the web
 * page all read it here. The default is the honest one: the tight method (docs/tightness.md) with
 * every spectral norm certified, probabilistically (Kuczyński–Woźniakowski, each norm failing with
 * probability at most `delta`, a bound failing with at most the sum over its factors).
 * `PAPER_REPRODUCTION` is the paper's Algorithm 1 and Proposition 6 with Lanczos estimates: what
 * reproduces fixtures/reference.json and the paper's tables.
 * This file imports nothing, so the browser bundle (web/) can use it too.
 */

export const DEFAULT_METHOD = 'tight' as const;
export const DEFAULT_CERTIFICATE = 'probabilistic' as const;
/** Failure probability of each probabilistic certificate. */
export const DEFAULT_DELTA = 1e-3;

/**
 * The certified radius' refinement stage (tight method, docs/tightness.md §6) runs only with a
 * budget in seconds from the caller (--branch-budget): at 10× one search evaluation it changed no
 * fixture's radius by more than 1% while adding 20–100% to the time (CIFAR-10 needs minutes of it).
 */
export const DEFAULT_BRANCH_BUDGET = 0;

export const DEFAULTS = { method: DEFAULT_METHOD, certificate: DEFAULT_CERTIFICATE, delta: DEFAULT_DELTA } as const;

/** The paper's method with spectral norms estimated by Lanczos (reproduces fixtures/reference.json). */
export const PAPER_REPRODUCTION = { method: 'paper', certificate: 'estimate' } as const;
