/**
 * The decomposition of the network around its linearisation at x0 (docs/tightness.md §2) and the
 * margin bounds of the radius (§3): the rows of N_{≥t}D_t for every output come from one block
 * backward pass (one row per output), and each correction term's sensitivity ||N_{>k}P_k|| from the
 * same rows restricted to the units that may switch. Norms of these few rows are bounded from above
 * by Gram iteration on their Gram matrix (deterministic).
 */
import { size } from '../../model/ir.js';
import { gramIterationBound, rowGram } from '../certificates.js';
import { backwardBlock } from './backward.js';
import { backwardOverGraph, type CutEntry } from './graph-backward.js';
import { boxNorm, spreadAt, type Sweep } from './sweep.js';

/** The decomposition (refinement 2) is computed when the network has at most this many outputs. */
export const MAX_DECOMPOSITION_OUTPUTS = 64;

export interface CorrectionTerm {
  /** Layer k whose possibly switching units give the error term E_k. */
  index: number;
  /** Units (or pooling windows) that may switch over the ball. */
  unstable: number;
  /**
   * m_k: ||E_k (x_k − x0_k)|| ≤ m_k·||x_from − x0_from||. ReLU layers: ||M_k A_k D_k|| (half-widths of the
   * slopes); max pools: sqrt(2·n_max)·||P_C Λ A D|| of the affine+ReLU layer feeding them (or sqrt(2·n_max)).
   */
  spread: number;
  /** ||N_{>k} P_k||: the linearisation after layer k, restricted to the unstable units. */
  sensitivity: number;
  /** Product of the layer bounds before the layer m_k refers to. */
  before: number;
}

export interface Decomposition {
  /** min over split layers t of ||N_{≥t} D_t||·T_t + Σ_{k≥t} sensitivity·spread·before (§2). */
  bound: number;
  corrections: CorrectionTerm[];
  /** Per class j: an upper bound of |Δ(y_c − y_j)|/||Δ|| over the ball (0 at j = c). */
  marginBounds: number[];
  /** Per class j: an upper bound of |Δ(y_c − y_j)| over the ball itself (§3). */
  marginChange: number[];
}

/** Largest singular value of a block of `count` rows, from above (Gram iteration, 40 squarings). */
function topSingular(rows: Float32Array, count: number, width: number): number {
  return Math.sqrt(gramIterationBound(rowGram(rows, count, width), count, 40));
}

/** ||row c − row j|| of a block. */
function differenceNorm(rows: Float32Array, width: number, c: number, j: number): number {
  let s = 0;
  for (let i = 0; i < width; i++) s += (rows[c * width + i] - rows[j * width + i]) ** 2;
  return Math.sqrt(s);
}

/** What a cut contributes to the bounds of §2 and §3 for the split there, per class j. */
interface CutSummary {
  whole: number;
  ratio: number[];
  change: number[];
}

/**
 * The split at a cut: the layers after it linearised, the nodes on it by their gains and boxes —
 * Σ_j ‖G_j‖·gain_j for the whole output, and per class Σ_j ‖g_c − g_j‖·gain_j (ratio) and
 * Σ_j min(ε·‖g_c − g_j‖·gain_j, Σ_i |g_c,i − g_j,i|·dev_i) (change). On a chain, one node.
 */
function summariseCut(cut: CutEntry[], outputs: number, cls: number, eps: number): CutSummary {
  const summary: CutSummary = { whole: 0, ratio: new Array<number>(outputs).fill(0), change: new Array<number>(outputs).fill(0) };
  for (const { rows, gain, deviation } of cut) {
    const width = rows.length / outputs;
    summary.whole += topSingular(rows, outputs, width) * gain;
    for (let j = 0; j < outputs; j++) {
      if (j === cls) continue;
      const ratio = differenceNorm(rows, width, cls, j) * gain;
      // The node's deviation also lies in its box: |rᵀw| ≤ Σ_i |r_i|·dev_i.
      let boxed = 0;
      for (let i = 0; i < width; i++) boxed += Math.abs(rows[cls * width + i] - rows[j * width + i]) * deviation[i];
      summary.ratio[j] += ratio;
      summary.change[j] += Math.min(ratio * eps, boxed);
    }
  }
  return summary;
}

/** The decomposition bound and the per-class margin bounds of class `cls` (§2, §3; on a DAG, docs/graphs.md §7). */
export async function decompose(sweep: Sweep, cls: number): Promise<Decomposition> {
  const { network, backend, states, spreads, gainIn, eps } = sweep;
  const L = network.layers.length;
  const outputs = size(network.outputShape);
  // One backward pass from the identity at the output: at every cut its rows (summarised), and at
  // every layer k with an error term the rows of N_{>k} P_k.
  const cuts = new Map<number, CutSummary>();
  const restricted = new Map<number, Float32Array>(); // layer k → rows of N_{>k} P_k
  const identity = new Float32Array(outputs * outputs);
  for (let o = 0; o < outputs; o++) identity[o * outputs + o] = 1;
  await backwardOverGraph(sweep, L, identity, outputs, {
    through: (k, rows) => backwardBlock(backend, network.layers[k], states[k], rows, outputs, sweep.scratch),
    atOutput: (k, rows) => {
      const state = states[k];
      if (!(state.unstable && state.unstable.length > 0 && spreads.has(k))) return;
      const width = size(network.layers[k].outputShape);
      const unstable = state.unstable;
      const block = new Float32Array(outputs * unstable.length);
      for (let o = 0; o < outputs; o++) for (let u = 0; u < unstable.length; u++) block[o * unstable.length + u] = rows[o * width + unstable[u]];
      restricted.set(k, block);
    },
    close: (t, cut) => cuts.set(t, summariseCut(cut, outputs, cls, eps)),
  });

  // Correction terms, per layer k: for the whole output, and per class j (ratio and absolute forms).
  const corrections: CorrectionTerm[] = [];
  const termRatio = new Map<number, number[]>();
  const termChange = new Map<number, number[]>();
  for (const [index, rows] of restricted) {
    const s = (await spreadAt(sweep, index))!;
    const width = states[index].unstable!.length;
    const term: CorrectionTerm = { index, unstable: s.unstable, spread: s.spread, sensitivity: topSingular(rows, outputs, width), before: gainIn[s.from] };
    corrections.push(term);
    const errors = states[index].errors!;
    const fromBox = boxNorm(sweep, s.from);
    const ratios = new Array<number>(outputs).fill(0);
    const changes = new Array<number>(outputs).fill(0);
    for (let j = 0; j < outputs; j++) {
      if (j === cls) continue;
      const sensitivity = differenceNorm(rows, width, cls, j) * term.spread;
      ratios[j] = sensitivity * term.before;
      // |rᵀe| ≤ Σ_i |r_i|·e_max,i for errors e_i ∈ [−e_max,i, e_max,i]; and the input difference
      // of layer from(k) is at most the norm of its box's half-widths as well as gain·ε (§3).
      let absolute = 0;
      for (let i = 0; i < width; i++) absolute += Math.abs(rows[cls * width + i] - rows[j * width + i]) * errors[i];
      changes[j] = Math.min(eps * ratios[j], sensitivity * fromBox, absolute);
    }
    termRatio.set(index, ratios);
    termChange.set(index, changes);
  }
  // Split at the cut after layer t: what the cut contributes, plus the error terms of layers ≥ t (§2).
  let bound = Infinity;
  const marginBounds = new Array<number>(outputs).fill(Infinity);
  const marginChange = new Array<number>(outputs).fill(Infinity);
  marginBounds[cls] = marginChange[cls] = 0;
  for (const [t, summary] of cuts) {
    let whole = summary.whole;
    const ratio = summary.ratio;
    const change = summary.change;
    for (const term of corrections) {
      if (term.index < t) continue;
      whole += term.sensitivity * term.spread * term.before;
      const r = termRatio.get(term.index)!;
      const c = termChange.get(term.index)!;
      for (let j = 0; j < outputs; j++) {
        ratio[j] += r[j];
        change[j] += c[j];
      }
    }
    bound = Math.min(bound, whole);
    for (let j = 0; j < outputs; j++) {
      if (j === cls) continue;
      marginBounds[j] = Math.min(marginBounds[j], ratio[j]);
      marginChange[j] = Math.min(marginChange[j], change[j]);
    }
  }
  return { bound, corrections: corrections.sort((a, b) => a.index - b.index), marginBounds, marginChange };
}
