/**
 * Backward linear relaxation bounds (docs/tightness.md §5), in the style of CROWN (Zhang et al.,
 * NeurIPS 2018), written in change coordinates Δ_k = x_k − x0_k: every unit's change over the ball
 * is bounded above and below by linear functions of its pre-activation change,
 *   ReLU with y ∈ [y̌, ŷ] ∋ y0, y̌ < 0 < ŷ:  Δout ≤ s_U·Δy + o_U (the chord, s_U = ŷ/(ŷ − y̌),
 *   o_U = s_U·(y0 − y̌) − relu(y0) ≥ 0) and Δout ≥ α·Δy + o_L (o_L = α·y0 − relu(y0) ≤ 0, α ∈ [0, 1]);
 *   stable units exactly (slope 1 or 0); a max pool with nominal winner i*: exactly Δ_{i*} where no
 *   other input can overtake the winner, else Δout ≤ max_j û_j − u0_{i*} (a constant) and
 *   Δout ≥ Δ_k + u0_k − u0_{i*} for the input k with the largest lower bound (CROWN's choices).
 * An upper bound of gᵀΔ_l is then propagated backward, each unit taking the relaxation on the side
 * its coefficient's sign asks for, the bias of each relaxation collected as a constant; at every
 * layer t it is closed with the smaller of ε·T_t·‖λ_t‖ (Proposition 2) and Σ|λ_t,i|·dev_t,i (the
 * box), and the best closure over t is kept — at t = 0 the closure ε‖λ_0‖ is CROWN's own bound.
 */
import { isAffine, size } from '../../model/ir.js';
import type { Backend } from '../../backend/backend.js';
import { backwardOverGraph, closeCut, masked } from './graph-backward.js';
import { scratchRows, type LayerState, type Sweep } from './sweep.js';

/** The two linear relaxations of each unit of a layer's output, in change coordinates. */
export interface Relaxation {
  upperSlope: Float32Array;
  upperOffset: Float32Array;
  lowerSlope: Float32Array;
  lowerOffset: Float32Array;
}

/**
 * The lower slope α of an unstable ReLU's lower relaxation relu(y) ≥ α·y (any α in [0, 1] is valid):
 * 'adaptive' is CROWN's choice (1 where ŷ > −y̌, else 0), 'chord' the upper relaxation's slope
 * (parallel bounds, as DeepPoly's area-minimising choice approaches), 'nominal' the slope at y0.
 */
export type LowerSlope = 'adaptive' | 'chord' | 'nominal';
export const LOWER_SLOPES: readonly LowerSlope[] = ['adaptive', 'chord', 'nominal'];

/**
 * The ReLU relaxation of each unit from its nominal pre-activation y0 and interval [y̌, ŷ] (valid
 * whether or not y0 lies in it: every bound below is an identity or inequality in y ∈ [y̌, ŷ]).
 */
export function reluRelaxation(y0: ArrayLike<number>, yCheck: ArrayLike<number>, yHat: ArrayLike<number>, lowerSlope: LowerSlope = 'adaptive'): Relaxation {
  const n = y0.length;
  const r: Relaxation = { upperSlope: new Float32Array(n), upperOffset: new Float32Array(n), lowerSlope: new Float32Array(n), lowerOffset: new Float32Array(n) };
  for (let i = 0; i < n; i++) {
    const lo = yCheck[i];
    const hi = yHat[i];
    // Stable units are exact. Their offsets are 0 when y0 lies in [y̌, ŷ], as it does on the ball; a
    // branch of it (branching.ts) may exclude x0, and then y0 too.
    if (hi <= 0) {
      r.upperOffset[i] = r.lowerOffset[i] = -Math.max(0, y0[i]); // inactive over the set: Δout = −relu(y0)
      continue;
    }
    if (lo >= 0) {
      r.upperSlope[i] = r.lowerSlope[i] = 1; // linear over the set: Δout = Δy + y0 − relu(y0)
      r.upperOffset[i] = r.lowerOffset[i] = Math.min(0, y0[i]);
      continue;
    }
    const nominal = Math.max(0, y0[i]);
    const s = hi / (hi - lo);
    r.upperSlope[i] = s;
    r.upperOffset[i] = Math.max(0, s * (y0[i] - lo) - nominal);
    const alpha = lowerSlope === 'adaptive' ? (hi > -lo ? 1 : 0) : lowerSlope === 'chord' ? s : y0[i] > 0 ? 1 : 0;
    r.lowerSlope[i] = alpha;
    r.lowerOffset[i] = Math.min(0, alpha * y0[i] - nominal);
  }
  return r;
}

/**
 * The relaxation of a layer's activation for a lower-slope choice: a ReLU's (computed once per
 * choice), another activation's one relaxation, or none (no activation).
 */
function relaxationOf(state: LayerState, lowerSlope: LowerSlope): Relaxation | undefined {
  const inputs = state.reluInterval;
  if (!inputs) return state.relaxation;
  state.relaxations ??= {};
  return (state.relaxations[lowerSlope] ??= reluRelaxation(inputs.y0, inputs.lower, inputs.upper, lowerSlope));
}

/**
 * The relaxation of a monotone activation other than ReLU (docs/graphs.md §7): with the midpoint
 * slope m and the linearisation error e of each unit over its range, Δout ∈ [m·Δy − e, m·Δy + e].
 */
export function linearisedRelaxation(mid: Float32Array, unstable: Int32Array, errors: Float64Array): Relaxation {
  const n = mid.length;
  const r: Relaxation = { upperSlope: Float32Array.from(mid), upperOffset: new Float32Array(n), lowerSlope: Float32Array.from(mid), lowerOffset: new Float32Array(n) };
  unstable.forEach((i, k) => {
    // Stored in float32 at least as large: rounding to nearest moves by at most 2^−24 relative.
    const e = Math.fround(errors[k] * (1 + 2 ** -22));
    r.upperOffset[i] = e;
    r.lowerOffset[i] = -e;
  });
  return r;
}

/** Where a block's rows sit among all the rows of a pass (rows may leave it on the way): row index and lower-slope choice. */
interface RowMap {
  row(b: number): number;
  choice(b: number): number;
}

const ballSignsCache = new WeakMap<object, boolean>();

/** Whether every relaxation constant adds ≥ 0 to an upper bound: upper offsets ≥ 0, lower ones ≤ 0 (cached per relaxation). */
function offsetsHaveBallSigns(key: object, upper: ArrayLike<number>, lower: ArrayLike<number>): boolean {
  let known = ballSignsCache.get(key);
  if (known === undefined) {
    known = true;
    for (let i = 0; i < upper.length && known; i++) if (upper[i] < 0 || lower[i] > 0) known = false;
    ballSignsCache.set(key, known);
  }
  return known;
}

/**
 * For each t ≤ l: whether every constant a backward pass collects in the layers below t is ≥ 0, for
 * these lower-slope choices (a coefficient v > 0 takes the upper offset, v < 0 the lower one; a max
 * pool's upper constant and lower offset likewise). True on the ball, where a ReLU's stable units
 * carry no offset; in a branch excluding x0 a split unit may carry one of the other sign, and then
 * only the layers below it qualify.
 */
function ballSignsBelow(sweep: Sweep, l: number, choices: readonly LowerSlope[]): boolean[] {
  const below = [true];
  for (let k = 0; k < l; k++) {
    const state = sweep.states[k];
    const pool = state.poolRelaxation;
    // NaN (a settled window, no constant) compares false: it passes.
    const own =
      !(pool && !offsetsHaveBallSigns(pool, pool.upperConstant, pool.lowerOffset)) &&
      choices.every((choice) => {
        const r = relaxationOf(state, choice);
        return !r || offsetsHaveBallSigns(r, r.upperOffset, r.lowerOffset);
      });
    below.push(below[k] && own);
  }
  return below;
}

/**
 * One layer backward for an upper bound: λ (coefficients on the layer's output change, a block of
 * `count` rows) ↦ coefficients on its combined input change (an Add's sum, a Concat's stacked
 * inputs), adding each row's relaxation constants to `offset`. Masks are the caller's.
 */
async function relaxedBackwardBlock(
  backend: Backend,
  sweep: Sweep,
  k: number,
  state: LayerState,
  rows: Float32Array,
  count: number,
  offset: Float64Array,
  choices: readonly LowerSlope[],
  original: RowMap,
): Promise<Float32Array> {
  const layer = sweep.network.layers[k];
  const m = size(layer.outputShape);
  const n = size(layer.inputShape);
  const relaxations = choices.map((choice) => relaxationOf(state, choice));
  const activated = relaxations[0] !== undefined; // a state-level property: the same for every choice
  // An activation (after an affine map or a sum, or alone): the relaxation on the side each coefficient's sign asks for.
  // `scaled` is every entry overwritten: a fresh block, or the sweep's scratch where the block goes
  // straight into the backend's Aᵀ (sweep.ts, RowScratch).
  const throughActivation = (scaled: Float32Array): Float32Array => {
    for (let b = 0; b < count; b++) {
      const { upperSlope, upperOffset, lowerSlope: lowerSlopes, lowerOffset } = relaxations[original.choice(b)]!;
      let constant = 0;
      const base = b * m;
      for (let i = 0; i < m; i++) {
        const v = rows[base + i];
        if (v === 0) {
          scaled[base + i] = 0;
          continue;
        }
        if (v > 0) {
          scaled[base + i] = v * upperSlope[i];
          constant += v * upperOffset[i];
        } else {
          scaled[base + i] = v * lowerSlopes[i];
          constant += v * lowerOffset[i];
        }
      }
      offset[original.row(b)] += constant;
    }
    return scaled;
  };
  if (isAffine(layer)) return backend.applyATBlock(layer, activated ? throughActivation(scratchRows(sweep.scratch, rows.length)) : rows, count);
  if (layer.kind === 'maxpool') {
    const out = new Float32Array(count * n);
    const winner = state.winner!;
    const { upperConstant, lowerInput, lowerOffset } = state.poolRelaxation!;
    for (let b = 0; b < count; b++) {
      let constant = 0;
      for (let o = 0; o < m; o++) {
        const v = rows[b * m + o];
        if (v > 0) {
          if (Number.isNaN(upperConstant[o])) {
            if (winner[o] >= 0) out[b * n + winner[o]] += v;
          } else {
            constant += v * upperConstant[o];
          }
        } else if (v < 0 && lowerInput[o] >= 0) {
          out[b * n + lowerInput[o]] += v;
          constant += v * lowerOffset[o];
        }
      }
      offset[original.row(b)] += constant;
    }
    return out;
  }
  return activated ? throughActivation(new Float32Array(rows.length)) : rows; // lone activation, Add (its sum), Concat, flatten
}

/**
 * What relaxedChangeBounds finds, split for smaller balls: every bound of it holds on each ball of
 * radius ε' ≤ ε around x0 too (the intervals, relaxations and boxes of the ε-ball contain the
 * smaller ball's), and where the closure sits at the network input it shrinks with the ball: its ball
 * term is ‖λ‖·ε and its box term Σ|λ_i|·ε (the input box is x0 ± ε), so on the ε'-ball a row's bound
 * is min(floor, inputOffset + (ε'/ε)·inputClosure) (docs/tightness.md §8).
 */
export interface RelaxedChangeSplit {
  /** The bound per row on the ε-ball: min(floor, inputOffset + inputClosure). */
  best: Float64Array;
  /** Per row, the best bound closed at a cut inside the network (Infinity when none). */
  floor: Float64Array;
  /** Per row, the relaxation constants collected down to the network input (NaN when the pass does not reach it). */
  inputOffset: Float64Array;
  /** Per row, the closure at the network input, min(‖λ‖·ε, Σ|λ_i|·dev_i) (0 when the pass does not reach it). */
  inputClosure: Float64Array;
}

/**
 * For each of `count` rows g at the combined input of layer l (row-major; l = layers.length: at the
 * output), an upper bound of gᵀ(x_l − x0_l) over the ball: backward relaxation through the layers
 * before l, closed at every cut by the smaller of the ball (ε·gain·‖λ‖) and the box (Σ|λ_i|·dev_i)
 * per node, the best closure kept. For a lower bound, pass −g. With several lower-slope choices, every
 * row goes through once per choice in one pass (one operator call per layer for all of them): the
 * result has choices·count entries, the bounds of choice g at g·count … (g+1)·count − 1.
 * `onOutputRows` sees the coefficients λ at each layer's output on the way (branching.ts scores
 * units by them).
 */
export async function relaxedChangeBounds(...args: Parameters<typeof relaxedChangeSplit>): Promise<Float64Array> {
  return (await relaxedChangeSplit(...args)).best;
}

/** relaxedChangeBounds with its bounds split into what holds on smaller balls (RelaxedChangeSplit). */
export async function relaxedChangeSplit(
  sweep: Sweep,
  l: number,
  rows: Float32Array,
  count: number,
  mask: Float32Array | null,
  lowerSlope: LowerSlope | readonly LowerSlope[] = 'adaptive',
  onOutputRows?: (k: number, rows: Float32Array) => void,
): Promise<RelaxedChangeSplit> {
  const { backend, states, eps } = sweep;
  const choices: readonly LowerSlope[] = typeof lowerSlope === 'string' ? [lowerSlope] : lowerSlope;
  const total = count * choices.length;
  let block = masked(rows, mask, count, rows.length / count);
  if (choices.length > 1) {
    const copies = new Float32Array(block.length * choices.length);
    for (let g = 0; g < choices.length; g++) copies.set(block, g * block.length);
    block = copies;
  }
  const best = new Float64Array(total).fill(Infinity);
  const floor = new Float64Array(total).fill(Infinity);
  const inputOffset = new Float64Array(total).fill(NaN);
  const inputClosure = new Float64Array(total);
  const offset = new Float64Array(total);
  // The rows still travelling, by their index among all `total` (row-major, choice groups of `count`).
  let travelling = Int32Array.from({ length: total }, (_, b) => b);
  const original: RowMap = { row: (b) => travelling[b], choice: (b) => Math.floor(travelling[b] / count) };
  // A row whose collected constants already reach its best closure cannot improve: every later
  // constant and closure adds a non-negative amount (where the relaxations of the layers still ahead
  // have their ball signs), so it stops there. Its bounds are the same as if it went on (docs/tightness.md §5);
  // its input split (§8) is then absent, and its floor, the best closure, is what the split gave.
  // Not where a visitor reads the rows on the way (branching's scores).
  const prunable = onOutputRows ? null : ballSignsBelow(sweep, l, choices);
  await backwardOverGraph(sweep, l, block, total, {
    through: (k, rowsAt) => relaxedBackwardBlock(backend, sweep, k, states[k], rowsAt, travelling.length, offset, choices, original),
    atOutput: onOutputRows,
    close: (_t, cut) => {
      const closed = closeCut(cut, travelling.length, eps);
      const atInput = cut.every((entry) => entry.node === -1);
      travelling.forEach((row, b) => {
        best[row] = Math.min(best[row], offset[row] + closed[b]);
        if (atInput) {
          inputOffset[row] = offset[row];
          inputClosure[row] = closed[b];
        } else {
          floor[row] = Math.min(floor[row], offset[row] + closed[b]);
        }
      });
    },
    keep: (t) => {
      if (!prunable?.[t]) return null; // the layers still ahead (below t) must add only non-negative constants
      const kept: number[] = [];
      travelling.forEach((row, b) => {
        if (offset[row] < best[row]) kept.push(b);
      });
      if (kept.length === travelling.length) return null;
      travelling = Int32Array.from(kept, (b) => travelling[b]);
      return Int32Array.from(kept);
    },
  });
  return { best, floor, inputOffset, inputClosure };
}
