/**
 * Plain-JavaScript kernels for the layers whose work is memory-bound or tiny: pooling, diagonal
 * scaling and small dense layers (where an onnxruntime call costs more than the arithmetic).
 * All arrays are in (C, H, W) layout without a batch dimension.
 */
import type { AvgPoolLayer, MaxPoolLayer, ScaleLayer } from '../../model/ir.js';

/** y = W x for a row-major [rows, cols] W. */
export function denseMatVec(weight: Float32Array, rows: number, cols: number, x: ArrayLike<number>, out = new Float32Array(rows)): Float32Array {
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const base = r * cols;
    for (let c = 0; c < cols; c++) s += weight[base + c] * x[c];
    out[r] = s;
  }
  return out;
}

/** x = Wᵀ y for a row-major [rows, cols] W. */
export function denseMatTVec(weight: Float32Array, rows: number, cols: number, y: ArrayLike<number>, out = new Float32Array(cols)): Float32Array {
  out.fill(0);
  for (let r = 0; r < rows; r++) {
    const v = y[r];
    if (v === 0) continue;
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c] += weight[base + c] * v;
  }
  return out;
}

/**
 * Visit every (output index, input index) pair of a 2-D pooling window; `inputIndex` is −1 for a
 * padded position.
 */
function forEachWindow(
  layer: AvgPoolLayer | MaxPoolLayer,
  visit: (outIndex: number, inIndex: number) => void,
) {
  const [channels, h, w] = layer.inputShape;
  const [, ho, wo] = layer.outputShape;
  const [kh, kw] = layer.kernel;
  const [sh, sw] = layer.strides;
  const [dh, dw] = layer.kind === 'maxpool' ? layer.dilations : [1, 1];
  const [pt, pl] = layer.pads;
  for (let c = 0; c < channels; c++) {
    for (let oy = 0; oy < ho; oy++) {
      for (let ox = 0; ox < wo; ox++) {
        const o = (c * ho + oy) * wo + ox;
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh - pt + ky * dh;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw - pl + kx * dw;
            visit(o, iy >= 0 && iy < h && ix >= 0 && ix < w ? (c * h + iy) * w + ix : -1);
          }
        }
      }
    }
  }
}

/** Divisor of each output of an average pool (the whole window, or only its non-padded part). */
export function avgPoolDivisors(layer: AvgPoolLayer): Float32Array {
  const counts = new Float32Array(layer.outputShape.reduce((a, b) => a * b, 1));
  forEachWindow(layer, (o, i) => {
    if (i >= 0 || layer.countIncludePad) counts[o] += 1;
  });
  return counts;
}

export function avgPoolForward(layer: AvgPoolLayer, x: ArrayLike<number>, divisors: Float32Array): Float32Array {
  const out = new Float32Array(divisors.length);
  forEachWindow(layer, (o, i) => {
    if (i >= 0) out[o] += x[i];
  });
  for (let o = 0; o < out.length; o++) out[o] /= divisors[o];
  return out;
}

export function avgPoolTranspose(layer: AvgPoolLayer, u: ArrayLike<number>, divisors: Float32Array): Float32Array {
  const out = new Float32Array(layer.inputShape.reduce((a, b) => a * b, 1));
  forEachWindow(layer, (o, i) => {
    if (i >= 0) out[i] += u[o] / divisors[o];
  });
  return out;
}

export function avgPoolRowNormsSquared(layer: AvgPoolLayer, mask: ArrayLike<number>, divisors: Float32Array): Float32Array {
  const out = new Float32Array(divisors.length);
  forEachWindow(layer, (o, i) => {
    if (i >= 0) out[o] += mask[i];
  });
  for (let o = 0; o < out.length; o++) out[o] /= divisors[o] * divisors[o];
  return out;
}

export function maxPoolForward(layer: MaxPoolLayer, x: ArrayLike<number>): Float32Array {
  const out = new Float32Array(layer.outputShape.reduce((a, b) => a * b, 1)).fill(-Infinity);
  forEachWindow(layer, (o, i) => {
    if (i >= 0 && x[i] > out[o]) out[o] = x[i];
  });
  return out;
}

/** 1 where any input of the window has mask 1 (Proposition 5's mask propagation). */
export function maxPoolMask(layer: MaxPoolLayer, mask: ArrayLike<number>): Float32Array {
  const out = new Float32Array(layer.outputShape.reduce((a, b) => a * b, 1));
  forEachWindow(layer, (o, i) => {
    if (i >= 0 && mask[i] !== 0) out[o] = 1;
  });
  return out;
}

/** Channel of each element for a per-channel scale (vectors: one "channel" per feature). */
function channelOf(layer: ScaleLayer, i: number): number {
  const s = layer.inputShape;
  return s.length === 3 ? Math.floor(i / (s[1] * s[2])) : i;
}

export function scaleApply(layer: ScaleLayer, x: ArrayLike<number>, withShift: boolean): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = channelOf(layer, i);
    out[i] = layer.scale[c] * x[i] + (withShift ? layer.shift[c] : 0);
  }
  return out;
}

export function scaleRowNormsSquared(layer: ScaleLayer, mask: ArrayLike<number>): Float32Array {
  const out = new Float32Array(mask.length);
  for (let i = 0; i < mask.length; i++) {
    const s = layer.scale[channelOf(layer, i)];
    out[i] = s * s * mask[i];
  }
  return out;
}
