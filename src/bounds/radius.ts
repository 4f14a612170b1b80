/**
 * The certified adversarial radius (Proposition 6): with δ the gap between the two largest logits at
 * x0, no input within ε of x0 changes the top-1 class if ε·L(x0, ε) < δ/√2. g(ε) = ε·L(ε) is
 * non-decreasing, so the largest such ε is bracketed and then narrowed by a safeguarded
 * regula falsi (Illinois) on log g(e^t) − log(δ/√2), to a relative width `tolerance` (or until
 * the passing end's own c/L(ε), at or beyond the root, lies within it).
 *
 * Screening: far from the root only the side of the criterion matters, so a search may evaluate
 * L(ε) at a loose spectral tolerance first ('screen') and at the full one ('full') only where the
 * screened value lies within SCREEN_MARGIN of the threshold. The two ends of the final bracket are
 * always full evaluations: a screened end is re-evaluated, and where it lands on the other side the
 * search goes on from there. g jumps where a neuron enters a domain mask, and where the root sits on
 * such a jump its position moves with the accuracy of the earlier layers' bounds.
 *
 * Smaller balls (docs/tightness.md §8): an evaluation may also report `within`, the largest ε' ≤ ε
 * its own bound passes at. A failing point then also shows everything up to its `within` to pass, so
 * the bracket's lower end is the larger of the passing point and that floor.
 */
export interface RadiusSearch {
  /**
   * Largest ε shown at full precision to satisfy ε·L < δ/√2: an evaluated point, or the `within` of
   * a failing one (0 when δ = 0).
   */
  lower: number;
  /**
   * At or beyond the root: the smallest ε evaluated (at full precision) with ε·L(ε) ≥ δ/√2, or
   * c/L(lower) where that is smaller (beyond the root as L is non-decreasing, the assumption every
   * jump of the search rests on; the search stops there once it lies within the tolerance).
   */
  upper: number;
  /** Bound evaluations, screened and full. */
  evaluations: number;
}

export type RadiusPrecision = 'screen' | 'full';

/** A screened evaluation decides the side when log(ε·L/(δ/√2)) is at least this far from 0. */
export const SCREEN_MARGIN = 0.02;

/** Spectral tolerance of screened evaluations (each layer's norm; 8 layers stay well inside the margin). */
export const SCREEN_TOLERANCE = 1e-3;

/** How far beyond the jump c/L(ε) a failing known point may lie and still end the bracket in its place. */
export const FAR_KNOWN = 4;

interface Point {
  eps: number;
  L: number;
  /** log(ε·L / (δ/√2)): negative below the threshold. */
  h: number;
  full: boolean;
}

/**
 * What an evaluation may return beside L: `within`, the largest ε' ≤ ε its bound satisfies the
 * criterion at on the smaller ball (docs/tightness.md §8). A point that fails at its own ε then
 * still shows every ε' up to `within` to pass, so the bracket's lower end may sit there without an
 * evaluation of its own.
 */
export interface Evaluated {
  L: number;
  within?: number;
}

/** A point where L is already known (evaluated at full precision by the caller), with its within if known. */
export interface KnownPoint {
  eps: number;
  L: number;
  within?: number;
}

/**
 * @param localBound L(x0, ε) at the given precision (evaluated with warm starts by the caller).
 * @param start a radius known to satisfy the criterion in exact arithmetic (the global radius).
 * @param screening whether `localBound` has a cheaper 'screen' precision worth using.
 * @param known points already evaluated (bounds the caller computed anyway, at the user's ε): the
 *   largest one that satisfies the criterion is the bracket's first lower end and `start` is not
 *   evaluated (the jump from it, c/L, is beyond the root since L is non-decreasing, as from
 *   `start`); the smallest failing one above it is the first upper end, in place of the jump, and
 *   a failing one's `within` is a floor like a failing evaluation's; with no passing one, the first
 *   lower end is evaluated at that floor instead of at `start` (the floor passes on the known
 *   bound's own smaller ball, and lies near the root where `start` may lie far below it). They only
 *   decide where the search begins: the bracket's ends are still evaluated points on either side.
 */
export async function certifiedRadius(
  margin: number,
  start: number,
  localBound: (eps: number, precision: RadiusPrecision) => Promise<number | Evaluated>,
  tolerance: number,
  { maxEvaluations = 60, screening = false, known = [] }: { maxEvaluations?: number; screening?: boolean; known?: KnownPoint[] } = {},
): Promise<RadiusSearch> {
  const target = margin / Math.SQRT2;
  if (!(target > 0) || !(start > 0)) return { lower: 0, upper: 0, evaluations: 0 };
  let evaluations = 0;
  // The largest ε' that a failing full-precision evaluation showed to pass on its smaller ball (0: none).
  let floor = 0;
  const evaluate = async (eps: number, precision: RadiusPrecision): Promise<Point> => {
    evaluations++;
    const value = await localBound(eps, precision);
    const { L, within } = typeof value === 'number' ? { L: value, within: undefined } : value;
    const point = { eps, L, h: Math.log((eps * L) / target), full: precision === 'full' };
    if (point.full && !(point.h < 0) && within !== undefined && within > floor) floor = within;
    return point;
  };
  // The bracket's lower end: the passing point or, above it, the floor a failing point showed.
  const lower = (lo: Point) => Math.max(lo.h < 0 ? lo.eps : 0, floor);
  const lowerFull = (lo: Point) => lo.full || floor >= lo.eps;
  const h = async (eps: number): Promise<Point> => {
    if (!screening) return evaluate(eps, 'full');
    const screened = await evaluate(eps, 'screen');
    return Math.abs(screened.h) >= SCREEN_MARGIN ? screened : evaluate(eps, 'full');
  };
  const budgetLeft = () => evaluations < maxEvaluations;

  // Bracket. From any ε with L(ε) known, c/L(ε) is at or beyond the root when ε is below it
  // (L is non-decreasing), which gives the upper end in one step unless L is flat.
  // A known passing point (the bound at the user's ε) starts the bracket in place of an evaluation at `start`.
  const knownPoints: Point[] = known.map((k) => ({ eps: k.eps, L: k.L, h: Math.log((k.eps * k.L) / target), full: true }));
  known.forEach((k, i) => {
    if (!(knownPoints[i].h < 0) && k.within !== undefined && k.within > floor) floor = k.within;
  });
  const knownPassing = knownPoints.filter((p) => p.h < 0).sort((a, b) => b.eps - a.eps)[0];
  // With no passing known point, a failing one's floor is the first lower end to evaluate: it
  // passes there (on the known bound's smaller ball) and lies near the root, where a tight bound
  // also costs least — far below it, few enough units may switch for the per-unit bounds to run
  // (CIFAR-10's global radius, 1/50 of the root: 0.5 s an evaluation against 0.2 s near it).
  // Before that floor, where it lies further below: the failing point's ε/ratio, the root if the
  // criterion grew linearly from it, and at or below the root where it grows faster (ε·L with L
  // non-decreasing: the paper's criterion, where the floor is that point already). A tight bound's
  // floor keeps its §5 constants and lies further down (CIFAR-10 at the user's ε 0.01: the floor
  // 0.00839, ε/ratio 0.00964, the root 0.0099), and an evaluation near the root costs least. Where
  // it fails after all, its own floor joins the others and the search goes on from there.
  const knownFailing = (above: number) => knownPoints.filter((p) => !(p.h < 0) && p.eps > above).sort((a, b) => a.eps - b.eps)[0];
  const firstLower = async (): Promise<Point> => {
    const failing = knownFailing(0);
    const predicted = failing ? target / failing.L : 0;
    if (predicted > Math.max(start, floor) * (1 + tolerance)) {
      const first = await h(predicted);
      if (first.h < 0) return first;
      knownPoints.push(first);
    }
    return h(Math.max(start, floor));
  };
  let lo: Point = knownPassing ?? (await firstLower());
  while (!(lo.h < 0) && budgetLeft()) {
    // Numerical noise at the global radius (or the floor): step down.
    lo = await h(lo.eps / 2);
  }
  if (!(lo.h < 0)) return { lower: Math.min(floor, lo.eps), upper: lo.eps, evaluations };
  // The upper end: a failing known point, or the jump c/L from lo where the known point lies more
  // than FAR_KNOWN times beyond it (both are at or beyond the root; regula falsi from one that far
  // would step by the criterion's average growth over decades: VGG-16's user ε lies 10⁴ above its
  // radius, where its near-linear criterion puts c/L within a few percent of the root).
  const upperFrom = async (from: Point, growth: number): Promise<Point> => {
    const jump = Math.max(target / from.L, from.eps * growth);
    const failing = knownFailing(from.eps);
    return failing && failing.eps <= FAR_KNOWN * jump ? failing : h(jump);
  };
  // A passing full-precision point bounds the root from above by itself: c/L(ε) is at or beyond it
  // (L non-decreasing, as for the jumps). Where that lies within the tolerance, the root is
  // bracketed to it without evaluating an upper end any closer.
  const settled = (p: Point) => p.full && p.h < 0 && !(target / p.L / lower(p) - 1 > tolerance);
  // The search's result there: c/L(p) is the upper end unless an evaluated failing point lies below it.
  const settledAt = (p: Point, failing = Infinity): RadiusSearch => ({ lower: lower(p), upper: Math.min(failing, target / p.L), evaluations });
  if (settled(lo)) return settledAt(lo);
  let hi = await upperFrom(lo, 1.5);
  while (hi.h < 0 && budgetLeft()) {
    lo = hi;
    if (settled(lo)) return settledAt(lo);
    hi = await upperFrom(lo, 2);
  }
  if (hi.h < 0) return { lower: lower(lo), upper: Infinity, evaluations };

  // Illinois regula falsi in t = log ε, safeguarded to stay well inside the bracket; then the
  // bracket's ends at full precision, going on where one of them changes side.
  let hLo = lo.h;
  let hHi = hi.h;
  let side = 0;
  for (;;) {
    if (settled(lo)) return settledAt(lo, hi.eps);
    if (!(hi.eps / lower(lo) - 1 > tolerance)) {
      if ((lowerFull(lo) && hi.full) || !budgetLeft()) break;
      // Re-evaluate a screened end (the lower one first). While it lands on the other side it
      // becomes the other end, and points further out (steps doubling from 4·tolerance) follow.
      const upward = lowerFull(lo); // re-evaluating the upper end: step up
      const ownSide = (q: Point) => (upward ? !(q.h < 0) : q.h < 0);
      let step = 4 * tolerance;
      let p = await evaluate((upward ? hi : lo).eps, 'full');
      while (!ownSide(p) && budgetLeft()) {
        if (p.h < 0) lo = p;
        else hi = p;
        p = await evaluate(upward ? p.eps * (1 + step) : p.eps / (1 + step), 'full');
        step *= 2;
      }
      if (p.h < 0) lo = p;
      else hi = p;
      hLo = lo.h;
      hHi = hi.h;
      side = 0;
      continue;
    }
    if (!budgetLeft()) break;
    const tLo = Math.log(lo.eps);
    const tHi = Math.log(hi.eps);
    let t = tLo - (hLo * (tHi - tLo)) / (hHi - hLo);
    // Inside the bracket whose lower end may be the floor above lo.
    const tFrom = Math.log(lower(lo));
    const width = tHi - tFrom;
    const inset = Math.min(0.05 * width, Math.log1p(tolerance) / 4);
    if (!Number.isFinite(t)) t = (tFrom + tHi) / 2;
    t = Math.min(Math.max(t, tFrom + inset), tHi - inset);
    // Once the ends are full evaluations, so are the points between them.
    const mid = lowerFull(lo) && hi.full ? await evaluate(Math.exp(t), 'full') : await h(Math.exp(t));
    if (mid.h < 0) {
      lo = mid;
      hLo = mid.h;
      if (side === -1) hHi /= 2;
      side = -1;
    } else {
      hi = mid;
      hHi = mid.h;
      if (side === 1) hLo /= 2;
      side = 1;
    }
  }
  return { lower: lower(lo), upper: hi.eps, evaluations };
}
