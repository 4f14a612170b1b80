/**
 * Constant folding (src/model/onnx-fold.ts) against onnxruntime's own evaluation of the same node:
 * each case is one node on initializer inputs, run as a one-node model in onnxruntime and folded
 * by `foldNode`; values, shapes and integer-ness must agree exactly.
 */
import { create } from '@bufbuild/protobuf';
import ort from 'onnxruntime-node';
import { TensorProto_DataType, TensorProtoSchema, type NodeProto, type TensorProto, ValueInfoProtoSchema } from 'onnx-buf';
import { UnsupportedModelError } from '../../src/errors.js';
import { foldNode } from '../../src/model/onnx-fold.js';
import { floatTensor, int64Tensor, modelBytes, node } from '../../src/model/onnx-builder.js';
import { decodeTensor, type DecodedTensor } from '../../src/model/onnx-tensors.js';

const f = (name: string, dims: number[], data: number[]) => floatTensor(name, dims, data);
const i64 = (name: string, dims: number[], data: number[]) => int64Tensor(name, dims, data);
const seq = (n: number, scale = 1) => Array.from({ length: n }, (_, i) => (i - n / 3) * scale);

interface Case {
  label: string;
  node: NodeProto;
  inputs: TensorProto[];
  opset?: number;
}

const cases: Case[] = [
  { label: 'Identity of a float initializer', node: node('Identity', ['a'], ['y']), inputs: [f('a', [2, 3], seq(6, 0.5))] },
  { label: 'Cast float → int64 truncates toward zero', node: node('Cast', ['a'], ['y'], { to: TensorProto_DataType.INT64 }), inputs: [f('a', [5], [-2.7, -0.5, 0, 1.5, 3.9])] },
  { label: 'Cast int64 → float', node: node('Cast', ['a'], ['y'], { to: TensorProto_DataType.FLOAT }), inputs: [i64('a', [3], [-4, 0, 7])] },
  { label: 'ConstantOfShape, default value 0', node: node('ConstantOfShape', ['s'], ['y']), inputs: [i64('s', [3], [2, 1, 3])] },
  {
    label: 'ConstantOfShape with an int64 value',
    node: node('ConstantOfShape', ['s'], ['y'], { value: { tensor: create(TensorProtoSchema, { dims: [1n], dataType: TensorProto_DataType.INT64, int64Data: [5n] }) } }),
    inputs: [i64('s', [2], [2, 2])],
  },
  { label: 'Shape of a constant, with start and end', node: node('Shape', ['a'], ['y'], { start: 1, end: -1 }), inputs: [f('a', [2, 3, 4, 5], seq(120))], opset: 15 },
  { label: 'Size', node: node('Size', ['a'], ['y']), inputs: [f('a', [2, 3, 4], seq(24))] },
  { label: 'Gather on axis 0 with a scalar index', node: node('Gather', ['a', 'i'], ['y'], { axis: 0 }), inputs: [i64('a', [4], [1, 3, 224, 224]), i64('i', [], [0])] },
  { label: 'Gather on axis 1 with negative indices', node: node('Gather', ['a', 'i'], ['y'], { axis: 1 }), inputs: [f('a', [2, 4, 3], seq(24)), i64('i', [2, 2], [-1, 0, 2, -3])] },
  { label: 'Unsqueeze (axes as input, opset 13)', node: node('Unsqueeze', ['a', 'ax'], ['y']), inputs: [f('a', [3, 2], seq(6)), i64('ax', [2], [0, -1])], opset: 13 },
  { label: 'Unsqueeze (axes as attribute, opset 11)', node: node('Unsqueeze', ['a'], ['y'], { axes: [0, 2] }), inputs: [i64('a', [2], [7, 8])], opset: 11 },
  { label: 'Squeeze of all size-1 axes', node: node('Squeeze', ['a'], ['y']), inputs: [f('a', [1, 3, 1, 2], seq(6))] },
  { label: 'Concat on axis 0 of int64 shapes', node: node('Concat', ['a', 'b'], ['y'], { axis: 0 }), inputs: [i64('a', [1], [1]), i64('b', [1], [-1])] },
  { label: 'Concat on axis −1 of floats', node: node('Concat', ['a', 'b'], ['y'], { axis: -1 }), inputs: [f('a', [2, 2], seq(4)), f('b', [2, 3], seq(6, 2))] },
  { label: 'Reshape with 0 and −1', node: node('Reshape', ['a', 's'], ['y']), inputs: [f('a', [2, 3, 4], seq(24)), i64('s', [3], [0, -1, 2])] },
  { label: 'Transpose with a permutation', node: node('Transpose', ['a'], ['y'], { perm: [2, 0, 1] }), inputs: [f('a', [2, 3, 4], seq(24))] },
  { label: 'Transpose without perm (reversed axes)', node: node('Transpose', ['a'], ['y']), inputs: [f('a', [3, 5], seq(15))] },
  {
    label: 'Slice with axes, negative start and step',
    node: node('Slice', ['a', 'st', 'en', 'ax', 'sp'], ['y']),
    inputs: [f('a', [4, 6], seq(24)), i64('st', [2], [-1, 1]), i64('en', [2], [-100, 100]), i64('ax', [2], [1, 0]), i64('sp', [2], [-2, 2])],
  },
  { label: 'Slice (attributes, opset 9)', node: node('Slice', ['a'], ['y'], { starts: [1], ends: [3], axes: [0] }), inputs: [i64('a', [4], [1, 3, 8, 8])], opset: 9 },
  { label: 'Add with broadcasting', node: node('Add', ['a', 'b'], ['y']), inputs: [f('a', [2, 1, 3], seq(6)), f('b', [4, 1], seq(4, 0.25))] },
  { label: 'Sub of int64', node: node('Sub', ['a', 'b'], ['y']), inputs: [i64('a', [3], [5, 0, -2]), i64('b', [], [3])] },
  { label: 'Mul of floats (rounded to float32)', node: node('Mul', ['a', 'b'], ['y']), inputs: [f('a', [3], [0.1, 1 / 3, 7.7]), f('b', [3], [3, 0.3, 1e-3])] },
  { label: 'Div of int64 truncates toward zero', node: node('Div', ['a', 'b'], ['y']), inputs: [i64('a', [4], [7, -7, 6, 1]), i64('b', [4], [2, 2, -4, 3])] },
  { label: 'Div of int64 with a negative quotient above −1 gives 0', node: node('Div', ['a', 'b'], ['y']), inputs: [i64('a', [2], [-1, 1]), i64('b', [2], [3, -3])] },
  { label: 'Neg', node: node('Neg', ['a'], ['y']), inputs: [i64('a', [3], [2, 0, -5])] },
  { label: 'Sqrt', node: node('Sqrt', ['a'], ['y']), inputs: [f('a', [3], [0, 2, 9])] },
];

async function onnxruntimeValue(c: Case): Promise<{ dims: number[]; data: number[]; type: string }> {
  // A graph with no input: its node reads initializers only. Output type left for onnxruntime to infer.
  const bytes = modelBytes({
    nodes: [c.node],
    initializers: c.inputs,
    inputs: [],
    outputs: [create(ValueInfoProtoSchema, { name: 'y' })],
    opset: c.opset ?? 17,
  });
  const session = await ort.InferenceSession.create(bytes);
  try {
    const y = (await session.run({}))['y'];
    return { dims: [...y.dims], data: Array.from(y.data as ArrayLike<number | bigint>, Number), type: y.type };
  } finally {
    await session.release();
  }
}

function folded(c: Case): DecodedTensor {
  const values = new Map(c.inputs.map((t) => [t.name, decodeTensor(t, null)]));
  const value = (i: number) => values.get(c.node.input[i])!;
  return foldNode(c.node, { value, optional: (i) => (c.node.input[i] ? value(i) : undefined), shape: (i) => value(i).dims })[0];
}

test.each(cases)('$label', async (c) => {
  const theirs = await onnxruntimeValue(c);
  const ours = folded(c);
  expect(ours.dims).toEqual(theirs.dims);
  expect(Array.from(ours.data)).toEqual(theirs.data);
  expect(ours.isInteger).toBe(theirs.type !== 'float32');
});

test('an op without a folder, and out-of-range indices, are refused with the node named', () => {
  const range = node('Range', ['a', 'b', 'c'], ['y'], {}, 'range');
  expect(() => foldNode(range, { value: () => ({ dims: [], data: Float64Array.of(1), isInteger: true }), optional: () => undefined, shape: () => [] })).toThrow(
    /node 'range': cannot evaluate this constant Range at import/,
  );
  const c: Case = { label: '', node: node('Gather', ['a', 'i'], ['y'], {}, 'gather'), inputs: [i64('a', [2], [1, 2]), i64('i', [], [2])] };
  expect(() => folded(c)).toThrow(UnsupportedModelError);
  expect(() => folded(c)).toThrow(/index 2 is out of range/);
});
