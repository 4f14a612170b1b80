/**
 * The geometry of a 2-D pooling window, written once: which inputs each output of a max or
 * average pool reads (ONNX semantics: stride, padding, dilation for max pooling; channels
 * independent). The backends' pooling loops, the float64 forward pass, the gradient's argmax routing
 * and the tight method's window analysis all walk windows through here.
 */
import { type AvgPoolLayer, type MaxPoolLayer, size } from './ir.js';

/**
 * Visit every (output index, input index) pair of the pooling windows over `count` stacked inputs
 * (count·C channels), in window order; the input index is −1 for a padded position.
 */
export function forEachWindow(layer: AvgPoolLayer | MaxPoolLayer, visit: (outIndex: number, inIndex: number) => void, count = 1): void {
  const [layerChannels, h, w] = layer.inputShape;
  const channels = layerChannels * count;
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

const windowsByLayer = new WeakMap<AvgPoolLayer | MaxPoolLayer, readonly Int32Array[]>();

/**
 * For each output, the flat indices of its window's inputs in window order (padding left out).
 * Computed once per layer (the tight method asks at every evaluation); callers must not modify it.
 */
export function poolWindows(layer: AvgPoolLayer | MaxPoolLayer): readonly Int32Array[] {
  let windows = windowsByLayer.get(layer);
  if (!windows) {
    const members: number[][] = Array.from({ length: size(layer.outputShape) }, () => []);
    forEachWindow(layer, (o, i) => {
      if (i >= 0) members[o].push(i);
    });
    windows = members.map((m) => Int32Array.from(m));
    windowsByLayer.set(layer, windows);
  }
  return windows;
}

/**
 * For each output of a max pool, the input attaining its window's maximum of `x` (the first in
 * window order on ties), or −1 when the window lies in the padding.
 */
export function windowArgmax(layer: MaxPoolLayer, x: ArrayLike<number>): Int32Array {
  const argmax = new Int32Array(size(layer.outputShape)).fill(-1);
  forEachWindow(layer, (o, i) => {
    if (i >= 0 && (argmax[o] < 0 || x[i] > x[argmax[o]])) argmax[o] = i;
  });
  return argmax;
}
