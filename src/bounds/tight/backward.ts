/**
 * Backward passes through the network's linearisation at x0 (docs/tightness.md §2), a block of row
 * vectors at a time — one transposed operator call per layer for all of them — and the per-unit
 * linear bounds of §4 built on them: for a vector g at the input of layer l, an upper bound of
 * |gᵀ(x_l − x0_l)| over the ball from the decomposition of §2 on the layers before l.
 */
import type { Backend } from '../../backend/backend.js';
import { isAffine, type Layer, size } from '../../model/ir.js';
import { ballOrBox, euclidean, type LayerState, productsBefore, type Sweep } from './sweep.js';

/**
 * G ↦ G N_l for a block of `count` rows (row-major, each of the layer's output size): one layer of
 * the backward pass through the linearisation (midpoint slopes, the nominal winners of max pools),
 * then the layer's input mask D_l.
 */
export async function backwardBlock(backend: Backend, layer: Layer, state: LayerState, rows: Float32Array, count: number): Promise<Float32Array> {
  const m = size(layer.outputShape);
  const n = size(layer.inputShape);
  let out: Float32Array;
  if (isAffine(layer)) {
    let scaled = rows;
    if (state.mid) {
      scaled = new Float32Array(rows.length);
      for (let b = 0; b < count; b++) for (let i = 0; i < m; i++) scaled[b * m + i] = rows[b * m + i] * state.mid[i];
    }
    out = await backend.applyATBlock(layer, scaled, count);
  } else if (layer.kind === 'maxpool') {
    out = new Float32Array(count * n);
    const winner = state.winner!;
    for (let b = 0; b < count; b++)
      for (let o = 0; o < m; o++) {
        const i = winner[o];
        if (i >= 0) out[b * n + i] += rows[b * m + o];
      }
  } else if (layer.kind === 'relu') {
    out = new Float32Array(rows.length);
    for (let b = 0; b < count; b++) for (let i = 0; i < m; i++) out[b * m + i] = rows[b * m + i] * state.mid![i];
  } else {
    out = rows; // flatten
  }
  if (state.mask) {
    const masked = maskedIndices(state);
    if (masked.length > 0) {
      if (out === rows) out = Float32Array.from(rows);
      for (let b = 0; b < count; b++) {
        const base = b * n;
        for (let k = 0; k < masked.length; k++) out[base + masked[k]] = 0;
      }
    }
  }
  return out;
}

const maskedCache = new WeakMap<Float32Array, Int32Array>();

/** The indices where the layer's input mask is 0 (computed once per mask). */
function maskedIndices(state: LayerState): Int32Array {
  const mask = state.mask!;
  let masked = maskedCache.get(mask);
  if (!masked) {
    const list: number[] = [];
    for (let i = 0; i < mask.length; i++) if (mask[i] === 0) list.push(i);
    masked = Int32Array.from(list);
    maskedCache.set(mask, masked);
  }
  return masked;
}

/**
 * For each of `count` rows g at the input of layer l (row-major block), an upper bound of
 * |gᵀ(x_l − x0_l)| over the ball (§4): the decomposition of §2 on the layers before l, split at
 * every t ≤ l, each term in its smallest valid form — ratio with the layer product T_t·ε, the box
 * of layer t (|gᵀw| ≤ Σ|g_i|·dev_i), or the absolute linearisation errors (§3).
 */
export async function prefixChangeBounds(sweep: Sweep, l: number, rows: Float32Array, count: number, mask: Float32Array | null): Promise<Float64Array> {
  const { network, backend, states, spreads, deviation, layers, eps } = sweep;
  const before = productsBefore(layers.slice(0, l));
  const boxNorm = deviation.slice(0, l + 1).map(euclidean);
  let g = rows;
  const n = size(network.layers[l].inputShape);
  if (mask) {
    g = Float32Array.from(rows);
    const masked = maskedIndices({ mask });
    for (let b = 0; b < count; b++) for (let k = 0; k < masked.length; k++) g[b * n + masked[k]] = 0;
  }
  // min(||g||·T_t·ε, Σ|g_i|·dev_i) for each row at the input of layer t.
  const main = (block: Float32Array, t: number, out: Float64Array, add: Float64Array | null) => {
    const closed = ballOrBox(block, count, before[t] * eps, deviation[t]);
    for (let b = 0; b < count; b++) out[b] = Math.min(out[b], closed[b] + (add ? add[b] : 0));
  };
  const best = new Float64Array(count).fill(Infinity);
  main(g, l, best, null);
  const corrections = new Float64Array(count);
  for (let k = l - 1; k >= 0; k--) {
    const state = states[k];
    const s = spreads.get(k);
    if (s && state.unstable && state.errors) {
      const width = size(network.layers[k].outputShape);
      const unstable = state.unstable;
      const errors = state.errors;
      for (let b = 0; b < count; b++) {
        let n2 = 0;
        let absolute = 0;
        const base = b * width;
        for (let idx = 0; idx < unstable.length; idx++) {
          const v = g[base + unstable[idx]];
          n2 += v * v;
          absolute += Math.abs(v) * errors[idx];
        }
        const sensitivity = Math.sqrt(n2) * s.spread;
        corrections[b] += Math.min(sensitivity * before[s.from] * eps, sensitivity * boxNorm[s.from], absolute);
      }
    }
    g = await backwardBlock(backend, network.layers[k], state, g, count);
    main(g, k, best, corrections);
  }
  return best;
}
