/**
 * Backward passes through the network's linearisation at x0 (docs/tightness.md §2), a block of row
 * vectors at a time — one transposed operator call per layer for all of them — and the per-unit
 * linear bounds of §4 built on them: for a vector g at the combined input of layer l, an upper bound
 * of |gᵀ(x_l − x0_l)| over the ball from the decomposition of §2 on the layers before l. On a DAG
 * the passes follow graph-backward.ts (docs/graphs.md §7).
 */
import type { Backend } from '../../backend/backend.js';
import { isAffine, type Layer, size } from '../../model/ir.js';
import { backwardOverGraph, closeCut, masked } from './graph-backward.js';
import { boxNorm, type LayerState, type RowScratch, scratchRows, spreadAt, type Sweep } from './sweep.js';

/**
 * G ↦ G N_l for a block of `count` rows (row-major, each of the layer's output size): one layer of
 * the backward pass through the linearisation (midpoint slopes, the nominal winners of max pools),
 * to the layer's combined input (an Add's sum, a Concat's stacked inputs); masks are the caller's.
 * Rows scaled for an affine layer's Aᵀ go through the sweep's reused block (sweep.ts, RowScratch).
 */
export async function backwardBlock(backend: Backend, layer: Layer, state: LayerState, rows: Float32Array, count: number, scratch: RowScratch): Promise<Float32Array> {
  const m = size(layer.outputShape);
  const n = size(layer.inputShape);
  // Through the activation (after an affine map or a sum, or alone): the midpoint slopes.
  let scaled = rows;
  if (state.mid) {
    scaled = isAffine(layer) ? scratchRows(scratch, rows.length) : new Float32Array(rows.length);
    for (let b = 0; b < count; b++) for (let i = 0; i < m; i++) scaled[b * m + i] = rows[b * m + i] * state.mid[i];
  }
  if (isAffine(layer)) return backend.applyATBlock(layer, scaled, count);
  if (layer.kind === 'maxpool') {
    const out = new Float32Array(count * n);
    const winner = state.winner!;
    for (let b = 0; b < count; b++)
      for (let o = 0; o < m; o++) {
        const i = winner[o];
        if (i >= 0) out[b * n + i] += rows[b * m + o];
      }
    return out;
  }
  return scaled; // lone activation, Add (its sum), Concat, flatten
}

/**
 * For each of `count` rows g at the combined input of layer l (row-major block), an upper bound of
 * |gᵀ(x_l − x0_l)| over the ball (§4): the decomposition of §2 on the layers before l, split at
 * every cut, each term in its smallest valid form — ratio with the gains ε·gain_j, the boxes of the
 * cut's nodes (|gᵀw| ≤ Σ|g_i|·dev_i), or the absolute linearisation errors (§3).
 */
export async function prefixChangeBounds(sweep: Sweep, l: number, rows: Float32Array, count: number, mask: Float32Array | null): Promise<Float64Array> {
  const { network, backend, states, gainIn, eps } = sweep;
  const g = masked(rows, mask, count, rows.length / count);
  const best = new Float64Array(count).fill(Infinity);
  const corrections = new Float64Array(count);
  await backwardOverGraph(sweep, l, g, count, {
    through: (k, block) => backwardBlock(backend, network.layers[k], states[k], block, count, sweep.scratch),
    // The error term E_k enters through layer k only: its rows are those at k's output (§2).
    atOutput: async (k, block) => {
      const state = states[k];
      const s = await spreadAt(sweep, k);
      if (!s || !state.unstable || !state.errors) return;
      const outWidth = size(network.layers[k].outputShape);
      const unstable = state.unstable;
      const errors = state.errors;
      for (let b = 0; b < count; b++) {
        let n2 = 0;
        let absolute = 0;
        const base = b * outWidth;
        for (let idx = 0; idx < unstable.length; idx++) {
          const v = block[base + unstable[idx]];
          n2 += v * v;
          absolute += (v < 0 ? -v : v) * errors[idx];
        }
        const sensitivity = Math.sqrt(n2) * s.spread;
        corrections[b] += Math.min(sensitivity * gainIn[s.from] * eps, sensitivity * boxNorm(sweep, s.from), absolute);
      }
    },
    close: (_t, cut) => {
      const closed = closeCut(cut, count, eps);
      for (let b = 0; b < count; b++) best[b] = Math.min(best[b], closed[b] + corrections[b]);
    },
  });
  return best;
}
