/**
 * Reading ONNX TensorProtos and node attributes: raw_data (little-endian, possibly unaligned),
 * typed *_data fields, and external data files relative to the model. Decoding of the protobuf itself
 * is done by `onnx-buf` (@bufbuild/protobuf); this file only interprets the decoded messages.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { AttributeProto, NodeProto, TensorProto } from 'onnx-buf';
import { TensorProto_DataLocation, TensorProto_DataType } from 'onnx-buf';
import { UnsupportedModelError } from '../errors.js';

export interface DecodedTensor {
  dims: number[];
  /** Float tensors as float32; integer tensors as float64 (exact for the sizes we meet). */
  data: Float32Array | Float64Array;
  isInteger: boolean;
}

/** Where external tensor data is looked up; null when the model came as bytes with no directory. */
export type ExternalDataDir = string | null;

function bytesOf(tensor: TensorProto, baseDir: ExternalDataDir): Uint8Array | null {
  if (tensor.dataLocation === TensorProto_DataLocation.EXTERNAL) {
    const entries = new Map(tensor.externalData.map((e) => [e.key, e.value]));
    const location = entries.get('location');
    if (!location) throw new UnsupportedModelError(`external data of '${tensor.name}' has no location`);
    if (baseDir === null) {
      throw new UnsupportedModelError(
        `tensor '${tensor.name}' is stored in external file '${location}': import the model from a file path so the data can be found`,
      );
    }
    const file = path.resolve(baseDir, location);
    if (!file.startsWith(path.resolve(baseDir) + path.sep)) {
      throw new UnsupportedModelError(`external data location '${location}' points outside the model's folder`);
    }
    let buffer: Buffer;
    try {
      buffer = fs.readFileSync(file);
    } catch {
      throw new UnsupportedModelError(`external data file '${location}' of tensor '${tensor.name}' cannot be read`);
    }
    const offset = Number(entries.get('offset') ?? 0);
    const length = entries.has('length') ? Number(entries.get('length')) : buffer.length - offset;
    if (!(offset >= 0 && length >= 0 && offset + length <= buffer.length)) {
      throw new UnsupportedModelError(`external data of '${tensor.name}' is truncated (offset ${offset}, length ${length})`);
    }
    return new Uint8Array(buffer.buffer, buffer.byteOffset + offset, length);
  }
  return tensor.rawData.length > 0 ? tensor.rawData : null;
}

const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/** Bytes per element of the data types we read, by the field that holds them when not raw. */
const ELEMENT_BYTES: Record<number, number> = {
  [TensorProto_DataType.FLOAT]: 4,
  [TensorProto_DataType.DOUBLE]: 8,
  [TensorProto_DataType.INT64]: 8,
  [TensorProto_DataType.INT32]: 4,
};

function storedValues(tensor: TensorProto): number {
  switch (tensor.dataType) {
    case TensorProto_DataType.FLOAT:
      return tensor.floatData.length;
    case TensorProto_DataType.DOUBLE:
      return tensor.doubleData.length;
    case TensorProto_DataType.INT64:
      return tensor.int64Data.length;
    case TensorProto_DataType.INT32:
      return tensor.int32Data.length;
    default:
      return 0;
  }
}

/**
 * Decodes a tensor. Its declared shape is checked against the data it holds before anything is
 * allocated, so a few bytes declaring a huge shape are refused, not allocated.
 */
export function decodeTensor(tensor: TensorProto, baseDir: ExternalDataDir): DecodedTensor {
  const dims = tensor.dims.map(Number);
  const bytesPerElement = ELEMENT_BYTES[tensor.dataType];
  if (bytesPerElement === undefined) {
    throw new UnsupportedModelError(`tensor '${tensor.name}' has data type ${tensor.dataType}; only float, double, int32 and int64 are supported`);
  }
  if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new UnsupportedModelError(`tensor '${tensor.name}' has an invalid shape [${dims}]`);
  const count = dims.reduce((a, b) => a * b, 1);
  const raw = bytesOf(tensor, baseDir);
  const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : null;
  if (view && view.byteLength !== count * bytesPerElement) {
    throw new UnsupportedModelError(`tensor '${tensor.name}' holds ${view.byteLength} bytes where its shape [${dims}] needs ${count * bytesPerElement}`);
  }
  if (!view && storedValues(tensor) !== count) {
    throw new UnsupportedModelError(`tensor '${tensor.name}' holds ${storedValues(tensor)} values where its shape [${dims}] needs ${count}`);
  }
  switch (tensor.dataType) {
    case TensorProto_DataType.FLOAT: {
      const data = new Float32Array(count);
      if (view && raw) {
        if (LITTLE_ENDIAN) new Uint8Array(data.buffer).set(raw); // one copy, alignment-free
        else for (let i = 0; i < count; i++) data[i] = view.getFloat32(4 * i, true);
      } else data.set(tensor.floatData);
      return { dims, data, isInteger: false };
    }
    case TensorProto_DataType.DOUBLE: {
      const data = new Float32Array(count);
      if (view) for (let i = 0; i < count; i++) data[i] = view.getFloat64(8 * i, true);
      else data.set(tensor.doubleData);
      return { dims, data, isInteger: false };
    }
    case TensorProto_DataType.INT64: {
      const data = new Float64Array(count);
      if (view) for (let i = 0; i < count; i++) data[i] = Number(view.getBigInt64(8 * i, true));
      else tensor.int64Data.forEach((v, i) => (data[i] = Number(v)));
      return { dims, data, isInteger: true };
    }
    default: {
      const data = new Float64Array(count);
      if (view) for (let i = 0; i < count; i++) data[i] = view.getInt32(4 * i, true);
      else data.set(tensor.int32Data);
      return { dims, data, isInteger: true };
    }
  }
}

function attribute(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

export function intsAttr(node: NodeProto, name: string): number[] | undefined {
  const a = attribute(node, name);
  return a ? a.ints.map(Number) : undefined;
}

export function intAttr(node: NodeProto, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a ? Number(a.i) : fallback;
}

export function floatAttr(node: NodeProto, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a ? a.f : fallback;
}

export function stringAttr(node: NodeProto, name: string, fallback: string): string {
  const a = attribute(node, name);
  return a ? new TextDecoder().decode(a.s) : fallback;
}

export function tensorAttr(node: NodeProto, name: string): TensorProto | undefined {
  return attribute(node, name)?.t;
}

export function floatsAttr(node: NodeProto, name: string): number[] | undefined {
  return attribute(node, name)?.floats;
}
