/**
 * The backward passes of the tight method over a DAG of layers (docs/graphs.md §7): rows of
 * coefficients travel from a layer's input back toward the network input, one layer at a time in
 * reverse topological order. Rows reaching a layer's combined input go to the nodes it reads — the
 * same rows to each input of an Add (Δ of a sum is the sum of the Δs), a Concat's rows split by
 * input — masked by each node's output mask and summed where branches meet. So when the layers ≥ t
 * have been passed, the pending rows G_j on the nodes j < t still read by them (the cut, or
 * frontier) satisfy gᵀΔ = Σ_j G_jᵀΔ_j (plus what the visitor collected on the way), and a bound
 * closes there with Σ_j min(‖G_j‖·ε·gain_j, Σ_i |G_j,i|·dev_j,i): each node's deviation lies in its
 * own ball and box. On a chain the cut is the one layer before t, as in the chain argument.
 */
import { inputsOf, size } from '../../model/ir.js';
import { ballOrBox, nodeOf, type Sweep } from './sweep.js';

/** One node's pending rows at a cut, with the ball and box its deviation lies in. */
export interface CutEntry {
  /** The node the rows sit on (−1: the network input); absent for a combined input of several nodes. */
  node?: number;
  rows: Float32Array;
  /** ε·gain bounds the node's deviation. */
  gain: number;
  deviation: Float32Array;
}

export interface BackwardVisitor {
  /** Rows at layer k's output → rows at its combined input (an Add's sum, a Concat's stacked inputs), unmasked. */
  through(k: number, rows: Float32Array): Promise<Float32Array>;
  /** The rows at layer k's output, complete (every reader of k passed), before `through`. */
  atOutput?(k: number, rows: Float32Array): void | Promise<void>;
  /** The cut after the layers ≥ t are passed (t = l first: the combined input of layer l itself). */
  close(t: number, cut: CutEntry[]): void;
  /**
   * After each close: the positions (in the current block) of the rows worth carrying further, or
   * null for all. The others are dropped from every pending block (the rows keep their order), and
   * from then on `count` and the positions the visitor sees are the kept rows'.
   */
  keep?(t: number): Int32Array | null;
}

/** The rows of a block (`count` rows) at the given positions, in order. */
function keptRows(block: Float32Array, kept: Int32Array, count: number): Float32Array {
  const width = block.length / count;
  const out = new Float32Array(kept.length * width);
  kept.forEach((row, i) => out.set(block.subarray(row * width, (row + 1) * width), i * width));
  return out;
}

const zerosCache = new WeakMap<Float32Array, Int32Array>();

/** The indices where a mask is 0 (computed once per mask). */
function zerosOf(mask: Float32Array): Int32Array {
  let zeros = zerosCache.get(mask);
  if (!zeros) {
    const list: number[] = [];
    for (let i = 0; i < mask.length; i++) if (mask[i] === 0) list.push(i);
    zeros = Int32Array.from(list);
    zerosCache.set(mask, zeros);
  }
  return zeros;
}

/** Block rows zeroed where the mask is 0 (rows of `width` entries); in place only when the block is `owned`. */
export function masked(rows: Float32Array, mask: Float32Array | null, count: number, width: number, owned = false): Float32Array {
  if (!mask) return rows;
  const zeros = zerosOf(mask);
  if (zeros.length === 0) return rows;
  const out = owned ? rows : Float32Array.from(rows);
  const z = zeros.length;
  for (let b = 0; b < count; b++) {
    const base = b * width;
    for (let k = 0; k < z; k++) out[base + zeros[k]] = 0;
  }
  return out;
}

/** Σ over the cut of min(‖G_j‖·ε·gain_j, Σ_i |G_j,i|·dev_j,i), per row. */
export function closeCut(cut: CutEntry[], count: number, eps: number): Float64Array {
  if (cut.length === 1) return ballOrBox(cut[0].rows, count, cut[0].gain * eps, cut[0].deviation);
  const total = new Float64Array(count);
  for (const entry of cut) {
    const closed = ballOrBox(entry.rows, count, entry.gain * eps, entry.deviation);
    for (let b = 0; b < count; b++) total[b] += closed[b];
  }
  return total;
}

/**
 * Runs a backward pass from `rows` (a block of `count`) at layer l's combined input — or, for
 * l = layers.length, at the network output — to the network input, calling the visitor at every
 * layer and every cut.
 */
export async function backwardOverGraph(sweep: Sweep, l: number, rows: Float32Array, count: number, visitor: BackwardVisitor): Promise<void> {
  const { network } = sweep;
  const L = network.layers.length;
  const pending = new Map<number, Float32Array>();
  const widthOf = (j: number) => size(j < 0 ? network.inputShape : network.layers[j].outputShape);
  // `owned`: the block is a fresh array no one else holds (masked in place).
  const distribute = (k: number, block: Float32Array, owned: boolean) => {
    const from = inputsOf(network, k);
    let offset = 0;
    for (const j of from) {
      const width = widthOf(j);
      let part = block;
      let mine = owned && from.length === 1;
      if (network.layers[k].kind === 'concat') {
        mine = true;
        part = new Float32Array(count * width);
        const total = block.length / count;
        for (let b = 0; b < count; b++) part.set(block.subarray(b * total + offset, b * total + offset + width), b * width);
        offset += width;
      }
      part = masked(part, nodeOf(sweep, j).mask, count, width, mine);
      const existing = pending.get(j);
      if (existing) {
        const sum = Float32Array.from(existing);
        for (let i = 0; i < sum.length; i++) sum[i] += part[i];
        pending.set(j, sum);
      } else {
        pending.set(j, part);
      }
    }
  };
  const cut = (): CutEntry[] =>
    [...pending.entries()].map(([node, block]) => ({ node, rows: block, gain: nodeOf(sweep, node).gain, deviation: nodeOf(sweep, node).deviation }));

  // Rows the visitor lets go (keep) leave every pending block; the remaining ones move up.
  const drop = (t: number): boolean => {
    const kept = visitor.keep?.(t);
    if (!kept || kept.length === count) return false;
    for (const [node, block] of pending) pending.set(node, keptRows(block, kept, count));
    count = kept.length;
    return count === 0;
  };

  const readers = l === L ? [L - 1] : inputsOf(network, l);
  visitor.close(l, [{ node: readers.length === 1 ? readers[0] : undefined, rows, gain: sweep.gainIn[l], deviation: sweep.deviation[l] }]);
  if (l === L) pending.set(L - 1, rows);
  else distribute(l, rows, false);
  if (drop(l)) return;
  for (let k = l - 1; k >= 0; k--) {
    const block = pending.get(k);
    if (!block) continue; // not upstream of layer l
    pending.delete(k);
    await visitor.atOutput?.(k, block);
    const input = await visitor.through(k, block);
    distribute(k, input, input !== block);
    visitor.close(k, cut());
    if (drop(k)) return;
  }
}
