/**
 * The test references' one reading of each layer's definition (ONNX semantics), written out entry by
 * entry: the non-zeros of an affine layer's matrix A and its b, and the input entries of each max-pool
 * window. The dense (dense.ts), sparse (dense-matrices.ts) and direct (backend/webgpu-reference.ts)
 * references are built on it. Nothing here shares code with the backends or with src/bounds.
 */
import { type AffineLayer, type MaxPoolLayer, size } from '../../src/model/ir.js';

/** Calls `visit(row, column, value)` for every entry of A (an entry may come in several parts). */
export function forEachEntry(layer: AffineLayer, visit: (row: number, col: number, value: number) => void): void {
  switch (layer.kind) {
    case 'dense': {
      const cols = size(layer.inputShape);
      const rows = size(layer.outputShape);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) visit(r, c, layer.weight[r * cols + c]);
      return;
    }
    case 'scale': {
      const n = size(layer.inputShape);
      const per = n / layer.scale.length;
      for (let i = 0; i < n; i++) visit(i, i, layer.scale[Math.floor(i / per)]);
      return;
    }
    case 'conv': {
      const [c, h, w] = layer.inputShape;
      const [k, ho, wo] = layer.outputShape;
      const [kh, kw] = layer.kernel;
      const cg = c / layer.group;
      const kg = k / layer.group;
      for (let o = 0; o < k; o++) {
        const g = Math.floor(o / kg);
        for (let oy = 0; oy < ho; oy++)
          for (let ox = 0; ox < wo; ox++) {
            const row = (o * ho + oy) * wo + ox;
            for (let ci = 0; ci < cg; ci++)
              for (let ky = 0; ky < kh; ky++)
                for (let kx = 0; kx < kw; kx++) {
                  const iy = oy * layer.strides[0] - layer.pads[0] + ky * layer.dilations[0];
                  const ix = ox * layer.strides[1] - layer.pads[1] + kx * layer.dilations[1];
                  if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                  visit(row, ((g * cg + ci) * h + iy) * w + ix, layer.weight[((o * cg + ci) * kh + ky) * kw + kx]);
                }
          }
      }
      return;
    }
    case 'avgpool': {
      // The divisor counts the window's taps inside the input, or (count_include_pad) inside the
      // padded input.
      const [channels, h, w] = layer.inputShape;
      const [, ho, wo] = layer.outputShape;
      for (let ch = 0; ch < channels; ch++)
        for (let oy = 0; oy < ho; oy++)
          for (let ox = 0; ox < wo; ox++) {
            const inside: number[] = [];
            let padded = 0;
            for (let ky = 0; ky < layer.kernel[0]; ky++)
              for (let kx = 0; kx < layer.kernel[1]; kx++) {
                const iy = oy * layer.strides[0] - layer.pads[0] + ky;
                const ix = ox * layer.strides[1] - layer.pads[1] + kx;
                if (iy < h + layer.pads[2] && ix < w + layer.pads[3]) padded++;
                if (iy >= 0 && iy < h && ix >= 0 && ix < w) inside.push((ch * h + iy) * w + ix);
              }
            const divisor = layer.countIncludePad ? padded : inside.length;
            for (const col of inside) visit((ch * ho + oy) * wo + ox, col, 1 / divisor);
          }
      return;
    }
  }
}

/** b of an affine layer, one entry per row (an average pool has none). */
export function biasOf(layer: AffineLayer): Float64Array {
  const rows = size(layer.outputShape);
  switch (layer.kind) {
    case 'dense':
      return Float64Array.from(layer.bias);
    case 'conv':
    case 'scale': {
      const perChannel = layer.kind === 'conv' ? layer.bias : layer.shift;
      const per = rows / perChannel.length;
      return Float64Array.from({ length: rows }, (_, r) => perChannel[Math.floor(r / per)]);
    }
    case 'avgpool':
      return new Float64Array(rows);
  }
}

/** A x (+ b): the layer applied through its entries. */
export function applyEntries(layer: AffineLayer, x: ArrayLike<number>, withBias: boolean): Float64Array {
  const y = withBias ? biasOf(layer) : new Float64Array(size(layer.outputShape));
  forEachEntry(layer, (r, c, v) => (y[r] += v * x[c]));
  return y;
}

/** Aᵀ u: each output scattered back along the entries that produced it. */
export function applyEntriesTransposed(layer: AffineLayer, u: ArrayLike<number>): Float64Array {
  const x = new Float64Array(size(layer.inputShape));
  forEachEntry(layer, (r, c, v) => (x[c] += v * u[r]));
  return x;
}

/** For each output entry of a max pool, the input entries of its window that lie inside the input. */
export function poolWindows(layer: MaxPoolLayer): number[][] {
  const [channels, h, w] = layer.inputShape;
  const [, ho, wo] = layer.outputShape;
  const windows: number[][] = [];
  for (let c = 0; c < channels; c++)
    for (let oy = 0; oy < ho; oy++)
      for (let ox = 0; ox < wo; ox++) {
        const members: number[] = [];
        for (let ky = 0; ky < layer.kernel[0]; ky++)
          for (let kx = 0; kx < layer.kernel[1]; kx++) {
            const iy = oy * layer.strides[0] - layer.pads[0] + ky * layer.dilations[0];
            const ix = ox * layer.strides[1] - layer.pads[1] + kx * layer.dilations[1];
            if (iy >= 0 && iy < h && ix >= 0 && ix < w) members.push((c * h + iy) * w + ix);
          }
        windows.push(members);
      }
  return windows;
}

/** Brute-force n_max: the most windows any input entry belongs to (at least 1). */
export function maxPoolMembership(layer: MaxPoolLayer): number {
  const counts = new Int32Array(size(layer.inputShape));
  let most = 1;
  for (const window of poolWindows(layer)) for (const i of window) most = Math.max(most, ++counts[i]);
  return most;
}
