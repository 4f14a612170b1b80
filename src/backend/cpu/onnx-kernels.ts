/**
 * Convolution and large dense layers on the CPU through onnxruntime-node: each operation is a tiny
 * ONNX graph built in memory (onnx-builder.ts) around the layer's weights, one session per
 * (layer, operation), created on first use. Inputs and outputs have a batch dimension, symbolic for
 * blocks of vectors (one session, one copy of the weights, for any block size). A convolution applies A; ConvTranspose with the same
 * weights, strides, pads, dilations and groups applies Aᵀ (docs/method.md, "Computation at scale").
 *
 * Memory: the weights reach onnxruntime as in-memory external data (no protobuf copy on our side),
 * and dense layers' sessions skip weight pre-packing, so a session holds exactly one copy of its
 * weights (VGG-16's fc6 is 411 MB; pre-packing the Gemm and the MatMul of its Gram graph would add
 * two more). `sessionFootprint` estimates what a session holds, for the backend's session cache.
 */
import os from 'node:os';
import ort from 'onnxruntime-node';
import { type ConvLayer, type DenseLayer, multiplyAdds } from '../../model/ir.js';
import { create } from '@bufbuild/protobuf';
import {
  TensorProto_DataLocation,
  TensorProto_DataType,
  TensorProtoSchema,
  type NodeProto,
  type TensorProto,
} from 'onnx-buf';
import { externalDataEntries, modelBytes, node, valueInfo, type AttributeValue } from '../../model/onnx-builder.js';

export type OrtLayer = ConvLayer | DenseLayer;

const sessionOptions: ort.InferenceSession.SessionOptions = {
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
};

/**
 * Layers with fewer multiply-adds than this run on one onnxruntime thread: splitting ~0.1 ms of work
 * costs more in hand-offs than it saves (MNIST's convolutions: 86 k and 154 k multiply-adds).
 */
const PARALLEL_MIN_MACS = 1_000_000;


/**
 * The batch dimension of a session's inputs and outputs: 'B' (symbolic: one session serves blocks
 * of any size) or a fixed count.
 */
export type BatchDim = 'B' | number;

function batched(shape: number[], batch: BatchDim): (number | string)[] {
  return [batch, ...shape];
}

function convAttributes(layer: ConvLayer): Record<string, AttributeValue> {
  return {
    kernel_shape: layer.kernel,
    strides: layer.strides,
    pads: layer.pads,
    dilations: layer.dilations,
    group: layer.group,
  };
}

/** ConvTranspose attributes that make it the exact adjoint of the layer's convolution. */
function convTransposeAttributes(layer: ConvLayer): Record<string, AttributeValue> {
  const [, h, w] = layer.inputShape;
  const [, ho, wo] = layer.outputShape;
  const [kh, kw] = layer.kernel;
  const [sh, sw] = layer.strides;
  const [dh, dw] = layer.dilations;
  const [pt, pl, pb, pr] = layer.pads;
  const natural = (n: number, k: number, s: number, d: number, p0: number, p1: number) => s * (n - 1) + d * (k - 1) + 1 - p0 - p1;
  return {
    ...convAttributes(layer),
    output_padding: [h - natural(ho, kh, sh, dh, pt, pb), w - natural(wo, kw, sw, dw, pl, pr)],
  };
}

function squared(weight: Float32Array): Float32Array {
  return weight.map((v) => v * v);
}

/** The weight tensor in the layout the graph ops expect. */
function weightDims(layer: OrtLayer): number[] {
  if (layer.kind === 'conv') {
    const [k, c] = [layer.outputShape[0], layer.inputShape[0] / layer.group];
    return [k, c, layer.kernel[0], layer.kernel[1]];
  }
  return [layer.outputShape[0], layer.inputShape[0]];
}

/** A node applying A (no bias) from `input` to `output` with weight initializer `weightName`. */
function linearNode(layer: OrtLayer, input: string, output: string, weightName: string): NodeProto {
  return layer.kind === 'conv'
    ? node('Conv', [input, weightName], [output], convAttributes(layer))
    : node('Gemm', [input, weightName], [output], { transB: 1 });
}

/** A node applying Aᵀ. */
function transposeNode(layer: OrtLayer, input: string, output: string, weightName: string): NodeProto {
  return layer.kind === 'conv'
    ? node('ConvTranspose', [input, weightName], [output], convTransposeAttributes(layer))
    : node('MatMul', [input, weightName], [output]);
}

/** An initializer whose data onnxruntime reads from the in-memory file `file` (no protobuf copy). */
function externalTensor(name: string, dims: number[], data: Float32Array, file: string): TensorProto {
  return create(TensorProtoSchema, {
    name,
    dims: dims.map(BigInt),
    dataType: TensorProto_DataType.FLOAT,
    dataLocation: TensorProto_DataLocation.EXTERNAL,
    externalData: externalDataEntries(file, 0, data.byteLength),
  });
}

async function session(layer: OrtLayer, threads: number, bytes: Uint8Array, file: string, weights: Float32Array): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions & { externalData: { path: string; data: Uint8Array }[] } = {
    ...sessionOptions,
    intraOpNumThreads: multiplyAdds(layer) < PARALLEL_MIN_MACS ? 1 : threads,
    externalData: [{ path: file, data: new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength) }],
    // Idle pool threads sleep instead of spinning: between two session calls Lanczos does its vector
    // work on this thread, and a spinning pool thread takes the other core of a 2-core machine
    // (MNIST's local bound: 27 ms with spinning, 7 ms without).
    // A GEMV gains nothing from a packed copy of the weights; a convolution's packed filter is small.
    extra: { session: { intra_op: { allow_spinning: '0' }, ...(layer.kind === 'dense' ? { disable_prepacking: '1' } : {}) } },
  };
  return ort.InferenceSession.create(bytes, options);
}

export type OrtOperation = 'linear' | 'transpose' | 'rowNormsSquared' | 'gram';

/**
 * Build the session for one operation of one layer; `threads` is the most onnxruntime threads a call
 * may use (layers under PARALLEL_MIN_MACS use one).
 */
export async function createLayerSession(layer: OrtLayer, op: OrtOperation, batch: BatchDim, threads = os.availableParallelism()): Promise<ort.InferenceSession> {
  const inShape = batched(layer.kind === 'conv' ? layer.inputShape : [layer.inputShape[0]], batch);
  const outShape = batched(layer.kind === 'conv' ? layer.outputShape : [layer.outputShape[0]], batch);
  const dims = weightDims(layer);
  const W = externalTensor('W', dims, layer.weight, 'W.bin');
  switch (op) {
    case 'linear':
      return session(layer, threads, modelBytes({ nodes: [linearNode(layer, 'x', 'y', 'W')], initializers: [W], inputs: [valueInfo('x', inShape)], outputs: [valueInfo('y', outShape)] }), 'W.bin', layer.weight);
    case 'transpose':
      return session(layer, threads, modelBytes({ nodes: [transposeNode(layer, 'u', 'x', 'W')], initializers: [W], inputs: [valueInfo('u', outShape)], outputs: [valueInfo('x', inShape)] }), 'W.bin', layer.weight);
    case 'rowNormsSquared': {
      // r² = conv2d(mask, W⊙W) or (W⊙W)·mask: one pass, never basis vectors.
      const w2 = squared(layer.weight);
      const W2 = externalTensor('W2', dims, w2, 'W2.bin');
      return session(layer, threads, modelBytes({ nodes: [linearNode(layer, 'mask', 'r2', 'W2')], initializers: [W2], inputs: [valueInfo('mask', inShape)], outputs: [valueInfo('r2', outShape)] }), 'W2.bin', w2);
    }
    case 'gram':
      // out = D Aᵀ Λ² A D x, with D ('d') and Λ² ('l2') as inputs so one session serves every eps.
      return session(
        layer,
        threads,
        modelBytes({
          nodes: [
            node('Mul', ['x', 'd'], ['xd']),
            linearNode(layer, 'xd', 'y', 'W'),
            node('Mul', ['y', 'l2'], ['yl']),
            transposeNode(layer, 'yl', 'z', 'W'),
            node('Mul', ['z', 'd'], ['out']),
          ],
          initializers: [W],
          inputs: [valueInfo('x', inShape), valueInfo('d', inShape), valueInfo('l2', outShape)],
          outputs: [valueInfo('out', inShape)],
        }),
        'W.bin',
        layer.weight,
      );
  }
}

/** Floats one vector passes through in a call: inputs, outputs, and the Gram graph's intermediates. */
function vectorFloats(layer: OrtLayer, op: OrtOperation): number {
  const n = layer.inputShape.reduce((a, b) => a * b, 1);
  const m = layer.outputShape.reduce((a, b) => a * b, 1);
  return op === 'gram' ? 4 * n + 2 * m : n + m;
}

/**
 * Bytes a session holds, roughly: its copy of the weights and the arena for its intermediate
 * tensors (inputs, outputs, the Gram graph's four intermediates, and a convolution's im2col buffer)
 * for calls of up to `count` vectors.
 */
export function sessionFootprint(layer: OrtLayer, op: OrtOperation, count = 1): number {
  const m = layer.outputShape.reduce((a, b) => a * b, 1);
  const columns = layer.kind === 'conv' ? (layer.inputShape[0] / layer.group) * layer.kernel[0] * layer.kernel[1] * (m / layer.outputShape[0]) : 0;
  return 4 * (layer.weight.length + count * (vectorFloats(layer, op) + columns));
}

/**
 * Bytes of tensors one session call should touch at most; larger blocks are split into calls of
 * about this much. A block per call pays the call's overhead once and reuses each weight across
 * the block, but on convolutions the CPU time per vector stops falling after a few vectors per
 * call (CIFAR-10's: flat from 4–8 vectors, 1.0–1.4× below one vector; bench "operator
 * throughput"), while a call's arena grows with its block: at ImageNet scale 16 vectors of the
 * Gram graph would hold gigabytes. Dense layers' vectors are small, so their blocks stay whole.
 */
export const CALL_WORKING_SET_BYTES = 4 * 2 ** 20;

/** [first, count] of the session calls that serve `count` vectors: near-equal parts within CALL_WORKING_SET_BYTES. */
export function callChunks(layer: OrtLayer, op: OrtOperation, count: number): [number, number][] {
  const perCall = Math.max(1, Math.floor(CALL_WORKING_SET_BYTES / (4 * vectorFloats(layer, op))));
  const calls = Math.ceil(count / perCall);
  const size = Math.ceil(count / calls);
  const chunks: [number, number][] = [];
  for (let first = 0; first < count; first += size) chunks.push([first, Math.min(size, count - first)]);
  return chunks;
}

/** `count` vectors of `shape`, one after another in `data`, as a [count, ...shape] tensor (no copy). */
export function tensor(data: Float32Array, shape: number[], count = 1): ort.Tensor {
  return new ort.Tensor('float32', data, [count, ...shape]);
}

export async function runSingle(s: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const result = await s.run(feeds);
  const out = result[s.outputNames[0]];
  return out.data as Float32Array;
}

export const ortVersion: string = (ort.env as { versions?: { common?: string } }).versions?.common ?? 'unknown';
