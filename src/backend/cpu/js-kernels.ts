/**
 * Plain-JavaScript kernels for the layers whose work is memory-bound or tiny: pooling, diagonal
 * scaling and small dense layers (where an onnxruntime call costs more than the arithmetic).
 * Arrays are in (C, H, W) layout; `count` vectors are stored one after another ([count, C, H, W]),
 * and the dense kernels take each row of W once for all of them (it stays in cache while the
 * count vectors use it).
 */
import { size, type AvgPoolLayer, type MaxPoolLayer, type ScaleLayer } from '../../model/ir.js';
import { forEachWindow } from '../../model/pool-geometry.js';

/** y_b = W x_b for a row-major [rows, cols] W and `count` vectors x_b. */
export function denseMatVec(weight: Float32Array, rows: number, cols: number, x: ArrayLike<number>, count = 1, out = new Float32Array(rows * count)): Float32Array {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let b = 0; b < count; b++) {
      const xBase = b * cols;
      let s = 0;
      for (let c = 0; c < cols; c++) s += weight[base + c] * x[xBase + c];
      out[b * rows + r] = s;
    }
  }
  return out;
}

/** r²_b = (W⊙W)·mask_b for a row-major [rows, cols] W, squaring on the fly (no copy of W⊙W). */
export function denseRowNormsSquared(weight: Float32Array, rows: number, cols: number, mask: ArrayLike<number>, count = 1, out = new Float32Array(rows * count)): Float32Array {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let b = 0; b < count; b++) {
      const maskBase = b * cols;
      let s = 0;
      for (let c = 0; c < cols; c++) {
        const w = weight[base + c];
        s += w * w * mask[maskBase + c];
      }
      out[b * rows + r] = s;
    }
  }
  return out;
}

/** x_b = Wᵀ y_b for a row-major [rows, cols] W and `count` vectors y_b. */
export function denseMatTVec(weight: Float32Array, rows: number, cols: number, y: ArrayLike<number>, count = 1, out = new Float32Array(cols * count)): Float32Array {
  out.fill(0);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let b = 0; b < count; b++) {
      const v = y[b * rows + r];
      if (v === 0) continue;
      const outBase = b * cols;
      for (let c = 0; c < cols; c++) out[outBase + c] += weight[base + c] * v;
    }
  }
  return out;
}

/** Divisor of each output of an average pool (the whole window, or only its non-padded part). */
export function avgPoolDivisors(layer: AvgPoolLayer): Float32Array {
  const counts = new Float32Array(layer.outputShape.reduce((a, b) => a * b, 1));
  forEachWindow(layer, (o, i) => {
    if (i >= 0 || layer.countIncludePad) counts[o] += 1;
  });
  return counts;
}

// The average pool kernels sum in float64: a large window (an adaptive pool over 112×112) summed
// in float32 is off by ~1e-4, enough to stall Lanczos short of its tolerance.

// Divisors are those of one input: output o of a stack of inputs uses divisors[o % outputs].

export function avgPoolForward(layer: AvgPoolLayer, x: ArrayLike<number>, divisors: Float32Array, count = 1): Float32Array {
  const sums = new Float64Array(divisors.length * count);
  forEachWindow(layer, (o, i) => {
    if (i >= 0) sums[o] += x[i];
  }, count);
  return Float32Array.from(sums, (s, o) => s / divisors[o % divisors.length]);
}

export function avgPoolTranspose(layer: AvgPoolLayer, u: ArrayLike<number>, divisors: Float32Array, count = 1): Float32Array {
  const sums = new Float64Array(size(layer.inputShape) * count);
  forEachWindow(layer, (o, i) => {
    if (i >= 0) sums[i] += u[o] / divisors[o % divisors.length];
  }, count);
  return Float32Array.from(sums);
}

export function avgPoolRowNormsSquared(layer: AvgPoolLayer, mask: ArrayLike<number>, divisors: Float32Array, count = 1): Float32Array {
  const sums = new Float64Array(divisors.length * count);
  forEachWindow(layer, (o, i) => {
    if (i >= 0) sums[o] += mask[i];
  }, count);
  return Float32Array.from(sums, (s, o) => s / divisors[o % divisors.length] ** 2);
}

export function maxPoolForward(layer: MaxPoolLayer, x: ArrayLike<number>, count = 1): Float32Array {
  const out = new Float32Array(size(layer.outputShape) * count).fill(-Infinity);
  forEachWindow(layer, (o, i) => {
    if (i >= 0 && x[i] > out[o]) out[o] = x[i];
  }, count);
  return out;
}

/** 1 where any input of the window has mask 1 (Proposition 5's mask propagation). */
export function maxPoolMask(layer: MaxPoolLayer, mask: ArrayLike<number>, count = 1): Float32Array {
  const out = new Float32Array(size(layer.outputShape) * count);
  forEachWindow(layer, (o, i) => {
    if (i >= 0 && mask[i] !== 0) out[o] = 1;
  }, count);
  return out;
}

/**
 * Channel of each element for a per-channel scale (vectors: one "channel" per feature); `i` may
 * index a stack of inputs.
 */
function channelOf(layer: ScaleLayer, i: number): number {
  const s = layer.inputShape;
  return s.length === 3 ? Math.floor(i / (s[1] * s[2])) % s[0] : i % s[0];
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
