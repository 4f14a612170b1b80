/**
 * The network's forward pass in float64, by direct loops over each layer's definition (ONNX
 * semantics: convolution with stride, padding, dilation and groups; dense; average pooling with or
 * without padded counting; per-channel scale; max pooling with padding as −∞). Slow next to the
 * backends (about 1 GFLOP/s), it is the independent, higher-precision evaluation that resolves margins
 * too small for float32 (bounds/rounding.ts).
 */
import { type AffineLayer, isAffine, type Layer, type Network, size } from './ir.js';
import { forEachWindow } from './pool-geometry.js';

function relu<T extends Float64Array<ArrayBufferLike>>(v: T): T {
  for (let i = 0; i < v.length; i++) if (v[i] < 0) v[i] = 0;
  return v;
}

/** A (plus bias) applied to x, in float64. */
export function affine64(layer: AffineLayer, x: ArrayLike<number>): Float64Array {
  const out = new Float64Array(size(layer.outputShape));
  switch (layer.kind) {
    case 'dense': {
      const [n] = layer.inputShape;
      for (let i = 0; i < out.length; i++) {
        let s = layer.bias[i];
        const row = i * n;
        for (let j = 0; j < n; j++) s += layer.weight[row + j] * x[j];
        out[i] = s;
      }
      return out;
    }
    case 'conv': {
      const [c, h, w] = layer.inputShape;
      const [k, ho, wo] = layer.outputShape;
      const [kh, kw] = layer.kernel;
      const [sh, sw] = layer.strides;
      const [dh, dw] = layer.dilations;
      const [pt, pl] = layer.pads;
      const perGroupIn = c / layer.group;
      const perGroupOut = k / layer.group;
      const positions = ho * wo;
      for (let o = 0; o < k; o++) out.fill(layer.bias[o], o * positions, (o + 1) * positions);
      // One kernel tap of one input channel at a time: its input values for every output position
      // (one im2col row, padding as 0), then added into each output channel of the group along
      // contiguous memory.
      const row = new Float64Array(positions);
      for (let channel = 0; channel < c; channel++) {
        const g = Math.floor(channel / perGroupIn);
        const ci = channel - g * perGroupIn;
        for (let ky = 0; ky < kh; ky++)
          for (let kx = 0; kx < kw; kx++) {
            for (let oy = 0; oy < ho; oy++) {
              const iy = oy * sh - pt + ky * dh;
              for (let ox = 0; ox < wo; ox++) {
                const ix = ox * sw - pl + kx * dw;
                row[oy * wo + ox] = iy >= 0 && iy < h && ix >= 0 && ix < w ? x[(channel * h + iy) * w + ix] : 0;
              }
            }
            for (let o = g * perGroupOut; o < (g + 1) * perGroupOut; o++) {
              const weight = layer.weight[((o * perGroupIn + ci) * kh + ky) * kw + kx];
              if (weight === 0) continue;
              const plane = o * positions;
              for (let p = 0; p < positions; p++) out[plane + p] += weight * row[p];
            }
          }
      }
      return out;
    }
    case 'avgpool': {
      const counts = new Float64Array(out.length);
      forEachWindow(layer, (o, i) => {
        if (i >= 0) out[o] += x[i];
        // count_include_pad counts every position of the window (as the backends do).
        if (i >= 0 || layer.countIncludePad) counts[o]++;
      });
      for (let o = 0; o < out.length; o++) out[o] = counts[o] > 0 ? out[o] / counts[o] : 0;
      return out;
    }
    case 'scale': {
      const per = out.length / layer.scale.length;
      for (let i = 0; i < out.length; i++) {
        const ch = Math.floor(i / per);
        out[i] = layer.scale[ch] * x[i] + layer.shift[ch];
      }
      return out;
    }
  }
}

function maxPool64(layer: Layer & { kind: 'maxpool' }, x: ArrayLike<number>): Float64Array {
  const out = new Float64Array(size(layer.outputShape)).fill(-Infinity);
  forEachWindow(layer, (o, i) => {
    if (i >= 0 && x[i] > out[o]) out[o] = x[i];
  });
  return out;
}

export interface Forward64 {
  /** Each layer's input. */
  inputs: Float64Array[];
  /** Each affine layer's output before its ReLU (null for other layers). */
  preActivations: (Float64Array | null)[];
  logits: Float64Array;
}

/** Every layer's input, the affine layers' pre-activations and the logits, in float64. */
export function forward64(network: Network, x0: ArrayLike<number>): Forward64 {
  const inputs: Float64Array[] = [];
  const preActivations: (Float64Array | null)[] = [];
  let x: Float64Array = Float64Array.from(x0);
  for (const layer of network.layers) {
    inputs.push(x);
    if (isAffine(layer)) {
      const y = affine64(layer, x);
      preActivations.push(y);
      x = layer.relu ? relu(Float64Array.from(y)) : y;
    } else {
      preActivations.push(null);
      if (layer.kind === 'maxpool') x = maxPool64(layer, x);
      else if (layer.kind === 'relu') x = relu(Float64Array.from(x));
    }
  }
  return { inputs, preActivations, logits: x };
}
