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
import { euclidean, productsBefore, type Sweep } from './sweep.js';

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

/** The decomposition bound and the per-class margin bounds of class `cls` (§2, §3). */
export async function decompose(sweep: Sweep, cls: number): Promise<Decomposition> {
  const { network, backend, states, spreads, deviation, layers, eps } = sweep;
  const L = network.layers.length;
  const outputs = size(network.outputShape);
  const before = productsBefore(layers);
  // rowsAt[t]: the rows of N_{≥t} D_t, one per output, at the input of layer t; rowsAt[L] = I.
  const rowsAt: Float32Array[] = new Array(L + 1);
  const restricted = new Map<number, Float32Array>(); // layer k → rows of N_{>k} P_k
  let g: Float32Array = new Float32Array(outputs * outputs);
  for (let o = 0; o < outputs; o++) g[o * outputs + o] = 1;
  rowsAt[L] = g;
  for (let index = L - 1; index >= 0; index--) {
    const state = states[index];
    if (state.unstable && state.unstable.length > 0 && spreads.has(index)) {
      const width = size(network.layers[index].outputShape);
      const unstable = state.unstable;
      const block = new Float32Array(outputs * unstable.length);
      for (let o = 0; o < outputs; o++) for (let u = 0; u < unstable.length; u++) block[o * unstable.length + u] = g[o * width + unstable[u]];
      restricted.set(index, block);
    }
    g = await backwardBlock(backend, network.layers[index], state, g, outputs);
    rowsAt[index] = g;
  }
  const widthAt = (t: number) => (t === L ? outputs : size(network.layers[t].inputShape));

  // Correction terms, per layer k: for the whole output, and per class j (ratio and absolute forms).
  const boxNorm = deviation.map(euclidean);
  const corrections: CorrectionTerm[] = [];
  const termRatio = new Map<number, number[]>();
  const termChange = new Map<number, number[]>();
  for (const [index, rows] of restricted) {
    const s = spreads.get(index)!;
    const width = states[index].unstable!.length;
    const term: CorrectionTerm = { index, unstable: s.unstable, spread: s.spread, sensitivity: topSingular(rows, outputs, width), before: before[s.from] };
    corrections.push(term);
    const errors = states[index].errors!;
    const ratios = new Array<number>(outputs).fill(0);
    const changes = new Array<number>(outputs).fill(0);
    for (let j = 0; j < outputs; j++) {
      if (j === cls) continue;
      const sensitivity = differenceNorm(rows, width, cls, j) * term.spread;
      ratios[j] = sensitivity * term.before;
      // |rᵀe| ≤ Σ_i |r_i|·e_max,i for errors e_i ∈ [−e_max,i, e_max,i]; and the input difference
      // of layer from(k) is at most the norm of its box's half-widths as well as T·ε (§3).
      let absolute = 0;
      for (let i = 0; i < width; i++) absolute += Math.abs(rows[cls * width + i] - rows[j * width + i]) * errors[i];
      changes[j] = Math.min(eps * ratios[j], sensitivity * boxNorm[s.from], absolute);
    }
    termRatio.set(index, ratios);
    termChange.set(index, changes);
  }
  // Split at layer t: layers < t by the product of their bounds, layers ≥ t linearised (§2).
  let bound = Infinity;
  const marginBounds = new Array<number>(outputs).fill(Infinity);
  const marginChange = new Array<number>(outputs).fill(Infinity);
  marginBounds[cls] = marginChange[cls] = 0;
  for (let t = 0; t <= L; t++) {
    const rows = rowsAt[t];
    const width = widthAt(t);
    let whole = topSingular(rows, outputs, width) * before[t];
    const ratio = Array.from({ length: outputs }, (_, j) => (j === cls ? 0 : differenceNorm(rows, width, cls, j) * before[t]));
    // The input of layer t also lies in its box: |rᵀw| ≤ Σ_i |r_i|·dev_i.
    const change = ratio.map((v, j) => {
      if (j === cls) return 0;
      let boxed = 0;
      for (let i = 0; i < width; i++) boxed += Math.abs(rows[cls * width + i] - rows[j * width + i]) * deviation[t][i];
      return Math.min(v * eps, boxed);
    });
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
      marginBounds[j] = Math.min(marginBounds[j], ratio[j]);
      marginChange[j] = Math.min(marginChange[j], change[j]);
    }
  }
  return { bound, corrections: corrections.sort((a, b) => a.index - b.index), marginBounds, marginChange };
}
