/**
 * The certified adversarial radius (Proposition 6): with δ the gap between the two largest logits at
 * x0, no input within ε of x0 changes the top-1 class if ε·L(x0, ε) < δ/√2. g(ε) = ε·L(ε) is
 * non-decreasing, so the largest such ε is bracketed and then narrowed by a safeguarded
 * regula falsi (Illinois) on log g(e^t) − log(δ/√2), to a relative width `tolerance`.
 */
export interface RadiusSearch {
  /** Largest ε evaluated with ε·L(ε) < δ/√2 (0 when δ = 0). */
  lower: number;
  /** Smallest ε evaluated with ε·L(ε) ≥ δ/√2. */
  upper: number;
  evaluations: number;
}

/**
 * @param localBound L(x0, ε) (evaluated with warm starts by the caller).
 * @param start a radius known to satisfy the criterion in exact arithmetic (the global radius).
 */
export async function certifiedRadius(
  margin: number,
  start: number,
  localBound: (eps: number) => Promise<number>,
  tolerance: number,
  maxEvaluations = 60,
): Promise<RadiusSearch> {
  const target = margin / Math.SQRT2;
  if (!(target > 0) || !(start > 0)) return { lower: 0, upper: 0, evaluations: 0 };
  let evaluations = 0;
  const h = async (eps: number) => {
    evaluations++;
    const L = await localBound(eps);
    return { eps, L, h: Math.log((eps * L) / target) };
  };

  // Bracket. From any ε with L(ε) known, c/L(ε) is at or beyond the root when ε is below it
  // (L is non-decreasing), which gives the upper end in one step unless L is flat.
  let lo = await h(start);
  while (!(lo.h < 0) && evaluations < maxEvaluations) {
    // Numerical noise at the global radius: step down.
    lo = await h(lo.eps / 2);
  }
  if (!(lo.h < 0)) return { lower: 0, upper: lo.eps, evaluations };
  let hi = await h(Math.max(target / lo.L, lo.eps * 1.5));
  while (hi.h < 0 && evaluations < maxEvaluations) {
    lo = hi;
    hi = await h(Math.max(target / lo.L, lo.eps * 2));
  }
  if (hi.h < 0) return { lower: lo.eps, upper: Infinity, evaluations };

  // Illinois regula falsi in t = log ε, safeguarded to stay well inside the bracket.
  let hLo = lo.h;
  let hHi = hi.h;
  let side = 0;
  while (hi.eps / lo.eps - 1 > tolerance && evaluations < maxEvaluations) {
    const tLo = Math.log(lo.eps);
    const tHi = Math.log(hi.eps);
    let t = tLo - (hLo * (tHi - tLo)) / (hHi - hLo);
    const width = tHi - tLo;
    const margin = Math.min(0.05 * width, Math.log1p(tolerance) / 4);
    if (!Number.isFinite(t)) t = (tLo + tHi) / 2;
    t = Math.min(Math.max(t, tLo + margin), tHi - margin);
    const mid = await h(Math.exp(t));
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
  return { lower: lo.eps, upper: hi.eps, evaluations };
}
