/**
 * Building ONNX models in memory (with onnx-buf): the small graphs the CPU backend hands to
 * onnxruntime (a convolution, its transpose, the Gram operator of one layer), model export, and the
 * tests' hand-made networks.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  StringStringEntryProtoSchema,
  TensorProto_DataType,
  TensorProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type NodeProto,
  type StringStringEntryProto,
  type TensorProto,
  type ValueInfoProto,
} from 'onnx-buf';

export type AttributeValue = number | number[] | string | { float: number } | { floats: number[] } | { tensor: TensorProto };

export function attribute(name: string, value: AttributeValue): AttributeProto {
  const T = AttributeProto_AttributeType;
  if (typeof value === 'number') return create(AttributeProtoSchema, { name, type: T.INT, i: BigInt(value) });
  if (Array.isArray(value)) return create(AttributeProtoSchema, { name, type: T.INTS, ints: value.map(BigInt) });
  if (typeof value === 'string') return create(AttributeProtoSchema, { name, type: T.STRING, s: new TextEncoder().encode(value) });
  if ('float' in value) return create(AttributeProtoSchema, { name, type: T.FLOAT, f: value.float });
  if ('floats' in value) return create(AttributeProtoSchema, { name, type: T.FLOATS, floats: value.floats });
  return create(AttributeProtoSchema, { name, type: T.TENSOR, t: value.tensor });
}

export function node(opType: string, inputs: string[], outputs: string[], attributes: Record<string, AttributeValue> = {}, name = ''): NodeProto {
  return create(NodeProtoSchema, {
    opType,
    name,
    input: inputs,
    output: outputs,
    attribute: Object.entries(attributes).map(([k, v]) => attribute(k, v)),
  });
}

/** A float initializer in raw_data; a Float32Array is referenced, not copied. */
export function floatTensor(name: string, dims: number[], data: ArrayLike<number>): TensorProto {
  const f32 = data instanceof Float32Array ? data : Float32Array.from(data);
  return create(TensorProtoSchema, {
    name,
    dims: dims.map(BigInt),
    dataType: TensorProto_DataType.FLOAT,
    rawData: new Uint8Array(f32.buffer as ArrayBuffer, f32.byteOffset, f32.byteLength),
  });
}

/** The external_data entries of a tensor stored in `location` at `offset`, `length` bytes long. */
export function externalDataEntries(location: string, offset: number, length: number): StringStringEntryProto[] {
  return [
    create(StringStringEntryProtoSchema, { key: 'location', value: location }),
    create(StringStringEntryProtoSchema, { key: 'offset', value: String(offset) }),
    create(StringStringEntryProtoSchema, { key: 'length', value: String(length) }),
  ];
}

export function int64Tensor(name: string, dims: number[], data: number[]): TensorProto {
  return create(TensorProtoSchema, { name, dims: dims.map(BigInt), dataType: TensorProto_DataType.INT64, int64Data: data.map(BigInt) });
}

/** A float tensor value with fixed dims; a string dim is symbolic. */
export function valueInfo(name: string, dims: (number | string)[]): ValueInfoProto {
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: {
        case: 'tensorType',
        value: create(TypeProto_TensorSchema, {
          elemType: TensorProto_DataType.FLOAT,
          shape: create(TensorShapeProtoSchema, {
            dim: dims.map((d) =>
              create(TensorShapeProto_DimensionSchema, {
                value: typeof d === 'number' ? { case: 'dimValue', value: BigInt(d) } : { case: 'dimParam', value: d },
              }),
            ),
          }),
        }),
      },
    }),
  });
}

export interface GraphSpec {
  nodes: NodeProto[];
  initializers?: TensorProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  name?: string;
  opset?: number;
}

export function modelBytes(spec: GraphSpec): Uint8Array {
  const graph = create(GraphProtoSchema, {
    name: spec.name ?? 'graph',
    node: spec.nodes,
    initializer: spec.initializers ?? [],
    input: spec.inputs,
    output: spec.outputs,
  });
  const model = create(ModelProtoSchema, {
    irVersion: 8n,
    producerName: 'lipcert',
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(spec.opset ?? 13) })],
    graph,
  });
  return toBinary(ModelProtoSchema, model);
}
