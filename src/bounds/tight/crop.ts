/**
 * Receptive-field crops of the per-unit backward passes (docs/tightness.md §5, "Crops"). A unit of a
 * convolution at output position (h, w) depends only on a window of each earlier feature map, so the
 * row a_iᵀ of its backward pass (and every row it becomes on the way back) is zero outside that
 * window. The same pass run on a copy of the network cut to those windows — every layer, state, box
 * and mask restricted to them, convolutions and pools given the pads their border needs — computes
 * the same coefficients on the window and drops only entries that are zero, so its bounds are the
 * full pass's (every sum gains or loses only +0 terms; the one difference is the order in which the
 * backend's transposed convolution may add its terms, a float32 rounding matter). Units are taken a
 * tile of output positions at a time, so one cut network serves every channel of every position in
 * the tile.
 */
import { inputsOf, type Layer, type Network, size } from '../../model/ir.js';
import type { LayerState, NodeBox, Sweep } from './sweep.js';

/** A half-open rectangle of spatial positions [h0, h1) × [w0, w1) of a [C, H, W] map. */
export interface Window {
  h0: number;
  h1: number;
  w0: number;
  w1: number;
}

/**
 * Whether per-unit passes run on crops, and a fixed tile side (0: the cheapest by tilePlan's
 * estimate). Tests set them to compare with the full passes and to exercise small tiles.
 */
export const CROPS = { enabled: true, tileSide: 0 };

/** The layers whose output at a window depends only on a window of their input (a spatial chain). */
const SPATIAL = new Set<Layer['kind']>(['conv', 'maxpool', 'relu', 'activation']);

/**
 * Whether the per-unit passes of layer `index` (a convolution) can run on crops: layers 0..index form
 * a chain of convolutions, max pools and activations on [C, H, W] maps.
 */
export function croppable(network: Network, index: number): boolean {
  if (network.layers[index]?.kind !== 'conv' || network.inputShape.length !== 3) return false;
  for (let k = 0; k <= index; k++) {
    const layer = network.layers[k];
    const reads = inputsOf(network, k);
    if (!SPATIAL.has(layer.kind) || reads.length !== 1 || reads[0] !== k - 1 || layer.inputShape.length !== 3 || layer.outputShape.length !== 3) return false;
  }
  return true;
}

/** Along one axis: the input range an output range [o0, o1) reads, clipped to [0, n), and the pads that clipping leaves. */
function axisField(o0: number, o1: number, n: number, kernel: number, stride: number, padBefore: number, dilation: number) {
  const from = o0 * stride - padBefore;
  const to = (o1 - 1) * stride - padBefore + (kernel - 1) * dilation + 1;
  const lo = Math.max(0, from);
  const hi = Math.min(n, to);
  return { lo, hi, padBefore: lo - from, padAfter: to - hi };
}

/** The input window a layer's output window reads, with the pads of the cut layer ([top, left, bottom, right]). */
export function fieldOf(layer: Layer, out: Window): { window: Window; pads: [number, number, number, number] } {
  if (layer.kind !== 'conv' && layer.kind !== 'maxpool') return { window: out, pads: [0, 0, 0, 0] };
  const [, h, w] = layer.inputShape;
  const dilations = layer.dilations;
  const rows = axisField(out.h0, out.h1, h, layer.kernel[0], layer.strides[0], layer.pads[0], dilations[0]);
  const cols = axisField(out.w0, out.w1, w, layer.kernel[1], layer.strides[1], layer.pads[1], dilations[1]);
  return { window: { h0: rows.lo, h1: rows.hi, w0: cols.lo, w1: cols.hi }, pads: [rows.padBefore, cols.padBefore, rows.padAfter, cols.padAfter] };
}

const area = (window: Window) => (window.h1 - window.h0) * (window.w1 - window.w0);

/**
 * The window's rows of a [C, H, W] map, one per channel and line: `visit(full, cut, width)` with the
 * offset of the row in the full map, in the cut map, and its length.
 */
function windowRuns(shape: number[], window: Window, visit: (full: number, cut: number, width: number) => void): void {
  const [c, h, w] = shape;
  const height = window.h1 - window.h0;
  const width = window.w1 - window.w0;
  for (let ch = 0; ch < c; ch++) for (let y = 0; y < height; y++) visit((ch * h + window.h0 + y) * w + window.w0, (ch * height + y) * width, width);
}

/** Entries [c, h, w] of a [C, H, W] map inside the window, in the map's order. */
export function cropMap<T extends Float32Array | Float64Array | Int32Array>(data: T, shape: number[], window: Window): T {
  const out = new (data.constructor as new (n: number) => T)(shape[0] * area(window));
  windowRuns(shape, window, (full, cut, width) => out.set(data.subarray(full, full + width), cut));
  return out;
}

/** A block of `count` cut rows put back in place in their [C, H, W] maps: zeros outside the window. */
export function uncropRows(rows: Float32Array, count: number, shape: number[], window: Window): Float32Array {
  const full = size(shape);
  const part = shape[0] * area(window);
  const out = new Float32Array(count * full);
  for (let b = 0; b < count; b++) windowRuns(shape, window, (at, cut, width) => out.set(rows.subarray(b * part + cut, b * part + cut + width), b * full + at));
  return out;
}

/** The index in the cut map of entry `i` of the full map (−1 stays −1). */
export function cropIndex(i: number, shape: number[], window: Window): number {
  if (i < 0) return i;
  const [, h, w] = shape;
  const ch = Math.floor(i / (h * w));
  const y = Math.floor(i / w) % h;
  const x = i % w;
  return (ch * (window.h1 - window.h0) + (y - window.h0)) * (window.w1 - window.w0) + (x - window.w0);
}

const optional = <T extends Float32Array>(data: T | null | undefined, shape: number[], window: Window): T | null =>
  data ? cropMap(data, shape, window) : null;

/** A layer's state cut to its output window (and its input window, for a max pool's input indices). */
function cropState(state: LayerState, layer: Layer, outWindow: Window, inWindow: Window): LayerState {
  const out = layer.outputShape;
  const cut: LayerState = { mask: optional(state.mask, layer.inputShape, inWindow) };
  if (state.reluInterval) {
    const { y0, lower, upper } = state.reluInterval;
    cut.reluInterval = {
      y0: cropMap(Float32Array.from(y0), out, outWindow),
      lower: cropMap(Float32Array.from(lower), out, outWindow),
      upper: cropMap(Float32Array.from(upper), out, outWindow),
    };
  }
  if (state.relaxation) {
    const r = state.relaxation;
    cut.relaxation = { upperSlope: cropMap(r.upperSlope, out, outWindow), upperOffset: cropMap(r.upperOffset, out, outWindow), lowerSlope: cropMap(r.lowerSlope, out, outWindow), lowerOffset: cropMap(r.lowerOffset, out, outWindow) };
  }
  if (state.winner) cut.winner = cropMap(state.winner, out, outWindow).map((i) => cropIndex(i, layer.inputShape, inWindow));
  if (state.poolRelaxation) {
    const p = state.poolRelaxation;
    cut.poolRelaxation = {
      upperConstant: cropMap(p.upperConstant, out, outWindow),
      lowerOffset: cropMap(p.lowerOffset, out, outWindow),
      lowerInput: cropMap(p.lowerInput, out, outWindow).map((i) => cropIndex(i, layer.inputShape, inWindow)),
    };
  }
  return cut;
}

const cutLayers = new WeakMap<Layer, Map<string, Layer>>();

/** The layer on the cut maps (one object per geometry, so a backend's per-layer caches serve every tile alike). */
function cutLayer(layer: Layer, inWindow: Window, outWindow: Window, pads: [number, number, number, number]): Layer {
  // The cut layer depends on the windows' sizes and the pads only: interior tiles share one.
  const key = [inWindow.h1 - inWindow.h0, inWindow.w1 - inWindow.w0, outWindow.h1 - outWindow.h0, outWindow.w1 - outWindow.w0, ...pads].join(',');
  let perLayer = cutLayers.get(layer);
  if (!perLayer) cutLayers.set(layer, (perLayer = new Map()));
  let cut = perLayer.get(key);
  if (!cut) {
    const inputShape = [layer.inputShape[0], inWindow.h1 - inWindow.h0, inWindow.w1 - inWindow.w0];
    const outputShape = [layer.outputShape[0], outWindow.h1 - outWindow.h0, outWindow.w1 - outWindow.w0];
    cut = { ...layer, inputShape, outputShape, ...(layer.kind === 'conv' || layer.kind === 'maxpool' ? { pads } : {}) } as Layer;
    perLayer.set(key, cut);
  }
  return cut;
}

/** The windows of layer `index`'s input and of every earlier layer's input for an output window of layer `index`. */
export function fieldsOf(network: Network, index: number, tile: Window): { inputs: Window[]; pads: [number, number, number, number][] } {
  const inputs: Window[] = [];
  const pads: [number, number, number, number][] = [];
  let window = tile;
  for (let k = index; k >= 0; k--) {
    const field = fieldOf(network.layers[k], window);
    inputs[k] = field.window;
    pads[k] = field.pads;
    window = field.window;
  }
  return { inputs, pads };
}

/**
 * The sweep cut to the receptive field of layer `index`'s output tile: layers 0..index on their
 * windows (the later ones unchanged and unused), their states, the nodes' boxes and masks, and the
 * deviations at each layer's input. A backward pass from layer `index`'s input on it sees exactly the
 * nonzero entries of the full pass's rows.
 */
export function cropSweep(sweep: Sweep, index: number, tile: Window): { sweep: Sweep; inputWindow: Window } {
  const { network } = sweep;
  const { inputs, pads } = fieldsOf(network, index, tile);
  const outputOf = (k: number) => (k === index ? tile : inputs[k + 1]);
  const layers = network.layers.map((layer, k) => (k <= index ? cutLayer(layer, inputs[k], outputOf(k), pads[k]) : layer));
  const states = sweep.states.map((state, k) => (k < index ? cropState(state, network.layers[k], outputOf(k), inputs[k]) : state));
  const shapeOf = (j: number) => (j < 0 ? network.inputShape : network.layers[j].outputShape);
  const windowOf = (j: number) => inputs[j + 1]; // node j's output is layer j + 1's input
  const nodes: NodeBox[] = sweep.nodes.map((node, n) => {
    const j = n - 1;
    if (j >= index) return node;
    return { gain: node.gain, deviation: cropMap(node.deviation, shapeOf(j), windowOf(j)), mask: optional(node.mask, shapeOf(j), windowOf(j)) };
  });
  const deviation = sweep.deviation.map((d, t) => (t <= index ? cropMap(d, network.layers[t].inputShape, inputs[t]) : d));
  const cut: Sweep = {
    ...sweep,
    network: { ...network, inputShape: [network.inputShape[0], inputs[0].h1 - inputs[0].h0, inputs[0].w1 - inputs[0].w0], layers },
    states,
    nodes,
    deviation,
    boxNorms: undefined,
  };
  return { sweep: cut, inputWindow: inputs[index] };
}

/** How the units of layer `index` are grouped: tiles of output positions with the units (any channel) in each. */
export interface TilePlan {
  tile: Window;
  units: number[];
}

/**
 * The tiles of t×t output positions of layer `index`, with the side t that minimises an estimate of
 * the passes' work: per tile, a fixed cost per layer (TILE_OVERHEAD entries: an operator call) plus,
 * per row, the entries of every window it crosses. Empty tiles are left out.
 */
export function tilePlan(network: Network, index: number, units: number[]): TilePlan[] {
  const [, h, w] = network.layers[index].outputShape;
  const plane = h * w;
  const widthsFor = (t: number) => {
    // The work of one row of an interior tile of side t (its windows' entries over the layers).
    const tile = { h0: 0, h1: Math.min(t, h), w0: 0, w1: Math.min(t, w) };
    const { inputs } = fieldsOf(network, index, tile);
    return inputs.reduce((sum, window, k) => sum + network.layers[k].inputShape[0] * area(window), 0);
  };
  let best: { t: number; cost: number } | null = null;
  for (const t of CROPS.tileSide > 0 ? [CROPS.tileSide] : [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]) {
    if (t > Math.max(h, w) && best) break;
    const tiles = new Set(units.map((i) => Math.floor((Math.floor(i / w) % h) / t) * w + Math.floor((i % w) / t)));
    const cost = tiles.size * (index + 1) * TILE_OVERHEAD + units.length * widthsFor(t);
    if (!best || cost < best.cost) best = { t, cost };
  }
  const t = best!.t;
  const byTile = new Map<number, number[]>();
  for (const i of units) {
    const p = i % plane;
    const key = Math.floor(Math.floor(p / w) / t) * w + Math.floor((p % w) / t);
    let list = byTile.get(key);
    if (!list) byTile.set(key, (list = []));
    list.push(i);
  }
  return [...byTile.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([key, list]) => {
      const th = Math.floor(key / w) * t;
      const tw = (key % w) * t;
      return { tile: { h0: th, h1: Math.min(h, th + t), w0: tw, w1: Math.min(w, tw + t) }, units: list };
    });
}

/**
 * An operator call's fixed cost, in entries of row work. With it the estimate's choice beat fixed tile
 * sides of 1, 2 and 4 on CIFAR-10's full sweep at ε = 0.026 (2-core AMD EPYC: 6.7–7.8 s against
 * 6.9–9.3, 7.4–8.3 and 10.5–11.5 s, two alternating rounds).
 */
const TILE_OVERHEAD = 2e4;
