/**
 * ONNX → network IR. The graph must be a chain: every node takes the previous node's output (plus
 * constants) and its output feeds only the next node. Constant subgraphs (nodes whose inputs are all
 * initializers, Constants or static shapes) are evaluated at import (onnx-fold.ts). Each supported
 * op type has a handler in `OP_RULES` (in the style of onnxruntime-web's op-resolve-rules) that
 * appends to, or folds into, the layer list; each handler lists the attributes it understands, and
 * any other attribute is refused rather than ignored. Anything else is rejected with an
 * UnsupportedModelError naming the node and saying what to do (onnx-advice.ts).
 *
 * The import is structural; `importOnnxChecked` (onnx-check.ts) also runs the graph in onnxruntime
 * and compares every layer, which is what files given by users go through.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, TensorProto_DataType, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from 'onnx-buf';
import { LipcertError, UnsupportedModelError } from '../errors.js';
import {
  type Layer,
  type Network,
  type Shape,
  size,
  windowOutputSize,
} from './ir.js';
import {
  decodeTensor,
  type DecodedTensor,
  type ExternalDataDir,
  floatAttr,
  floatsAttr,
  intAttr,
  intsAttr,
  stringAttr,
  tensorAttr,
} from './onnx-tensors.js';
import { canFold, foldNode, reshapeTarget, SHAPE_ONLY_OPS } from './onnx-fold.js';
import { BRANCHING, nonMonotoneActivation, opAdvice } from './onnx-advice.js';

/** A zero Pad waiting to be folded into the next Conv or AveragePool's own padding. */
interface PendingPad {
  node: NodeProto;
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
  /** The shape before padding (ctx.shape holds the padded one meanwhile). */
  inputShape: Shape;
}

interface ImportContext {
  layers: Layer[];
  /** Shape of the current activation (no batch dimension). */
  shape: Shape;
  /** Initializers and Constant outputs, decoded lazily. */
  constant(name: string, node: NodeProto): DecodedTensor;
  isConstant(name: string): boolean;
  pendingPad?: PendingPad;
}

type OpHandler = (node: NodeProto, ctx: ImportContext) => void;

/** A handler and the attributes it reads; any other attribute on the node is refused. */
interface OpRule {
  handle: OpHandler;
  attributes: string[];
}

const nodeLabel = (node: NodeProto) => node.name || `${node.opType}(${node.output[0] ?? '?'})`;

function lastLayer(ctx: ImportContext): Layer | undefined {
  return ctx.layers[ctx.layers.length - 1];
}

/** The last layer if it is an affine map with bias that nothing (no ReLU) has followed yet. */
function openBiasLayer(ctx: ImportContext) {
  const last = lastLayer(ctx);
  return last && (last.kind === 'conv' || last.kind === 'dense') && !last.relu ? last : undefined;
}

function finiteWeights(node: NodeProto, what: string, data: Float32Array | Float64Array) {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      throw new UnsupportedModelError(`${what} holds a non-finite value (${data[i]}) at index ${i}`, nodeLabel(node));
    }
  }
}

function weightInput(node: NodeProto, ctx: ImportContext, index: number, what: string): DecodedTensor {
  const name = node.input[index];
  if (!name) throw new UnsupportedModelError(`missing ${what} input`, nodeLabel(node));
  if (!ctx.isConstant(name)) {
    throw new UnsupportedModelError(`${what} '${name}' is not an initializer or constant (only fixed weights are supported)`, nodeLabel(node));
  }
  const tensor = ctx.constant(name, node);
  finiteWeights(node, `${what} '${name}'`, tensor.data);
  return tensor;
}

function spatial(node: NodeProto, ctx: ImportContext): [number, number, number] {
  if (ctx.shape.length !== 3) {
    throw new UnsupportedModelError(`${node.opType} needs an image-shaped input [C,H,W], got [${ctx.shape}]`, nodeLabel(node));
  }
  return ctx.shape as [number, number, number];
}

function pair(node: NodeProto, name: string, fallback: [number, number]): [number, number] {
  const v = intsAttr(node, name);
  if (!v || v.length === 0) return fallback;
  if (v.length !== 2) throw new UnsupportedModelError(`attribute ${name}=[${v}] must have 2 entries (2-D only)`, nodeLabel(node));
  return [v[0], v[1]];
}

/** pads as [top, left, bottom, right] from the attribute or auto_pad. */
function padsOf(
  node: NodeProto,
  inHW: [number, number],
  kernel: [number, number],
  strides: [number, number],
  dilations: [number, number],
): [number, number, number, number] {
  const autoPad = stringAttr(node, 'auto_pad', 'NOTSET');
  if (autoPad === 'NOTSET') {
    const p = intsAttr(node, 'pads');
    if (!p || p.length === 0) return [0, 0, 0, 0];
    if (p.length !== 4) throw new UnsupportedModelError(`pads=[${p}] must have 4 entries`, nodeLabel(node));
    if (p.some((x) => x < 0)) throw new UnsupportedModelError(`negative pads [${p}] are not supported`, nodeLabel(node));
    return [p[0], p[1], p[2], p[3]];
  }
  if (autoPad === 'VALID') return [0, 0, 0, 0];
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const total = [0, 1].map((a) => {
      const out = Math.ceil(inHW[a] / strides[a]);
      return Math.max(0, (out - 1) * strides[a] + dilations[a] * (kernel[a] - 1) + 1 - inHW[a]);
    });
    const small = total.map((t) => Math.floor(t / 2));
    const large = total.map((t, a) => t - small[a]);
    return autoPad === 'SAME_UPPER' ? [small[0], small[1], large[0], large[1]] : [large[0], large[1], small[0], small[1]];
  }
  throw new UnsupportedModelError(`auto_pad=${autoPad} is not supported`, nodeLabel(node));
}

function convHandler(node: NodeProto, ctx: ImportContext) {
  const [c, h, w] = spatial(node, ctx);
  const weight = weightInput(node, ctx, 1, 'weight');
  if (weight.dims.length !== 4) throw new UnsupportedModelError(`only 2-D convolutions are supported (weight shape [${weight.dims}])`, nodeLabel(node));
  const [k, cPerGroup, kh, kw] = weight.dims;
  const group = intAttr(node, 'group', 1);
  if (cPerGroup * group !== c) {
    throw new UnsupportedModelError(`weight [${weight.dims}] with group ${group} expects ${cPerGroup * group} input channels, the input has ${c}`, nodeLabel(node));
  }
  if (k % group !== 0) throw new UnsupportedModelError(`${k} output channels are not divisible by group ${group}`, nodeLabel(node));
  const kernel = pair(node, 'kernel_shape', [kh, kw]);
  if (kernel[0] !== kh || kernel[1] !== kw) throw new UnsupportedModelError(`kernel_shape [${kernel}] disagrees with the weight [${weight.dims}]`, nodeLabel(node));
  const strides = pair(node, 'strides', [1, 1]);
  const dilations = pair(node, 'dilations', [1, 1]);
  const pads = padsOf(node, [h, w], kernel, strides, dilations);
  const ho = windowOutputSize(h, kh, strides[0], pads[0], pads[2], dilations[0]);
  const wo = windowOutputSize(w, kw, strides[1], pads[1], pads[3], dilations[1]);
  if (ho <= 0 || wo <= 0) throw new UnsupportedModelError(`output would be empty (${ho}×${wo})`, nodeLabel(node));
  const bias = node.input[2] ? weightInput(node, ctx, 2, 'bias') : null;
  if (bias && bias.data.length !== k) throw new UnsupportedModelError(`bias has ${bias.data.length} entries for ${k} channels`, nodeLabel(node));
  const folded = takePendingPad(ctx, [c, h, w], pads);
  ctx.layers.push({
    kind: 'conv',
    name: nodeLabel(node),
    relu: false,
    inputShape: folded.inputShape,
    outputShape: [k, ho, wo],
    weight: Float32Array.from(weight.data),
    bias: bias ? Float32Array.from(bias.data) : new Float32Array(k),
    kernel,
    strides,
    pads: folded.pads,
    dilations,
    group,
  });
  ctx.shape = [k, ho, wo];
}

/**
 * Folds a pending zero Pad into a window layer's own padding: a window over the padded tensor at
 * offset p equals a window over the original tensor with p more padding, and the output size
 * (input + pads − span)/stride + 1 is the same either way. For a convolution this is exact (its
 * padding is zeros); an average pool must also count those zeros (see averagePoolHandler).
 */
function takePendingPad(ctx: ImportContext, shape: Shape, pads: [number, number, number, number]) {
  const pending = ctx.pendingPad;
  if (!pending) return { inputShape: shape, pads };
  ctx.pendingPad = undefined;
  return { inputShape: pending.inputShape, pads: pads.map((p, i) => p + pending.pads[i]) as [number, number, number, number] };
}

function transpose2d(data: Float32Array | Float64Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let q = 0; q < cols; q++) out[q * rows + r] = data[r * cols + q];
  return out;
}

function pushDense(node: NodeProto, ctx: ImportContext, weight: Float32Array, outFeatures: number, bias: Float32Array) {
  const n = size(ctx.shape);
  ctx.layers.push({ kind: 'dense', name: nodeLabel(node), relu: false, inputShape: [n], outputShape: [outFeatures], weight, bias });
  ctx.shape = [outFeatures];
}

function requireVector(node: NodeProto, ctx: ImportContext) {
  if (ctx.shape.length !== 1) {
    throw new UnsupportedModelError(`${node.opType} needs a flat input; got shape [${ctx.shape}] (add a Flatten first)`, nodeLabel(node));
  }
  return ctx.shape[0];
}

/** Gemm: Y = alpha·op(A)·op(B) + beta·C, with either A or B the activation (as a row or column vector). */
function gemmHandler(node: NodeProto, ctx: ImportContext) {
  const n = requireVector(node, ctx);
  const alpha = floatAttr(node, 'alpha', 1);
  const beta = floatAttr(node, 'beta', 1);
  const transA = intAttr(node, 'transA', 0);
  const transB = intAttr(node, 'transB', 0);
  const activationFirst = !ctx.isConstant(node.input[0]);
  const w = weightInput(node, ctx, activationFirst ? 1 : 0, 'weight');
  if (w.dims.length !== 2) throw new UnsupportedModelError(`weight must be 2-D, got [${w.dims}]`, nodeLabel(node));
  const [r, q] = w.dims;
  let weight: Float32Array; // [out, in]
  let out: number;
  if (activationFirst) {
    // Y[1,m] = x[1,n]·op(B), op(B) is [n, m]: our W = op(B)ᵀ.
    const [bn, bm] = transB ? [q, r] : [r, q];
    if (bn !== n) throw new UnsupportedModelError(`weight [${w.dims}] (transB=${transB}) does not take ${n} inputs`, nodeLabel(node));
    weight = transB ? Float32Array.from(w.data) : transpose2d(w.data, r, q);
    out = bm;
  } else {
    // Y[m,1] = op(A)[m,n]·x[n,1]: our W = op(A).
    const [am, an] = transA ? [q, r] : [r, q];
    if (an !== n) throw new UnsupportedModelError(`weight [${w.dims}] (transA=${transA}) does not take ${n} inputs`, nodeLabel(node));
    weight = transA ? transpose2d(w.data, r, q) : Float32Array.from(w.data);
    out = am;
  }
  if (alpha !== 1) for (let i = 0; i < weight.length; i++) weight[i] *= alpha;
  const bias = new Float32Array(out);
  if (node.input[2]) {
    const c = weightInput(node, ctx, 2, 'bias');
    if (c.data.length !== out && c.data.length !== 1) throw new UnsupportedModelError(`bias of ${c.data.length} entries for ${out} outputs`, nodeLabel(node));
    for (let i = 0; i < out; i++) bias[i] = beta * c.data[c.data.length === 1 ? 0 : i];
  }
  pushDense(node, ctx, weight, out, bias);
}

/** MatMul x·W with a constant 2-D W (a bias, if any, comes from a following Add). */
function matMulHandler(node: NodeProto, ctx: ImportContext) {
  const n = requireVector(node, ctx);
  if (ctx.isConstant(node.input[0])) throw new UnsupportedModelError('MatMul with the weight first is not supported; use Gemm', nodeLabel(node));
  const w = weightInput(node, ctx, 1, 'weight');
  if (w.dims.length !== 2 || w.dims[0] !== n) throw new UnsupportedModelError(`weight [${w.dims}] does not take ${n} inputs`, nodeLabel(node));
  pushDense(node, ctx, transpose2d(w.data, w.dims[0], w.dims[1]), w.dims[1], new Float32Array(w.dims[1]));
}

/** Add of a constant directly after a conv or dense layer: folded into its bias. */
function addHandler(node: NodeProto, ctx: ImportContext) {
  const constantIndex = ctx.isConstant(node.input[1]) ? 1 : ctx.isConstant(node.input[0]) ? 0 : -1;
  if (constantIndex < 0) throw new UnsupportedModelError('Add of two computed tensors (a residual connection) is not a chain', nodeLabel(node));
  const layer = openBiasLayer(ctx);
  if (!layer) throw new UnsupportedModelError('Add of a constant is only supported as the bias of a directly preceding Conv, Gemm or MatMul', nodeLabel(node));
  const c = weightInput(node, ctx, constantIndex, 'addend');
  // Broadcasting aligns trailing axes: a per-channel bias of a conv is [K,1,1] (leading 1s allowed),
  // of a dense layer [m] or [1,m].
  const channels = layer.outputShape[0];
  const trailing = layer.kind === 'conv' ? [channels, 1, 1] : [channels];
  const dims = c.dims.slice();
  while (dims.length > trailing.length && dims[0] === 1) dims.shift();
  while (dims.length < trailing.length) dims.unshift(1);
  const isScalar = c.data.length === 1;
  if (!isScalar && !dims.every((d, i) => d === trailing[i])) {
    throw new UnsupportedModelError(`addend of shape [${c.dims}] is not a per-channel bias of ${channels} channels`, nodeLabel(node));
  }
  for (let i = 0; i < channels; i++) layer.bias[i] += c.data[isScalar ? 0 : i];
}

function reluHandler(node: NodeProto, ctx: ImportContext) {
  const last = lastLayer(ctx);
  if (last && (last.kind === 'conv' || last.kind === 'dense' || last.kind === 'avgpool' || last.kind === 'scale') && !last.relu) {
    last.relu = true;
    return;
  }
  ctx.layers.push({ kind: 'relu', name: nodeLabel(node), inputShape: ctx.shape, outputShape: ctx.shape });
}

function poolGeometry(node: NodeProto, ctx: ImportContext, dilationsAllowed: boolean) {
  const [c, h, w] = spatial(node, ctx);
  const kernel = pair(node, 'kernel_shape', [0, 0]);
  if (!(kernel[0] > 0 && kernel[1] > 0)) throw new UnsupportedModelError('kernel_shape is required', nodeLabel(node));
  const strides = pair(node, 'strides', [1, 1]);
  const dilations = dilationsAllowed ? pair(node, 'dilations', [1, 1]) : ([1, 1] as [number, number]);
  const pads = padsOf(node, [h, w], kernel, strides, dilations);
  const ceil = intAttr(node, 'ceil_mode', 0) === 1;
  const ho = windowOutputSize(h, kernel[0], strides[0], pads[0], pads[2], dilations[0], ceil);
  const wo = windowOutputSize(w, kernel[1], strides[1], pads[1], pads[3], dilations[1], ceil);
  if (ho <= 0 || wo <= 0) throw new UnsupportedModelError(`output would be empty (${ho}×${wo})`, nodeLabel(node));
  // ceil_mode is folded into the pads: extra bottom/right padding that never holds a window's max.
  const padBottom = Math.max(pads[2], (ho - 1) * strides[0] + dilations[0] * (kernel[0] - 1) + 1 - h - pads[0]);
  const padRight = Math.max(pads[3], (wo - 1) * strides[1] + dilations[1] * (kernel[1] - 1) + 1 - w - pads[1]);
  return { c, h, w, kernel, strides, dilations, pads: [pads[0], pads[1], padBottom, padRight] as [number, number, number, number], ho, wo, ceilPads: pads };
}

function maxPoolHandler(node: NodeProto, ctx: ImportContext) {
  if (node.output.length > 1 && node.output[1]) throw new UnsupportedModelError('MaxPool with an Indices output is not supported', nodeLabel(node));
  const g = poolGeometry(node, ctx, true);
  ctx.layers.push({
    kind: 'maxpool',
    name: nodeLabel(node),
    inputShape: [g.c, g.h, g.w],
    outputShape: [g.c, g.ho, g.wo],
    kernel: g.kernel,
    strides: g.strides,
    pads: g.pads,
    dilations: g.dilations,
  });
  ctx.shape = [g.c, g.ho, g.wo];
}

function averagePoolHandler(node: NodeProto, ctx: ImportContext) {
  const dilations = intsAttr(node, 'dilations') ?? [];
  if (dilations.some((d) => d !== 1)) {
    // The IR's average pool has no dilations yet (the backends' kernels would need them).
    throw new UnsupportedModelError(`AveragePool with dilations [${dilations}] (opset 19) is not supported yet; export the pool with dilations 1`, nodeLabel(node));
  }
  const g = poolGeometry(node, ctx, false);
  const declaredCountIncludePad = intAttr(node, 'count_include_pad', 0) === 1;
  const unit = (v: number[]) => v.every((x) => x === 1);
  if (!ctx.pendingPad && unit(g.kernel) && unit(g.strides) && g.pads.every((p) => p === 0)) {
    // torch.onnx.export's AdaptiveAvgPool2d where input and output sizes agree (AlexNet and VGG at
    // 224×224): a 1×1 window, the identity, L = 1. Nothing to add.
    return;
  }
  // A folded zero Pad's entries are real zeros to the AveragePool, always in the divisor; its own
  // padding counts only with count_include_pad=1. One flag can say both only when the pool has no
  // padding of its own or counts it too.
  const ownPads = g.ceilPads.some((p) => p > 0);
  if (ctx.pendingPad && ownPads && !declaredCountIncludePad) {
    throw new UnsupportedModelError(
      `the zero Pad '${nodeLabel(ctx.pendingPad.node)}' before this AveragePool (whose own pads are not counted, count_include_pad=0) cannot be folded into it; export the pool with its padding in one place (nn.AvgPool2d(padding=…))`,
      nodeLabel(node),
    );
  }
  const countIncludePad = declaredCountIncludePad || Boolean(ctx.pendingPad);
  if (countIncludePad && (g.pads[2] !== g.ceilPads[2] || g.pads[3] !== g.ceilPads[3])) {
    // ONNX counts only the declared pads (and a Pad's real zeros), not ceil_mode's overhang; we
    // cannot express the mix.
    throw new UnsupportedModelError('AveragePool with ceil_mode overhang and counted padding (count_include_pad=1 or a preceding Pad) is not supported; export with ceil_mode=False', nodeLabel(node));
  }
  const folded = takePendingPad(ctx, [g.c, g.h, g.w], g.pads);
  ctx.layers.push({
    kind: 'avgpool',
    name: nodeLabel(node),
    relu: false,
    inputShape: folded.inputShape,
    outputShape: [g.c, g.ho, g.wo],
    kernel: g.kernel,
    strides: g.strides,
    pads: folded.pads,
    countIncludePad,
  });
  ctx.shape = [g.c, g.ho, g.wo];
}

function globalAveragePoolHandler(node: NodeProto, ctx: ImportContext) {
  const [c, h, w] = spatial(node, ctx);
  ctx.layers.push({
    kind: 'avgpool',
    name: nodeLabel(node),
    relu: false,
    inputShape: [c, h, w],
    outputShape: [c, 1, 1],
    kernel: [h, w],
    strides: [1, 1],
    pads: [0, 0, 0, 0],
    countIncludePad: false,
  });
  ctx.shape = [c, 1, 1];
}

function pushFlatten(node: NodeProto, ctx: ImportContext) {
  if (ctx.shape.length === 1) return; // already flat: identity
  const n = size(ctx.shape);
  ctx.layers.push({ kind: 'flatten', name: nodeLabel(node), inputShape: ctx.shape, outputShape: [n] });
  ctx.shape = [n];
}

function flattenHandler(node: NodeProto, ctx: ImportContext) {
  const axis = intAttr(node, 'axis', 1);
  if (axis !== 1 && !(axis === -ctx.shape.length)) throw new UnsupportedModelError(`Flatten with axis=${axis} is not supported (only axis 1)`, nodeLabel(node));
  pushFlatten(node, ctx);
}

function reshapeHandler(node: NodeProto, ctx: ImportContext) {
  const target = weightInput(node, ctx, 1, 'shape');
  const dims = Array.from(target.data);
  const full = [1, ...ctx.shape]; // with the batch dimension
  const total = size(full);
  const withInferred = reshapeTarget(node, full, dims);
  const flatOk =
    (withInferred.length === 2 && withInferred[0] === 1 && withInferred[1] === total) ||
    (withInferred.length === 1 && withInferred[0] === total);
  if (flatOk) return pushFlatten(node, ctx);
  if (withInferred.length === full.length && withInferred.every((d, i) => d === full[i])) return; // identity
  throw new UnsupportedModelError(`Reshape from [${full}] to [${dims}] is not a flatten`, nodeLabel(node));
}

function batchNormHandler(node: NodeProto, ctx: ImportContext) {
  if (intAttr(node, 'training_mode', 0) !== 0) throw new UnsupportedModelError('BatchNormalization in training mode (batch statistics) is not supported; export the model in eval mode (model.eval())', nodeLabel(node));
  if (intAttr(node, 'spatial', 1) !== 1) throw new UnsupportedModelError('BatchNormalization with spatial=0 (per-position statistics) is not supported', nodeLabel(node));
  const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((i) => weightInput(node, ctx, i, ['scale', 'B', 'mean', 'var'][i - 1]).data);
  const epsilon = floatAttr(node, 'epsilon', 1e-5);
  const channels = ctx.shape[0];
  if ([gamma, beta, mean, variance].some((t) => t.length !== channels)) {
    throw new UnsupportedModelError(`parameters do not match ${channels} channels`, nodeLabel(node));
  }
  const scale = new Float32Array(channels);
  const shift = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    scale[c] = gamma[c] / Math.sqrt(variance[c] + epsilon);
    shift[c] = beta[c] - mean[c] * scale[c];
  }
  const prev = openBiasLayer(ctx);
  if (prev) {
    // Fold into the preceding conv/dense: W'_c = s_c W_c, b'_c = s_c b_c + t_c (output channel c).
    const perChannel = prev.weight.length / channels;
    for (let c = 0; c < channels; c++) {
      for (let i = 0; i < perChannel; i++) prev.weight[c * perChannel + i] *= scale[c];
      prev.bias[c] = prev.bias[c] * scale[c] + shift[c];
    }
    return;
  }
  ctx.layers.push({ kind: 'scale', name: nodeLabel(node), relu: false, inputShape: ctx.shape, outputShape: ctx.shape, scale, shift });
}

/**
 * A zero Pad (mode constant, value 0) on the spatial axes: kept pending and folded into the next
 * Conv or AveragePool (takePendingPad). Pads of any other kind change values in ways no layer here
 * expresses, and are refused.
 */
function padHandler(node: NodeProto, ctx: ImportContext) {
  const mode = stringAttr(node, 'mode', 'constant');
  const rank = ctx.shape.length + 1;
  let pads = node.input[1] ? Array.from(weightInput(node, ctx, 1, 'pads').data) : (intsAttr(node, 'pads') ?? []);
  const value = node.input[2] ? weightInput(node, ctx, 2, 'constant_value').data[0] ?? 0 : floatAttr(node, 'value', 0);
  if (node.input[3]) {
    // opset 18: pads for the listed axes only.
    const axes = Array.from(weightInput(node, ctx, 3, 'axes').data).map((a) => (a < 0 ? a + rank : a));
    const full = new Array(2 * rank).fill(0);
    axes.forEach((a, i) => {
      full[a] = pads[i];
      full[a + rank] = pads[i + axes.length];
    });
    pads = full;
  }
  if (pads.length !== 2 * rank) throw new UnsupportedModelError(`pads [${pads}] do not match an input of rank ${rank}`, nodeLabel(node));
  if (pads.every((p) => p === 0)) return; // the identity
  if (mode !== 'constant') {
    throw new UnsupportedModelError(`Pad mode '${mode}' is not supported: only zero padding, which folds into the next Conv or AveragePool (padding_mode='zeros' in torch)`, nodeLabel(node));
  }
  if (value !== 0) throw new UnsupportedModelError(`Pad with value ${value} is not supported: only zero padding, which folds into the next Conv or AveragePool`, nodeLabel(node));
  if (rank !== 4) throw new UnsupportedModelError(`Pad of a ${rank - 1}-D activation is not supported: only spatial padding of an image [C,H,W]`, nodeLabel(node));
  if (pads.some((p) => p < 0)) throw new UnsupportedModelError(`Pad with negative pads [${pads}] (cropping) is not supported`, nodeLabel(node));
  if (pads[0] || pads[1] || pads[4] || pads[5]) throw new UnsupportedModelError(`Pad of the batch or channel axis (pads [${pads}]) is not supported`, nodeLabel(node));
  const mine: [number, number, number, number] = [pads[2], pads[3], pads[6], pads[7]];
  const before = ctx.pendingPad;
  ctx.pendingPad = {
    node,
    pads: before ? (mine.map((p, i) => p + before.pads[i]) as [number, number, number, number]) : mine,
    inputShape: before ? before.inputShape : ctx.shape,
  };
  const [c, h, w] = ctx.shape;
  ctx.shape = [c, h + mine[0] + mine[2], w + mine[1] + mine[3]];
}

function dropoutHandler(node: NodeProto, ctx: ImportContext) {
  if (node.input[2] && ctx.isConstant(node.input[2]) && ctx.constant(node.input[2], node).data[0]) {
    throw new UnsupportedModelError('Dropout in training mode is random; export the model in eval mode (model.eval())', nodeLabel(node));
  }
}

const identity: OpHandler = () => {};

const WINDOW = ['auto_pad', 'kernel_shape', 'pads', 'strides'];

/** The op table: ONNX op type → handler and the attributes it understands. */
const OP_RULES: Record<string, OpRule> = {
  Conv: { handle: convHandler, attributes: [...WINDOW, 'dilations', 'group'] },
  Gemm: { handle: gemmHandler, attributes: ['alpha', 'beta', 'transA', 'transB'] },
  MatMul: { handle: matMulHandler, attributes: [] },
  Add: { handle: addHandler, attributes: [] },
  Relu: { handle: reluHandler, attributes: [] },
  MaxPool: { handle: maxPoolHandler, attributes: [...WINDOW, 'ceil_mode', 'dilations', 'storage_order'] },
  AveragePool: { handle: averagePoolHandler, attributes: [...WINDOW, 'ceil_mode', 'count_include_pad', 'dilations'] },
  GlobalAveragePool: { handle: globalAveragePoolHandler, attributes: [] },
  Flatten: { handle: flattenHandler, attributes: ['axis'] },
  Reshape: { handle: reshapeHandler, attributes: ['allowzero'] },
  BatchNormalization: { handle: batchNormHandler, attributes: ['epsilon', 'momentum', 'training_mode', 'spatial', 'is_test'] },
  Pad: { handle: padHandler, attributes: ['mode', 'pads', 'value'] },
  Dropout: { handle: dropoutHandler, attributes: ['ratio', 'seed', 'is_test'] },
  Identity: { handle: identity, attributes: [] },
};

/** Ops that may sit between a pending Pad and the Conv or AveragePool it folds into. */
const PAD_TRANSPARENT = new Set(['Pad', 'Conv', 'AveragePool', 'Identity', 'Dropout']);

function decodeModel(bytes: Uint8Array): ModelProto {
  let model: ModelProto;
  try {
    model = fromBinary(ModelProtoSchema, bytes);
  } catch (e) {
    throw new UnsupportedModelError(`not a valid ONNX file (${(e as Error).message})`);
  }
  if (!model.graph || model.graph.node.length === 0) throw new UnsupportedModelError('not a valid ONNX file: it holds no graph');
  return model;
}

/** Declared dims of a graph input or output (null for a symbolic one), or undefined when none are declared. */
function declaredDims(value: ValueInfoProto): { elemType: number; dims: (number | null)[] | undefined } {
  const tensorType = value.type?.value.case === 'tensorType' ? value.type.value.value : undefined;
  const dims = tensorType?.shape?.dim.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : null));
  return { elemType: tensorType?.elemType ?? TensorProto_DataType.UNDEFINED, dims };
}

/**
 * Whether ONNX dims (with a batch axis, symbolic ones null) describe the same tensor as a layer
 * shape (without one). Axes of size 1 and symbolic axes (the batch) are ignored, so [1,10], [10,1]
 * and [N,10] all match [10]; [1,3,2,2] does not match [3,3,3].
 */
export function sameShape(dims: (number | null)[], shape: Shape): boolean {
  const a = dims.filter((d) => d !== 1 && d !== null);
  const b = shape.filter((d) => d !== 1);
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function inputShapeOf(model: ModelProto, initializerNames: Set<string>): { name: string; shape: Shape } {
  const inputs = model.graph!.input.filter((i) => !initializerNames.has(i.name));
  if (inputs.length !== 1) throw new UnsupportedModelError(`the graph must have exactly one input, it has ${inputs.length}`);
  const input = inputs[0];
  const { elemType, dims: declared } = declaredDims(input);
  if (elemType !== TensorProto_DataType.FLOAT) throw new UnsupportedModelError(`input '${input.name}' must be a float32 tensor (data type ${elemType}); export the model with a float input`);
  const dims = declared ?? [];
  if (dims.length !== 4 && dims.length !== 2) {
    throw new UnsupportedModelError(`input '${input.name}' must have shape [N,C,H,W] or [N,F], got rank ${dims.length}`);
  }
  const shape = dims.map((d, i) => {
    if (d !== null) return d;
    if (i === 0) return 1; // symbolic batch size
    throw new UnsupportedModelError(`input '${input.name}' has a symbolic dimension at axis ${i}; export it with a fixed size`);
  });
  if (shape[0] !== 1) throw new UnsupportedModelError(`input '${input.name}' has batch size ${shape[0]}; export with batch size 1`);
  if (shape.some((d) => d <= 0)) throw new UnsupportedModelError(`input '${input.name}' has an empty dimension: [${shape}]`);
  return { name: input.name, shape: shape.slice(1) };
}

/** What the import found, for the cross-check against onnxruntime (onnx-check.ts). */
export interface ImportTrace {
  network: Network;
  model: ModelProto;
  /** For each layer, the ONNX tensor that holds its output (after any folded Add, BatchNormalization, Relu). */
  layerTensors: string[];
}

/**
 * Import an ONNX model held in memory. `baseDir` is where external tensor data files are found
 * (null when the model has no directory, e.g. an upload).
 */
export function importOnnx(bytes: Uint8Array, name = 'model', baseDir: ExternalDataDir = null): Network {
  return importOnnxTrace(bytes, name, baseDir).network;
}

/** importOnnx, also returning the decoded model and which ONNX tensor each layer's output is. */
export function importOnnxTrace(bytes: Uint8Array, name = 'model', baseDir: ExternalDataDir = null): ImportTrace {
  try {
    return importModel(decodeModel(bytes), name, baseDir);
  } catch (e) {
    if (e instanceof LipcertError) throw e;
    // An allocation the declared shapes made impossible, or a structure no check above names: the
    // file's fault either way, said in one sentence; the JavaScript error stays in `cause`.
    const message =
      e instanceof RangeError
        ? 'cannot import the model: its declared shapes are too large to hold in memory'
        : 'cannot import the model: it is malformed in a way the importer does not recognise';
    throw Object.assign(new UnsupportedModelError(message), { cause: e });
  }
}

/** A model file's bytes, the model's name (the file name) and its folder (for external data). */
export function readModelFile(file: string): { bytes: Uint8Array; name: string; baseDir: string } {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    throw new LipcertError('NOT_FOUND', `cannot read model file '${file}'`);
  }
  return { bytes, name: path.basename(file).replace(/\.onnx$/i, ''), baseDir: path.dirname(path.resolve(file)) };
}

export function importOnnxFile(file: string): Network {
  const { bytes, name, baseDir } = readModelFile(file);
  return importOnnx(bytes, name, baseDir);
}

const isDefaultDomain = (node: NodeProto) => !node.domain || node.domain === 'ai.onnx';

function importModel(model: ModelProto, name: string, baseDir: ExternalDataDir): ImportTrace {
  const graph = model.graph!;
  const initializers = new Map<string, TensorProto>(graph.initializer.map((t) => [t.name, t]));
  const { name: inputName, shape: inputShape } = inputShapeOf(model, new Set(initializers.keys()));
  const refused = nonMonotoneActivation(graph);
  if (refused) throw new UnsupportedModelError(refused.message, nodeLabel(refused.node));

  // Constant nodes: Constant, Shape/Size (of any tensor: its shape is static here), and foldable
  // ops whose inputs are all constant. Their values are computed on first use.
  const constantNodes = new Set<NodeProto>();
  const producerOf = new Map<string, NodeProto>();
  const isConstant = (n: string) => initializers.has(n) || producerOf.has(n);
  for (const node of graph.node) {
    const inputs = node.input.filter(Boolean);
    const constant =
      isDefaultDomain(node) &&
      (node.opType === 'Constant' || SHAPE_ONLY_OPS.has(node.opType) || (canFold(node.opType) && inputs.length > 0 && inputs.every(isConstant)));
    if (!constant) continue;
    constantNodes.add(node);
    for (const o of node.output) if (o) producerOf.set(o, node);
  }

  /** Shapes (batch 1 included) of the computed tensors met so far, for Shape nodes. */
  const shapes = new Map<string, number[]>([[inputName, [1, ...inputShape]]]);
  const values = new Map<string, DecodedTensor>();
  const valueOf = (n: string, reader: NodeProto): DecodedTensor => {
    const cached = values.get(n);
    if (cached) return cached;
    const init = initializers.get(n);
    if (init) {
      const tensor = decodeTensor(init, baseDir);
      values.set(n, tensor);
      return tensor;
    }
    const producer = producerOf.get(n);
    if (!producer) throw new UnsupportedModelError(`missing initializer '${n}'`, nodeLabel(reader));
    const inputName = (i: number) => {
      const x = producer.input[i];
      if (!x) throw new UnsupportedModelError(`missing input ${i}`, nodeLabel(producer));
      return x;
    };
    const outputs =
      producer.opType === 'Constant'
        ? [constantValue(producer, baseDir)]
        : foldNode(producer, {
            value: (i) => valueOf(inputName(i), producer),
            optional: (i) => (producer.input[i] ? valueOf(producer.input[i], producer) : undefined),
            shape: (i) => {
              const x = inputName(i);
              if (isConstant(x)) return valueOf(x, producer).dims;
              const known = shapes.get(x);
              if (!known) throw new UnsupportedModelError(`the shape of '${x}' is not known at import`, nodeLabel(producer));
              return known;
            },
          });
    producer.output.forEach((o, i) => {
      if (o && outputs[i]) values.set(o, outputs[i]);
    });
    const value = values.get(n);
    if (!value) throw new UnsupportedModelError(`output '${n}' was not computed`, nodeLabel(producer));
    return value;
  };

  const ctx: ImportContext = { layers: [], shape: inputShape, isConstant, constant: valueOf };

  // Which non-constant nodes read each tensor: a chain reads each activation exactly once.
  const readers = new Map<string, string[]>();
  for (const node of graph.node) {
    if (constantNodes.has(node)) continue;
    for (const i of node.input) if (i) readers.set(i, [...(readers.get(i) ?? []), nodeLabel(node)]);
  }

  const layerTensors: string[] = [];
  let current = inputName;
  for (const node of graph.node) {
    if (constantNodes.has(node)) continue;
    const label = nodeLabel(node);
    const activations = node.input.filter((i) => i && !isConstant(i));
    if (activations.length === 0) {
      throw new UnsupportedModelError(`${node.opType} reads only constants (inputs [${node.input}]) and lipcert cannot evaluate ${node.opType} at import`, label);
    }
    if (activations.length > 1) {
      throw new UnsupportedModelError(`${node.opType} combines ${activations.length} computed tensors (${activations.join(', ')}): ${BRANCHING}`, label);
    }
    if (activations[0] !== current) {
      const known = graph.node.some((n) => n.output.includes(activations[0])) || activations[0] === inputName;
      throw new UnsupportedModelError(known ? `reads '${activations[0]}' where the chain is at '${current}': ${BRANCHING}` : `missing initializer '${activations[0]}'`, label);
    }
    const consumers = readers.get(current) ?? [];
    if (consumers.length > 1) {
      throw new UnsupportedModelError(`tensor '${current}' feeds ${consumers.length} nodes (${consumers.join(', ')}): ${BRANCHING}`, label);
    }
    const rule = isDefaultDomain(node) ? OP_RULES[node.opType] : undefined;
    if (!rule) {
      const advice = isDefaultDomain(node) ? opAdvice(node.opType) : undefined;
      const op = `${node.domain ? node.domain + '.' : ''}${node.opType}`;
      throw new UnsupportedModelError(advice ?? `unsupported op ${op} (supported: ${Object.keys(OP_RULES).join(', ')})`, label);
    }
    const unknown = node.attribute.map((a) => a.name).filter((a) => !rule.attributes.includes(a));
    if (unknown.length > 0) {
      throw new UnsupportedModelError(`attribute${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} of ${node.opType} ${unknown.length > 1 ? 'are' : 'is'} not understood by the importer (refused rather than ignored)`, label);
    }
    if (ctx.pendingPad && !PAD_TRANSPARENT.has(node.opType)) {
      const why = node.opType === 'MaxPool' ? ' (zero padding is not max pooling\'s −∞ padding: give the MaxPool its own pads)' : '';
      throw new UnsupportedModelError(`a zero Pad folds only into a directly following Conv or AveragePool; here a ${node.opType} follows it${why}`, nodeLabel(ctx.pendingPad.node));
    }
    const extraOutputs = node.output.slice(1).filter((o) => o && readers.has(o));
    if (extraOutputs.length > 0) throw new UnsupportedModelError(`its extra outputs (${extraOutputs.join(', ')}) are used: ${BRANCHING}`, label);
    rule.handle(node, ctx);
    current = node.output[0];
    shapes.set(current, [1, ...ctx.shape]);
    // The tensor after a layer and whatever folds into it (bias, batch norm, ReLU, identities); a
    // pending Pad belongs to the next layer.
    if (!ctx.pendingPad && ctx.layers.length > 0) layerTensors[ctx.layers.length - 1] = current;
  }

  if (ctx.pendingPad) throw new UnsupportedModelError('the graph ends with a Pad: nothing follows it to fold into', nodeLabel(ctx.pendingPad.node));
  const outputs = graph.output.map((o) => o.name);
  if (outputs.length !== 1) throw new UnsupportedModelError(`the graph must have exactly one output, it has ${outputs.length}`);
  if (outputs[0] !== current) throw new UnsupportedModelError(`the graph output '${outputs[0]}' is not the end of the chain ('${current}')`);
  if (!ctx.layers.some((l) => l.kind === 'conv' || l.kind === 'dense')) throw new UnsupportedModelError('the model has no Conv, Gemm or MatMul layer');
  const declared = declaredDims(graph.output[0]).dims;
  if (declared && !sameShape(declared, ctx.shape)) {
    throw new UnsupportedModelError(
      `the graph declares output '${outputs[0]}' of shape [${declared.map((d) => d ?? '?')}], the imported layers compute [${ctx.shape}]: an op is not imported as the graph defines it`,
    );
  }
  const network: Network = { name, inputName, inputShape, outputShape: ctx.shape, layers: ctx.layers };
  return { network, model, layerTensors };
}

function constantValue(node: NodeProto, baseDir: ExternalDataDir): DecodedTensor {
  const t = tensorAttr(node, 'value');
  if (t) return decodeTensor(t, baseDir);
  const floats = floatsAttr(node, 'value_floats');
  if (floats && floats.length) return { dims: [floats.length], data: Float32Array.from(floats), isInteger: false };
  const ints = intsAttr(node, 'value_ints');
  if (ints && ints.length) return { dims: [ints.length], data: Float64Array.from(ints), isInteger: true };
  const f = node.attribute.find((a) => a.name === 'value_float');
  if (f) return { dims: [], data: Float32Array.of(f.f), isInteger: false };
  const i = node.attribute.find((a) => a.name === 'value_int');
  if (i) return { dims: [], data: Float64Array.of(Number(i.i)), isInteger: true };
  throw new UnsupportedModelError('Constant without a supported value attribute', nodeLabel(node));
}
