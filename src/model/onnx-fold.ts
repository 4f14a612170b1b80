/**
 * Constant folding at import: the value of a node whose inputs are all known before any input
 * arrives (initializers, Constant outputs, other folded nodes, and the static shape of a computed
 * tensor read by `Shape`). torch.onnx.export writes such subgraphs for de-duplicated biases
 * (`Identity` of an initializer), dynamic-batch flattens (`Shape`→`Gather`→`Unsqueeze`→`Concat`→
 * `Reshape`), `ConstantOfShape` and `Cast` of shape arithmetic. Semantics follow the ONNX operator
 * specification (https://onnx.ai/onnx/operators/); integers are held as float64, exact below 2^53.
 * An op not listed in `FOLDERS` cannot be folded and is refused by the importer with its name.
 */
import type { NodeProto } from 'onnx-buf';
import { TensorProto_DataType } from 'onnx-buf';
import { UnsupportedModelError } from '../errors.js';
import { decodeTensor, type DecodedTensor, intAttr, intsAttr, tensorAttr } from './onnx-tensors.js';

/** What a folder can ask about its node's inputs. */
export interface FoldInputs {
  /** The value of input `index` (throws if the input is absent or not constant). */
  value(index: number): DecodedTensor;
  /** The value of input `index`, or undefined when the input is absent (an optional input). */
  optional(index: number): DecodedTensor | undefined;
  /** The shape (batch 1 included) of input `index`, constant or computed. */
  shape(index: number): number[];
}

type Folder = (node: NodeProto, inputs: FoldInputs) => DecodedTensor[];

const label = (node: NodeProto) => node.name || `${node.opType}(${node.output[0] ?? '?'})`;

function fail(node: NodeProto, message: string): never {
  throw new UnsupportedModelError(`cannot evaluate this constant ${node.opType} at import: ${message}`, label(node));
}

function count(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function stridesOf(dims: number[]): number[] {
  const strides = new Array<number>(dims.length);
  let s = 1;
  for (let a = dims.length - 1; a >= 0; a--) {
    strides[a] = s;
    s *= dims[a];
  }
  return strides;
}

function tensorOf(dims: number[], values: ArrayLike<number>, isInteger: boolean): DecodedTensor {
  return { dims, data: isInteger ? Float64Array.from(values) : Float32Array.from(values), isInteger };
}

/** Truncation toward zero as an integer type holds it (no −0). */
const truncate = (v: number) => Math.trunc(v) + 0;

function integers(t: DecodedTensor): number[] {
  return Array.from(t.data);
}

/** An axis in [−rank, rank) as [0, rank). */
function normaliseAxis(node: NodeProto, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!(a >= 0 && a < rank)) fail(node, `axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Numpy-style multidirectional broadcasting of two shapes. */
function broadcastShape(node: NodeProto, a: number[], b: number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const pa = [...new Array(rank - a.length).fill(1), ...a];
  const pb = [...new Array(rank - b.length).fill(1), ...b];
  return pa.map((d, i) => {
    if (d === pb[i] || pb[i] === 1) return d;
    if (d === 1) return pb[i];
    return fail(node, `shapes [${a}] and [${b}] do not broadcast`);
  });
}

/**
 * For each entry of a row-major tensor of shape `dims`, the source index Σ_a offset(a, coordinate a)
 * (transpose, slice and broadcasting are each one choice of `offset`).
 */
function sourceIndices(dims: number[], offset: (axis: number, coordinate: number) => number): Int32Array {
  const strides = stridesOf(dims);
  const result = new Int32Array(count(dims));
  for (let i = 0; i < result.length; i++) {
    let rest = i;
    let index = 0;
    for (let a = 0; a < dims.length; a++) {
      const coordinate = Math.floor(rest / strides[a]);
      rest -= coordinate * strides[a];
      index += offset(a, coordinate);
    }
    result[i] = index;
  }
  return result;
}

/** Index into `dims` (right-aligned with `out`, size-1 axes repeating) of each entry of `out`. */
function broadcastIndex(dims: number[], out: number[]): Int32Array {
  const padded = [...new Array(out.length - dims.length).fill(1), ...dims];
  const inStrides = stridesOf(padded);
  return sourceIndices(out, (a, c) => (padded[a] === 1 ? 0 : c * inStrides[a]));
}

/** The entries of x at `indices`, as a tensor of shape `dims`. */
function pick(x: DecodedTensor, dims: number[], indices: Int32Array): DecodedTensor {
  return tensorOf(dims, Array.from(indices, (i) => x.data[i]), x.isInteger);
}

function elementwise(op: (x: number, y: number, integer: boolean) => number): Folder {
  return (node, inputs) => {
    const a = inputs.value(0);
    const b = inputs.value(1);
    const integer = a.isInteger && b.isInteger;
    const dims = broadcastShape(node, a.dims, b.dims);
    const ia = broadcastIndex(a.dims, dims);
    const ib = broadcastIndex(b.dims, dims);
    const out = new Float64Array(count(dims));
    for (let i = 0; i < out.length; i++) out[i] = op(a.data[ia[i]], b.data[ib[i]], integer);
    return [tensorOf(dims, out, integer)];
  };
}

const FLOAT_TYPES = new Set<number>([TensorProto_DataType.FLOAT, TensorProto_DataType.DOUBLE, TensorProto_DataType.FLOAT16, TensorProto_DataType.BFLOAT16]);
const INTEGER_TYPES = new Set<number>([
  TensorProto_DataType.INT64, TensorProto_DataType.INT32, TensorProto_DataType.INT16, TensorProto_DataType.INT8,
  TensorProto_DataType.UINT64, TensorProto_DataType.UINT32, TensorProto_DataType.UINT16, TensorProto_DataType.UINT8,
  TensorProto_DataType.BOOL,
]);

function cast(node: NodeProto, inputs: FoldInputs): DecodedTensor[] {
  const x = inputs.value(0);
  const to = intAttr(node, 'to', -1);
  if (FLOAT_TYPES.has(to)) return [tensorOf(x.dims, x.data, false)];
  if (to === TensorProto_DataType.BOOL) return [tensorOf(x.dims, Array.from(x.data, (v) => (v !== 0 ? 1 : 0)), true)];
  if (INTEGER_TYPES.has(to)) return [tensorOf(x.dims, Array.from(x.data, truncate), true)];
  return fail(node, `cast to data type ${to} is not supported`);
}

function constantOfShape(node: NodeProto, inputs: FoldInputs): DecodedTensor[] {
  const dims = integers(inputs.value(0));
  if (dims.some((d) => !(Number.isInteger(d) && d >= 0))) fail(node, `shape [${dims}] is not a list of sizes`);
  const proto = tensorAttr(node, 'value');
  const value = proto ? decodeTensor(proto, null) : { dims: [1], data: Float32Array.of(0), isInteger: false };
  if (value.data.length !== 1) fail(node, 'its value attribute must hold one element');
  return [tensorOf(dims, new Float64Array(count(dims)).fill(value.data[0]), value.isInteger)];
}

function shape(node: NodeProto, inputs: FoldInputs): DecodedTensor[] {
  const dims = inputs.shape(0);
  const rank = dims.length;
  const clamp = (v: number) => Math.min(rank, Math.max(0, v < 0 ? v + rank : v));
  const start = clamp(intAttr(node, 'start', 0));
  const end = clamp(intAttr(node, 'end', rank));
  const kept = dims.slice(start, Math.max(start, end));
  return [tensorOf([kept.length], kept, true)];
}

function size(_node: NodeProto, inputs: FoldInputs): DecodedTensor[] {
  return [tensorOf([], [count(inputs.shape(0))], true)];
}

function gather(node: NodeProto, inputs: FoldInputs): DecodedTensor[] {
  const data = inputs.value(0);
  const indices = inputs.value(1);
  const rank = data.dims.length;
  if (rank === 0) fail(node, 'data must have rank ≥ 1');
  const axis = normaliseAxis(node, intAttr(node, 'axis', 0), rank);
  const n = data.dims[axis];
  const outer = count(data.dims.slice(0, axis));
  const inner = count(data.dims.slice(axis + 1));
  const picks = integers(indices).map((i) => {
    const j = i < 0 ? i + n : i;
    if (!(j >= 0 && j < n)) fail(node, `index ${i} is out of range for axis ${axis} of size ${n}`);
    return j;
  });
  const out: number[] = [];
  for (let o = 0; o < outer; o++) for (const j of picks) for (let k = 0; k < inner; k++) out.push(data.data[(o * n + j) * inner + k]);
  const dims = [...data.dims.slice(0, axis), ...indices.dims, ...data.dims.slice(axis + 1)];
  return [tensorOf(dims, out, data.isInteger)];
}

/** The axes of Unsqueeze/Squeeze/ReduceX: an input from opset 13, an attribute before. */
function axesOf(node: NodeProto, inputs: FoldInputs): number[] | undefined {
  const fromInput = inputs.optional(1);
  return fromInput ? integers(fromInput) : intsAttr(node, 'axes');
}

function unsqueeze(node: NodeProto, inputs: FoldInputs): DecodedTensor[] {
  const x = inputs.value(0);
  const axes = axesOf(node, inputs);
  if (!axes || axes.length === 0) fail(node, 'axes are required');
  const rank = x.dims.length + axes.length;
  const positions = new Set(axes.map((a) => normaliseAxis(node, a, rank)));
  if (positions.size !== axes.length) fail(node, `axes [${axes}] repeat`);
  const dims: number[] = [];
  let source = 0;
  for (let a = 0; a < rank; a++) dims.push(positions.has(a) ? 1 : x.dims[source++]);
  return [{ ...x, dims }];
}

function squeeze(node: NodeProto, inputs: FoldInputs): DecodedTensor[] {
  const x = inputs.value(0);
  const axes = axesOf(node, inputs);
  const drop = new Set(axes && axes.length ? axes.map((a) => normaliseAxis(node, a, x.dims.length)) : x.dims.flatMap((d, a) => (d === 1 ? [a] : [])));
  for (const a of drop) if (x.dims[a] !== 1) fail(node, `axis ${a} has size ${x.dims[a]}, not 1`);
  return [{ ...x, dims: x.dims.filter((_, a) => !drop.has(a)) }];
}

function concat(node: NodeProto, inputs: FoldInputs): DecodedTensor[] {
  const parts = node.input.map((_, i) => inputs.value(i));
  const rank = parts[0].dims.length;
  const axis = normaliseAxis(node, intAttr(node, 'axis', 0), rank);
  for (const p of parts) {
    if (p.dims.length !== rank || p.dims.some((d, a) => a !== axis && d !== parts[0].dims[a])) fail(node, `inputs of shapes ${parts.map((q) => `[${q.dims}]`).join(', ')} do not concatenate on axis ${axis}`);
  }
  const outer = count(parts[0].dims.slice(0, axis));
  const out: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (const p of parts) {
      const block = count(p.dims.slice(axis));
      for (let k = 0; k < block; k++) out.push(p.data[o * block + k]);
    }
  }
  const dims = parts[0].dims.slice();
  dims[axis] = parts.reduce((s, p) => s + p.dims[axis], 0);
  return [tensorOf(dims, out, parts.every((p) => p.isInteger))];
}

/** The target of a Reshape: 0 copies the input's size (unless allowzero), −1 is inferred. */
export function reshapeTarget(node: NodeProto, from: number[], target: number[]): number[] {
  const allowZero = intAttr(node, 'allowzero', 0) === 1;
  const resolved = target.map((d, i) => (d === 0 && !allowZero ? from[i] : d));
  if (resolved.filter((d) => d === -1).length > 1) fail(node, `shape [${target}] has more than one −1`);
  const known = resolved.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const total = count(from);
  const inferred = resolved.map((d) => (d === -1 ? total / known : d));
  if (inferred.some((d) => !(Number.isInteger(d) && d >= 0)) || count(inferred) !== total) {
    throw new UnsupportedModelError(`Reshape of [${from}] to [${target}] does not preserve the ${total} elements`, label(node));
  }
  return inferred;
}

function reshape(node: NodeProto, inputs: FoldInputs): DecodedTensor[] {
  const x = inputs.value(0);
  return [{ ...x, dims: reshapeTarget(node, x.dims, integers(inputs.value(1))) }];
}

function transpose(node: NodeProto, inputs: FoldInputs): DecodedTensor[] {
  const x = inputs.value(0);
  const rank = x.dims.length;
  const perm = intsAttr(node, 'perm') ?? x.dims.map((_, a) => rank - 1 - a);
  if (perm.length !== rank || new Set(perm).size !== rank || perm.some((p) => p < 0 || p >= rank)) fail(node, `perm [${perm}] is not a permutation of ${rank} axes`);
  const dims = perm.map((p) => x.dims[p]);
  const inStrides = stridesOf(x.dims);
  return [pick(x, dims, sourceIndices(dims, (a, c) => c * inStrides[perm[a]]))];
}

function slice(node: NodeProto, inputs: FoldInputs): DecodedTensor[] {
  const x = inputs.value(0);
  const rank = x.dims.length;
  const fromInputs = node.input.length > 1;
  const starts = fromInputs ? integers(inputs.value(1)) : (intsAttr(node, 'starts') ?? []);
  const ends = fromInputs ? integers(inputs.value(2)) : (intsAttr(node, 'ends') ?? []);
  const axesInput = fromInputs ? inputs.optional(3) : undefined;
  const axes = (axesInput ? integers(axesInput) : fromInputs ? undefined : intsAttr(node, 'axes')) ?? starts.map((_, i) => i);
  const stepsInput = fromInputs ? inputs.optional(4) : undefined;
  const steps = stepsInput ? integers(stepsInput) : starts.map(() => 1);
  if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length) fail(node, 'starts, ends, axes and steps differ in length');
  // Per axis: the kept indices (ONNX clamping rules for out-of-range starts and ends).
  const kept = x.dims.map((d) => Array.from({ length: d }, (_, i) => i));
  starts.forEach((s, i) => {
    const a = normaliseAxis(node, axes[i], rank);
    const d = x.dims[a];
    const step = steps[i];
    if (step === 0) fail(node, 'a step of 0');
    const clampTo = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v < 0 ? v + d : v));
    const [lo, hi] = step > 0 ? [0, d] : [-1, d - 1];
    const from = clampTo(s, lo, hi);
    const to = clampTo(ends[i], lo, hi);
    const picks: number[] = [];
    for (let j = from; step > 0 ? j < to : j > to; j += step) picks.push(j);
    kept[a] = picks;
  });
  const dims = kept.map((k) => k.length);
  const inStrides = stridesOf(x.dims);
  return [pick(x, dims, sourceIndices(dims, (a, c) => kept[a][c] * inStrides[a]))];
}

const FOLDERS: Record<string, Folder> = {
  Identity: (_node, inputs) => [inputs.value(0)],
  Cast: cast,
  ConstantOfShape: constantOfShape,
  Shape: shape,
  Size: size,
  Gather: gather,
  Unsqueeze: unsqueeze,
  Squeeze: squeeze,
  Concat: concat,
  Reshape: reshape,
  Transpose: transpose,
  Slice: slice,
  Add: elementwise((x, y) => x + y),
  Sub: elementwise((x, y) => x - y),
  Mul: elementwise((x, y) => x * y),
  Div: elementwise((x, y, integer) => (integer ? truncate(x / y) : x / y)),
  Neg: (_node, inputs) => {
    const x = inputs.value(0);
    return [tensorOf(x.dims, Array.from(x.data, (v) => (x.isInteger ? 0 - v : -v)), x.isInteger)];
  },
  Sqrt: (_node, inputs) => {
    const x = inputs.value(0);
    return [tensorOf(x.dims, Array.from(x.data, Math.sqrt), false)];
  },
};

/** Ops whose output depends only on their input's shape, so they fold even on a computed tensor. */
export const SHAPE_ONLY_OPS = new Set(['Shape', 'Size']);

export function canFold(opType: string): boolean {
  return opType in FOLDERS;
}

/** The outputs of a constant node, in the order of node.output. */
export function foldNode(node: NodeProto, inputs: FoldInputs): DecodedTensor[] {
  const folder = FOLDERS[node.opType];
  if (!folder) fail(node, 'the op has no constant evaluation here');
  if (node.domain && node.domain !== 'ai.onnx') fail(node, `domain '${node.domain}' is not supported`);
  return folder(node, inputs);
}
