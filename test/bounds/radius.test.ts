/**
 * The certified-radius search (Proposition 6) on synthetic L(ε): a continuous one, one with a jump
 * at the root (a neuron entering a domain mask), and screened evaluations that misplace the jump.
 * The final bracket must hold the full-precision root, its ends evaluated at full precision.
 */
import { certifiedRadius, type RadiusPrecision } from '../../src/bounds/radius.js';

const margin = Math.SQRT2; // threshold δ/√2 = 1: the criterion is ε·L(ε) < 1

/** L(ε) with a jump from `low` to `high` at ε = jumpAt (ε·L crosses 1 there). */
function jumpy(jumpAt: number, low = 0.8, high = 1.3) {
  return (eps: number) => (eps < jumpAt ? low / jumpAt : high / jumpAt) * (1 + 0.01 * eps);
}

function recorder(full: (eps: number) => number, screen: (eps: number) => number) {
  const calls: { eps: number; precision: RadiusPrecision; L: number }[] = [];
  const localBound = async (eps: number, precision: RadiusPrecision) => {
    const L = precision === 'full' ? full(eps) : screen(eps);
    calls.push({ eps, precision, L });
    return L;
  };
  return { calls, localBound };
}

test('a continuous L: the bracket holds the root to the tolerance', async () => {
  const L = (eps: number) => 3 + 2 * eps; // ε(3 + 2ε) = 1 at ε = 0.28077640640441515
  const root = (-3 + Math.sqrt(17)) / 4;
  const { calls, localBound } = recorder(L, L);
  const search = await certifiedRadius(margin, 0.01, localBound, 1e-6);
  expect(search.lower).toBeLessThanOrEqual(root);
  expect(search.upper).toBeGreaterThanOrEqual(root);
  expect(search.upper / search.lower - 1).toBeLessThanOrEqual(1e-6);
  expect(calls.every((c) => c.precision === 'full')).toBe(true);
  expect(search.evaluations).toBe(calls.length);
});

test('a known passing point (the bound at the user\'s eps) starts the bracket instead of an evaluation at start; a failing one ends it instead of the first jump', async () => {
  const L = (eps: number) => 3 + 2 * eps;
  const root = (-3 + Math.sqrt(17)) / 4;
  const plain = await certifiedRadius(margin, 0.01, recorder(L, L).localBound, 1e-6);
  for (const known of [0.05, 0.5]) {
    const { calls, localBound } = recorder(L, L);
    const search = await certifiedRadius(margin, 0.01, localBound, 1e-6, { known: [{ eps: known, L: L(known) }] });
    expect(calls.some((c) => c.eps === 0.01)).toBe(false);
    // A failing one's ε/ratio (here 1/L(0.5): ε·L grows faster than ε) is the first lower end.
    if (known > root) expect(calls[0].eps).toBe(1 / L(known));
    expect(calls.some((c) => c.eps === known)).toBe(false); // known: never evaluated again
    expect(search.lower).toBeLessThanOrEqual(root);
    expect(search.upper).toBeGreaterThanOrEqual(root);
    expect(search.upper / search.lower - 1).toBeLessThanOrEqual(1e-6);
    expect(search.evaluations).toBe(calls.length);
    // The passing one saves the evaluation at start; the failing one the first jump and start.
    expect(search.evaluations).toBeLessThanOrEqual(plain.evaluations - 1);
    // The failing one is the first upper end: nothing evaluated beyond it.
    if (known > root) expect(Math.max(...calls.map((c) => c.eps))).toBeLessThan(known);
  }
  // Both at once: the bracket starts as [0.05, 0.5]; the failing one's within is a floor.
  const { calls, localBound } = recorder(L, L);
  const within = (1 / L(0.5)) * (1 - 1e-9);
  const both = await certifiedRadius(margin, 0.01, localBound, 1e-2, { known: [{ eps: 0.5, L: L(0.5), within }, { eps: 0.05, L: L(0.05) }] });
  expect(calls.every((c) => c.eps > within && c.eps < 0.5)).toBe(true);
  expect(both.lower).toBeGreaterThanOrEqual(within);
  expect(both.lower).toBeLessThanOrEqual(root);
  expect(both.upper).toBeGreaterThanOrEqual(root);
});

test('with only a failing known point, the first lower end is evaluated at its floor (its within), not at start far below', async () => {
  const L = (eps: number) => 3 + 2 * eps;
  const root = (-3 + Math.sqrt(17)) / 4;
  const within = (1 / L(0.5)) * (1 - 1e-9); // what the failing point's bound certifies on smaller balls
  const { calls, localBound } = recorder(L, L);
  const search = await certifiedRadius(margin, 1e-4, localBound, 1e-2, { known: [{ eps: 0.5, L: L(0.5), within }] });
  expect(calls[0].eps).toBe(within);
  expect(calls.some((c) => c.eps === 1e-4)).toBe(false); // start: never evaluated
  expect(calls.every((c) => c.eps >= within && c.eps < 0.5)).toBe(true);
  expect(search.lower).toBeLessThanOrEqual(root);
  expect(search.upper).toBeGreaterThanOrEqual(root);
  expect(search.upper / search.lower - 1).toBeLessThanOrEqual(1e-2);
  // A floor below start: the failing point's ε/ratio first (above start), never start.
  const low = recorder(L, L);
  await certifiedRadius(margin, 0.01, low.localBound, 1e-2, { known: [{ eps: 0.5, L: L(0.5), within: 0.001 }] });
  expect(low.calls[0].eps).toBe(1 / L(0.5));
  expect(low.calls.some((c) => c.eps === 0.01)).toBe(false);
});

test('a failing known point: its ε/ratio is evaluated before its floor; where that fails (L falling toward smaller ε), the floor follows and the search still brackets the root', async () => {
  // A tight bound's floor keeps its constants and lies far below ε/ratio: ε/ratio first, near the root.
  const L = (eps: number) => 3 + 2 * eps;
  const root = (-3 + Math.sqrt(17)) / 4;
  const floor = 0.1;
  const { calls, localBound } = recorder(L, L);
  const search = await certifiedRadius(margin, 1e-4, localBound, 1e-2, { known: [{ eps: 0.3, L: L(0.3), within: floor }] });
  expect(calls[0].eps).toBe(1 / L(0.3));
  expect(calls.some((c) => c.eps === floor)).toBe(false);
  expect(search.lower).toBeLessThanOrEqual(root);
  expect(search.upper).toBeGreaterThanOrEqual(root);
  expect(search.upper / search.lower - 1).toBeLessThanOrEqual(1e-2);
  // L larger below the known point (a tight estimate need not be monotone): ε/ratio fails, the
  // floor is evaluated next, and the bracket still holds this L's root.
  const bumpy = (eps: number) => (eps < 0.32 ? 5 : 3.2); // ε·L = 1 at 0.2; fails from there on
  const second = recorder(bumpy, bumpy);
  const found = await certifiedRadius(margin, 1e-4, second.localBound, 1e-2, { known: [{ eps: 0.36, L: 3.2, within: 0.15 }] });
  expect(second.calls.slice(0, 2).map((c) => c.eps)).toEqual([1 / 3.2, 0.15]);
  expect(found.lower).toBeLessThanOrEqual(0.2);
  expect(found.upper).toBeGreaterThanOrEqual(0.2);
  expect(found.upper / found.lower - 1).toBeLessThanOrEqual(1e-2);
});

test('a jump at the root: screened evaluations far from it, full ones at the ends', async () => {
  const full = jumpy(0.0523);
  const { calls, localBound } = recorder(full, full);
  const search = await certifiedRadius(margin, 1e-4, localBound, 1e-4, { screening: true });
  expect(search.lower).toBeLessThan(0.0523);
  expect(search.upper).toBeGreaterThanOrEqual(0.0523);
  expect(search.upper / search.lower - 1).toBeLessThanOrEqual(1e-4);
  const fullAt = (eps: number) => calls.some((c) => c.eps === eps && c.precision === 'full');
  expect(fullAt(search.lower) && fullAt(search.upper)).toBe(true);
  expect(calls.filter((c) => c.precision === 'screen').length).toBeGreaterThan(calls.filter((c) => c.precision === 'full').length);
});

test.each([
  ['before', 0.05225],
  ['after', 0.05235],
])('screening that places the jump %s the true one still ends on the full-precision root', async (_, screenedJump) => {
  const full = jumpy(0.0523);
  const { calls, localBound } = recorder(full, jumpy(screenedJump));
  const search = await certifiedRadius(margin, 1e-4, localBound, 1e-4, { screening: true });
  expect(search.lower).toBeLessThan(0.0523);
  expect(search.upper).toBeGreaterThanOrEqual(0.0523);
  expect(search.upper / search.lower - 1).toBeLessThanOrEqual(1e-4);
  // Both ends are full-precision evaluations on their side of the threshold.
  const lower = calls.find((c) => c.eps === search.lower && c.precision === 'full')!;
  const upper = calls.find((c) => c.eps === search.upper && c.precision === 'full')!;
  expect(lower.eps * lower.L).toBeLessThan(1);
  expect(upper.eps * upper.L).toBeGreaterThanOrEqual(1);
});

test('a zero margin certifies nothing', async () => {
  const { calls, localBound } = recorder(() => 1, () => 1);
  expect(await certifiedRadius(0, 0.1, localBound, 1e-4)).toEqual({ lower: 0, upper: 0, evaluations: 0 });
  expect(calls).toHaveLength(0);
});

test('a failing point that reports `within` (what its bound certifies on smaller balls) raises the lower end without an evaluation there', async () => {
  // L nearly flat near the root (a radius bound by its Lipschitz form): a failing point's within lies close below the root.
  const L = (eps: number) => 3 + 0.3 * eps; // ε(3 + 0.3ε) = 1 at ε = (−3 + √10.2)/0.6
  const root = (-3 + Math.sqrt(10.2)) / 0.6;
  // A bound of the ε-ball is a bound of every smaller ball: with L(ε) fixed, ε'·L(ε) < 1 up to 1/L(ε).
  const withins: number[] = [];
  const withWithin = async (eps: number) => {
    const within = eps * L(eps) < 1 ? eps : (1 / L(eps)) * (1 - 1e-9);
    if (within < eps) withins.push(within);
    return { L: L(eps), within };
  };
  const { calls, localBound } = recorder(L, L);
  const plain = await certifiedRadius(margin, 0.01, localBound, 1e-2);
  const search = await certifiedRadius(margin, 0.01, withWithin, 1e-2);
  expect(search.lower).toBeLessThanOrEqual(root);
  expect(search.upper).toBeGreaterThanOrEqual(root);
  expect(search.upper / search.lower - 1).toBeLessThanOrEqual(1e-2);
  // The lower end is a failing point's within, not an evaluated point, and it cost no evaluation
  // (none saved here: with L this flat the plain search stops as early, on its passing end's c/L).
  expect(withins).toContain(search.lower);
  expect(search.lower).toBeLessThan(search.upper);
  expect(search.evaluations).toBeLessThanOrEqual(plain.evaluations);
  expect(calls.length).toBe(plain.evaluations);
});

test('a passing end whose own c/L lies within the tolerance ends the search there: that c/L is the upper end, at or beyond the root', async () => {
  const L = (eps: number) => 3 + 2 * eps;
  const root = (-3 + Math.sqrt(17)) / 4;
  // A known point 0.4% below the root: c/L(known) is within 1% of it, so nothing is evaluated.
  const near = root * 0.996;
  const { calls, localBound } = recorder(L, L);
  const search = await certifiedRadius(margin, 0.01, localBound, 1e-2, { known: [{ eps: near, L: L(near) }] });
  expect(calls).toHaveLength(0);
  expect(search).toEqual({ lower: near, upper: 1 / L(near), evaluations: 0 });
  expect(search.upper).toBeGreaterThanOrEqual(root);
  // Outside the tolerance (2% below) the search goes on, and ends within it all the same.
  const far = recorder(L, L);
  const farSearch = await certifiedRadius(margin, 0.01, far.localBound, 1e-2, { known: [{ eps: root * 0.98, L: L(root * 0.98) }] });
  expect(farSearch.evaluations).toBeGreaterThan(0);
  expect(farSearch.lower).toBeLessThanOrEqual(root);
  expect(farSearch.upper).toBeGreaterThanOrEqual(root);
  expect(farSearch.upper / farSearch.lower - 1).toBeLessThanOrEqual(1e-2);
  // Every upper end is an evaluated failing point or the lower end's c/L.
  const lowerCall = far.calls.find((c) => c.eps === farSearch.lower);
  const lowerL = lowerCall ? lowerCall.L : L(root * 0.98);
  expect(far.calls.some((c) => c.eps === farSearch.upper && c.eps * c.L >= 1) || farSearch.upper === 1 / lowerL).toBe(true);
});

test('a failing known point far beyond the jump c/L (VGG-16: the user eps 1e4 above the radius) gives way to the jump', async () => {
  const L = (eps: number) => 3 + 0.01 * eps; // nearly linear criterion: c/L is close to the root
  const root = (-3 + Math.sqrt(9 + 0.04)) / 0.02;
  const { calls, localBound } = recorder(L, L);
  const known = 1000; // ratio about 1.3e4
  const search = await certifiedRadius(margin, 1e-6, localBound, 1e-2, { known: [{ eps: known, L: L(known) }] });
  const first = 1 / L(known); // the known point's ε/ratio, the first lower end
  expect(calls[0].eps).toBe(first);
  expect(calls[1].eps).toBe(1 / L(first)); // the jump from it, not regula falsi toward 1000
  expect(search.lower).toBeLessThanOrEqual(root);
  expect(search.upper).toBeGreaterThanOrEqual(root);
  expect(search.upper / search.lower - 1).toBeLessThanOrEqual(1e-2);
  expect(search.evaluations).toBeLessThanOrEqual(3);
  // Within FAR_KNOWN of the jump, the known point ends the bracket in its place (no evaluation beyond it).
  const close = recorder(L, L);
  await certifiedRadius(margin, 1e-6, close.localBound, 1e-2, { known: [{ eps: 1, L: L(1) }] });
  expect(Math.max(...close.calls.map((c) => c.eps))).toBeLessThan(1);
});
