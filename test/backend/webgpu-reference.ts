/**
 * Straightforward float64 references for the WebGPU kernel tests: each layer applied through the
 * entries of its definition (test/helpers/layer-definitions.ts), the explicit matrix A of a layer
 * (built by applying the reference to basis vectors), and small random layers. Nothing here shares
 * code with the kernels.
 */
import { expect } from '@jest/globals';
import type { AvgPoolLayer, ConvLayer, DenseLayer, MaxPoolLayer, ScaleLayer } from '../../src/model/ir.js';
import { size, windowOutputSize } from '../../src/model/ir.js';
import { applyEntries, applyEntriesTransposed, poolWindows } from '../helpers/layer-definitions.js';

/** Deterministic uniform numbers in [-1, 1) (mulberry32). */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

export function randomArray(length: number, rand: () => number): Float32Array {
  return Float32Array.from({ length }, rand);
}

/** A random 0/1 mask with about `density` ones. */
export function randomMask(length: number, rand: () => number, density = 0.6): Float32Array {
  return Float32Array.from({ length }, () => (rand() * 0.5 + 0.5 < density ? 1 : 0));
}

type Pair = [number, number];
type Pads = [number, number, number, number];

export function makeConv(
  seed: number,
  o: { inShape: [number, number, number]; outChannels: number; kernel: Pair; strides?: Pair; pads?: Pads; dilations?: Pair; group?: number },
): ConvLayer {
  const rand = random(seed);
  const [c, h, w] = o.inShape;
  const strides = o.strides ?? [1, 1];
  const pads = o.pads ?? [0, 0, 0, 0];
  const dilations = o.dilations ?? [1, 1];
  const group = o.group ?? 1;
  const oh = windowOutputSize(h, o.kernel[0], strides[0], pads[0], pads[2], dilations[0]);
  const ow = windowOutputSize(w, o.kernel[1], strides[1], pads[1], pads[3], dilations[1]);
  return {
    kind: 'conv', name: `conv${seed}`, relu: false, inputShape: [c, h, w], outputShape: [o.outChannels, oh, ow],
    weight: randomArray(o.outChannels * (c / group) * o.kernel[0] * o.kernel[1], rand),
    bias: randomArray(o.outChannels, rand), kernel: o.kernel, strides, pads, dilations, group,
  };
}

export function makeDense(seed: number, inFeatures: number, outFeatures: number): DenseLayer {
  const rand = random(seed);
  return {
    kind: 'dense', name: `dense${seed}`, relu: false, inputShape: [inFeatures], outputShape: [outFeatures],
    weight: randomArray(inFeatures * outFeatures, rand), bias: randomArray(outFeatures, rand),
  };
}

export function makeAvgPool(inShape: [number, number, number], kernel: Pair, strides: Pair, pads: Pads, countIncludePad: boolean): AvgPoolLayer {
  const [c, h, w] = inShape;
  const oh = windowOutputSize(h, kernel[0], strides[0], pads[0], pads[2]);
  const ow = windowOutputSize(w, kernel[1], strides[1], pads[1], pads[3]);
  return { kind: 'avgpool', name: 'avgpool', relu: false, inputShape: inShape, outputShape: [c, oh, ow], kernel, strides, pads, countIncludePad };
}

export function makeMaxPool(inShape: [number, number, number], kernel: Pair, strides: Pair, pads: Pads, dilations: Pair, ceilMode = false): MaxPoolLayer {
  const [c, h, w] = inShape;
  const oh = windowOutputSize(h, kernel[0], strides[0], pads[0], pads[2], dilations[0], ceilMode);
  const ow = windowOutputSize(w, kernel[1], strides[1], pads[1], pads[3], dilations[1], ceilMode);
  return { kind: 'maxpool', name: 'maxpool', inputShape: inShape, outputShape: [c, oh, ow], kernel, strides, pads, dilations };
}

export function makeScale(seed: number, inShape: number[]): ScaleLayer {
  const rand = random(seed);
  const channels = inShape[0];
  return { kind: 'scale', name: 'scale', relu: false, inputShape: inShape, outputShape: inShape, scale: randomArray(channels, rand), shift: randomArray(channels, rand) };
}

// ---- reference layer maps (float64) ----

export function convReference(layer: ConvLayer, x: ArrayLike<number>, withBias: boolean): Float64Array {
  return applyEntries(layer, x, withBias);
}

export function denseReference(layer: DenseLayer, x: ArrayLike<number>, withBias: boolean): Float64Array {
  return applyEntries(layer, x, withBias);
}

/** Average pool by its definition: the divisor counts window taps in the input, or in the padded input. */
export function avgPoolReference(layer: AvgPoolLayer, x: ArrayLike<number>): Float64Array {
  return applyEntries(layer, x, false);
}

export function scaleReference(layer: ScaleLayer, x: ArrayLike<number>, withShift: boolean): Float64Array {
  return applyEntries(layer, x, withShift);
}

/** Max over each window's taps inside the input (`mask`: max with padding as 0, i.e. any 1). */
export function maxPoolReference(layer: MaxPoolLayer, x: ArrayLike<number>, mask = false): Float64Array {
  return Float64Array.from(poolWindows(layer), (window) => window.reduce((best, i) => Math.max(best, x[i]), mask ? 0 : -Infinity));
}

// ---- explicit matrices ----

/** The matrix [rows × cols] of a linear map, one column per basis vector. */
export function explicitMatrix(map: (x: Float64Array) => Float64Array, cols: number, rows: number): Float64Array {
  const a = new Float64Array(rows * cols);
  const e = new Float64Array(cols);
  for (let j = 0; j < cols; j++) {
    e.fill(0);
    e[j] = 1;
    const column = map(e);
    for (let i = 0; i < rows; i++) a[i * cols + j] = column[i];
  }
  return a;
}

export function matVec(a: Float64Array, rows: number, cols: number, x: ArrayLike<number>): Float64Array {
  const y = new Float64Array(rows);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) y[i] += a[i * cols + j] * x[j];
  return y;
}

export function matTVec(a: Float64Array, rows: number, cols: number, u: ArrayLike<number>): Float64Array {
  const v = new Float64Array(cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) v[j] += a[i * cols + j] * u[i];
  return v;
}

/** r_i² = ||a_iᵀ D||², straight from the rows of A. */
export function rowNormsSquaredOf(a: Float64Array, rows: number, cols: number, mask: ArrayLike<number>): Float64Array {
  const r = new Float64Array(rows);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) r[i] += (a[i * cols + j] * mask[j]) ** 2;
  return r;
}

/** D Aᵀ Λ² A D x from the explicit A. */
export function gramReference(a: Float64Array, rows: number, cols: number, mask: ArrayLike<number> | null, slopeSquared: ArrayLike<number> | null, x: ArrayLike<number>): Float64Array {
  const dx = Float64Array.from(x, (v, j) => (mask ? mask[j] * v : v));
  const y = matVec(a, rows, cols, dx);
  if (slopeSquared) for (let i = 0; i < rows; i++) y[i] *= slopeSquared[i];
  const z = matTVec(a, rows, cols, y);
  return Float64Array.from(z, (v, j) => (mask ? mask[j] * v : v));
}

/**
 * Every |actual_i − expected_i| ≤ rtol·(|expected_i| + max_j |expected_j|): relative to each
 * entry, with the vector's scale as the floor for entries that cancel to near zero.
 */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 1e-4): void {
  expect(actual.length).toBe(expected.length);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const excess = Math.abs(actual[i] - expected[i]) - rtol * (Math.abs(expected[i]) + scale);
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(excess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    throw new Error(`entry ${worst} of ${expected.length}: got ${actual[worst]}, expected ${expected[worst]} (rtol ${rtol}, scale ${scale})`);
  }
  expect(scale).toBeGreaterThan(0); // a comparison against all zeros would prove little
}

/** Transposed convolution by scattering each output back along the taps that produced it. */
export function convTransposeReference(layer: ConvLayer, u: ArrayLike<number>): Float64Array {
  return applyEntriesTransposed(layer, u);
}
