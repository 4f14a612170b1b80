/**
 * Branch and bound on unstable ReLUs for the certified radius (docs/tightness.md §7): where the
 * full sweep's margin bounds fail at ε, split the ball on a unit that may switch — y_i ≥ 0 in one
 * branch, y_i ≤ 0 in the other — and bound each branch separately; ε is certified when every leaf is
 * (or is empty). A branch is the root sweep with, from the first split layer on, its intervals
 * re-derived on the branch: the split units' intervals cut at 0, then the §5 relaxation bounds of
 * every unit of a later affine+ReLU layer that may still switch (with the branch's relaxations before
 * it) and the relaxations of the max pools they feed. Every bound of the root sweep holds on the
 * ball, hence on each branch, so a branch keeps them (intervals are intersected, the root's boxes,
 * gains and norms close the backward passes); only new relaxations are computed. The branch's margin
 * bound is the smaller of the root's (§3) and the §5 relaxation with the branch's relaxations. A
 * branch whose intervals are empty holds no point of the ball.
 */
import { inputsOf, isAffine, size } from '../../model/ir.js';
import { checkBudget } from '../budget.js';
import type { NominalPass } from '../layer-bounds.js';
import { maxPoolWindows, relaxedUnitBlocks } from './forward.js';
import { marginFalls, marginRatios, type TightBound } from './index.js';
import { relaxedChangeBounds, reluRelaxation } from './relaxation.js';
import type { LayerState, Sweep } from './sweep.js';

/** One split: unit `unit` of affine+ReLU layer `layer` restricted to y ≥ 0 (active) or y ≤ 0. */
export interface Split {
  layer: number;
  unit: number;
  active: boolean;
}

/**
 * Intervals that cross by less than this (relative) are float32 rounding of a degenerate interval,
 * not an empty branch: they are merged instead, so emptiness is only concluded with room to spare.
 */
const EMPTY_SLACK = 1e-4;

/** Whether layer k's state is an affine map with a ReLU, the units branching splits. */
function splittable(sweep: Sweep, k: number): boolean {
  const layer = sweep.network.layers[k];
  return isAffine(layer) && !!layer.relu && !!sweep.states[k].reluInterval;
}

/**
 * The sweep of a branch: the root's, with the intervals of affine+ReLU layers re-derived from the
 * first split on (split units cut at 0, the others that may switch bounded by §5 on the branch) and
 * the max pools after them relaxed again. Null when some interval is empty (no point of the ball
 * satisfies the splits).
 */
export async function branchSweep(root: Sweep, nominal: NominalPass, splits: readonly Split[]): Promise<Sweep | null> {
  const { network, backend } = root;
  const states: LayerState[] = root.states.slice();
  const branch: Sweep = { ...root, states };
  const first = Math.min(...splits.map((s) => s.layer));
  for (let k = first; k < network.layers.length; k++) {
    const layer = network.layers[k];
    const state = root.states[k];
    if (splittable(root, k) && isAffine(layer)) {
      const { y0, lower: rootLower, upper: rootUpper } = state.reluInterval!;
      const lower = Float32Array.from(rootLower);
      const upper = Float32Array.from(rootUpper);
      if (k > first) {
        // §5 on the branch for the units that may still switch (root intervals: a superset).
        const units = Array.from(lower.keys()).filter((i) => lower[i] < 0 && upper[i] > 0);
        for await (const { chunk, relaxed } of relaxedUnitBlocks(branch, k, units, lower.length, layer, state.mask)) {
          chunk.forEach((i, b) => {
            upper[i] = Math.min(upper[i], y0[i] + relaxed[b]);
            lower[i] = Math.max(lower[i], y0[i] - relaxed[chunk.length + b]);
          });
        }
      }
      for (const s of splits) {
        if (s.layer !== k) continue;
        if (s.active) lower[s.unit] = Math.max(lower[s.unit], 0);
        else upper[s.unit] = Math.min(upper[s.unit], 0);
      }
      for (let i = 0; i < lower.length; i++) {
        if (!(lower[i] > upper[i])) continue;
        if (lower[i] - upper[i] > EMPTY_SLACK * (1 + Math.abs(lower[i]) + Math.abs(upper[i]))) return null;
        lower[i] = upper[i] = (lower[i] + upper[i]) / 2;
      }
      states[k] = { ...state, reluInterval: { y0, lower, upper }, relaxations: undefined, preActivationLower: lower, preActivationUpper: upper };
    } else if (layer.kind === 'maxpool' && k > first) {
      // Its windows over the branch's input interval: the ReLU of the feeding layer's.
      const from = inputsOf(network, k)[0];
      const feeding = from >= 0 && splittable(root, from) ? states[from].reluInterval! : null;
      if (feeding) {
        const lo = Float32Array.from(feeding.lower, (v) => Math.max(0, v));
        const hi = Float32Array.from(feeding.upper, (v) => Math.max(0, v));
        const { winner, poolRelaxation } = maxPoolWindows(layer, lo, hi, nominal.inputs[k]);
        states[k] = { ...state, winner, poolRelaxation };
      }
    }
  }
  return branch;
}

/**
 * The margin bounds on a branch: the root's (§3; they hold on the whole ball) with how far each
 * y_c − y_j can fall over the branch by §5 with the branch's relaxations, the smaller of it and the root's.
 */
export async function branchMarginBound(branch: Sweep, root: TightBound): Promise<TightBound> {
  const falls = await marginFalls(branch, root.marginClass);
  const rootFalls = root.marginDecrease;
  // The root's split for smaller balls does not describe the branch: dropped.
  return { ...root, marginDecrease: rootFalls ? falls.map((f, j) => Math.min(f, rootFalls[j])) : falls, marginFallScaling: undefined };
}

/** A branch's criterion ratio (< 1: certified on the branch) and the class closest to failing. */
async function branchMargins(branch: Sweep, root: TightBound, gaps: ArrayLike<number>) {
  const ratios = marginRatios(await branchMarginBound(branch, root), gaps, branch.eps);
  const worst = ratios.reduce((w, r, j) => (r > ratios[w] ? j : w), 0);
  return { ratio: Math.max(...ratios), worst };
}

/**
 * The unit to split next: BaBSR's score (Bunel et al., JMLR 2020) on the worst margin's backward
 * relaxation — for each unit that may switch, |λ_i| times the offset of the relaxation its sign
 * selects (what the bound would lose were the unit exact) — the largest over units not split yet;
 * the widest interval where every score is 0. Only where the search spends its time: any choice
 * is sound.
 */
async function chooseSplit(branch: Sweep, cls: number, worst: number, splits: readonly Split[]): Promise<Split | null> {
  const { network } = branch;
  const outputs = size(network.outputShape);
  const row = new Float32Array(outputs);
  row[cls] = -1;
  row[worst] = 1;
  const taken = new Set(splits.map((s) => `${s.layer}:${s.unit}`));
  let best: { layer: number; unit: number; score: number; width: number } | null = null;
  await relaxedChangeBounds(branch, network.layers.length, row, 1, null, 'adaptive', (k, lambda) => {
    if (!splittable(branch, k)) return;
    const { y0, lower, upper } = branch.states[k].reluInterval!;
    const relaxation = reluRelaxation(y0, lower, upper, 'adaptive');
    for (let i = 0; i < lambda.length; i++) {
      if (!(lower[i] < 0 && upper[i] > 0) || taken.has(`${k}:${i}`)) continue;
      const v = lambda[i];
      const score = v > 0 ? v * relaxation.upperOffset[i] : -v * relaxation.lowerOffset[i];
      const width = upper[i] - lower[i];
      if (!best || score > best.score || (score === best.score && width > best.width)) best = { layer: k, unit: i, score, width };
    }
  });
  const chosen = best as { layer: number; unit: number } | null;
  return chosen ? { layer: chosen.layer, unit: chosen.unit, active: true } : null;
}

/** What branch and bound spent: branches bounded (the root not counted), and those found empty. */
export interface BranchCount {
  branches: number;
  empty: number;
}

/**
 * Branch and bound at the root sweep's ε: depth first, each failing branch split in two on
 * chooseSplit's unit, until every leaf is certified or empty (true), or a branch has nothing left to
 * split (false). checkBudget(deadline) and `onBranch` before every branch (BudgetExhausted, or what
 * onBranch throws: a cancellation); `count` is kept up to date as it goes. The root's own criterion is assumed to fail (else no branching is needed).
 */
export async function branchAndBound(
  root: Sweep,
  rootBound: TightBound,
  nominal: NominalPass,
  gaps: ArrayLike<number>,
  deadline: number,
  count: BranchCount,
  /** Called before every branch with its first split layer (progress, and cancellation by throwing). */
  onBranch?: (layer: number) => void,
): Promise<boolean> {
  const cls = rootBound.marginClass;
  const first = await chooseSplit(root, cls, (await branchMargins(root, rootBound, gaps)).worst, []);
  if (!first) return false;
  const pending: Split[][] = [[{ ...first, active: false }], [first]];
  while (pending.length > 0) {
    checkBudget(deadline);
    const splits = pending.pop()!;
    onBranch?.(Math.min(...splits.map((split) => split.layer)));
    count.branches++;
    const branch = await branchSweep(root, nominal, splits);
    if (!branch) {
      count.empty++;
      continue;
    }
    const { ratio, worst } = await branchMargins(branch, rootBound, gaps);
    if (ratio < 1) continue;
    const next = await chooseSplit(branch, cls, worst, splits);
    if (!next) return false;
    pending.push([...splits, { ...next, active: false }], [...splits, next]);
  }
  return true;
}
