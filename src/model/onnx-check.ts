/**
 * The import cross-check: a model given by a user is certified only if the imported layer list
 * computes what the ONNX graph computes. onnxruntime runs the original graph, with each layer's
 * output tensor added as a graph output, on probe inputs (a seeded standard normal input of the
 * declared shape and x = 0, batch 1); every layer of the import is then applied by the engine's own
 * CPU backend (bounds/nominal.ts `applyLayer`) to onnxruntime's inputs of that layer (its one
 * input, or the several of an Add or Concat) and compared with onnxruntime's output of it. The first layer whose shape or values
 * differ beyond float32 rounding rejects the model with UNSUPPORTED_MODEL, naming the layer.
 *
 * Tolerance (a bound on rounding, not a guess). Each output of an affine layer is a float32 sum of
 * k products plus a bias; in any order, with or without FMA, |fl(Σ) − Σ| ≤ γ_k Σ|w_m z_m| with
 * γ_k = k·u/(1 − k·u), u = 2⁻²⁴ (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed.,
 * §3.1). Two evaluations of the same exact value differ by at most twice that; k + 4 instead of k
 * covers the bias add, the average pool's division and the roundings of folded BatchNorm, Gemm
 * alpha/beta and bias folds. Σ|w_m z_m| ≤ √k·(Σ w_m² z_m²)^½ by Cauchy–Schwarz, and the backend's
 * row norms of z² give the latter. So output j may differ by
 *     2·γ_{k+4}·(√k·‖w_j ⊙ z‖₂ + |b_j|) + k·2⁻¹⁴⁸   (the last term: underflow),
 * and max pooling, flatten, Concat, ReLU and Clip must agree exactly. An Add of k tensors may differ
 * by 2·γ_{k+1}·Σ_j|x_j|; an activation passes a pre-activation bound on times its sup|σ'| and adds
 * its own evaluation (LeakyReLU/PReLU: one rounded product each side; sigmoid and tanh:
 * SMOOTH_ACTIVATION_TOLERANCE for onnxruntime's approximations). Comparing layer by layer from onnxruntime's
 * own input keeps the bound local: an end-to-end bound would compound the per-layer ones through
 * |W| and be useless for deep networks. A wrong op (ignored dilations, the wrong pooling divisor, a
 * misread attribute) changes outputs by orders of magnitude more than this bound.
 * The end-to-end difference of the logits (the engine's whole forward pass against onnxruntime) is
 * reported, not tested: it is the propagated rounding of layers that each passed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import ort from 'onnxruntime-node';
import { GraphProtoSchema, ModelProtoSchema, TensorProto_DataLocation, ValueInfoProtoSchema, type ModelProto } from 'onnx-buf';
import { createCpuBackend } from '../backend/cpu/index.js';
import type { Backend } from '../backend/backend.js';
import { applyLayer, nominalPass } from '../bounds/nominal.js';
import { activationName, activationOf, type AnyActivation, applyScalar, globalSlope, scalarActivations } from './activations.js';
import { UnsupportedModelError } from '../errors.js';
import { inputsOf, isAffine, type Layer, type Network, size } from './ir.js';
import { importOnnxTrace, type ImportTrace, readModelFile, sameShape } from './onnx-import.js';
import type { ExternalDataDir } from './onnx-tensors.js';
import { SeededRandom } from './zoo/random.js';

const UNIT_ROUNDOFF = 2 ** -24;
const SMALLEST_NORMAL_HALF = 2 ** -148;

/** γ_k of Higham's error analysis. */
export function gamma(k: number): number {
  return (k * UNIT_ROUNDOFF) / (1 - k * UNIT_ROUNDOFF);
}

export interface ProbeReport {
  /** 'random:SEED' (a standard normal input) or 'zero'. */
  probe: string;
  /** Largest |engine − onnxruntime| over the logits of the engine's whole forward pass. */
  logitDifference: number;
  /** Largest |logit| of onnxruntime, the scale of that difference. */
  logitScale: number;
  /** Largest ratio of a layer's difference to its rounding bound (≤ 1 when the probe passed). */
  worstRatio: number;
}

export interface ImportCheck {
  layers: number;
  probes: ProbeReport[];
  seconds: number;
}

export interface CheckOptions {
  /** Seed of the random probe (default 0). */
  seed?: number;
  /** The CPU backend to check with, kept open (default: a fresh one, disposed after). */
  backend?: Backend;
}

/** Multiply-adds per output of an affine layer (k of the error bound). */
function termsPerOutput(layer: Layer): number {
  switch (layer.kind) {
    case 'conv':
      return layer.weight.length / layer.outputShape[0];
    case 'dense':
      return layer.inputShape[0];
    case 'avgpool':
      return layer.kernel[0] * layer.kernel[1];
    default:
      return 1;
  }
}

/** |bias| of output j of an affine layer, per channel for images. */
function biasMagnitudes(layer: Layer, outputs: number): Float32Array {
  const out = new Float32Array(outputs);
  const bias = layer.kind === 'conv' || layer.kind === 'dense' ? layer.bias : layer.kind === 'scale' ? layer.shift : null;
  if (!bias) return out;
  const perChannel = outputs / bias.length;
  for (let j = 0; j < outputs; j++) out[j] = Math.abs(bias[Math.floor(j / perChannel)]);
  return out;
}

/** Per-output rounding bound of one layer applied to z (zeros where the layer must be exact). */
export async function roundingBound(layer: Layer, z: Float32Array, backend: Backend): Promise<Float64Array> {
  const outputs = size(layer.outputShape);
  const bound = new Float64Array(outputs);
  if (!isAffine(layer)) return bound;
  const k = termsPerOutput(layer);
  const g = 2 * gamma(k + 4);
  const rowNorms = await backend.rowNormsSquared(layer, z.map((v) => v * v));
  const bias = biasMagnitudes(layer, outputs);
  for (let j = 0; j < outputs; j++) {
    const magnitude = Math.sqrt(k) * Math.sqrt(Math.max(0, rowNorms[j])) * (1 + gamma(k)) + bias[j];
    bound[j] = g * magnitude + k * SMALLEST_NORMAL_HALF;
  }
  return bound;
}

function describe(index: number, layer: Layer, tensor: string): string {
  const activation = activationOf(layer);
  const suffix = activation && layer.kind !== 'relu' && layer.kind !== 'activation' ? `+${activationName(activation)}` : layer.kind === 'activation' ? ` ${activationName(activation!)}` : '';
  return `layer ${index} (${layer.kind}${suffix}, ONNX tensor '${tensor}')`;
}

const fmt = (v: number) => (v === 0 || (Math.abs(v) >= 1e-3 && Math.abs(v) < 1e6) ? String(Number(v.toPrecision(6))) : v.toExponential(3));

/**
 * The model as onnxruntime should run it: the original bytes followed by a ModelProto holding only
 * the extra graph outputs. Protobuf merges a repeated embedded message field (graph) and appends its
 * repeated fields (graph.output), so this is the original graph with more outputs, without
 * re-encoding the weights (https://protobuf.dev/programming-guides/encoding/#last-one-wins).
 */
function withOutputs(bytes: Uint8Array, names: string[]): Uint8Array {
  const extra = toBinary(
    ModelProtoSchema,
    create(ModelProtoSchema, { graph: create(GraphProtoSchema, { output: names.map((name) => create(ValueInfoProtoSchema, { name })) }) }),
  );
  const merged = new Uint8Array(bytes.byteLength + extra.byteLength);
  merged.set(bytes);
  merged.set(extra, bytes.byteLength);
  return merged;
}

/** External data files the model names, read from its folder, for onnxruntime's in-memory loading. */
function externalFiles(model: ModelProto, baseDir: ExternalDataDir): { path: string; data: Uint8Array }[] {
  const locations = new Set<string>();
  for (const t of model.graph!.initializer) {
    if (t.dataLocation !== TensorProto_DataLocation.EXTERNAL) continue;
    const location = t.externalData.find((e) => e.key === 'location')?.value;
    if (location) locations.add(location);
  }
  if (locations.size === 0 || baseDir === null) return [];
  // importOnnxTrace has already checked that each location is readable and inside baseDir.
  return [...locations].map((location) => ({ path: location, data: fs.readFileSync(path.resolve(baseDir, location)) }));
}

/** onnxruntime's value of every listed tensor, for each probe. */
async function runOriginal(
  trace: ImportTrace,
  bytes: Uint8Array,
  baseDir: ExternalDataDir,
  probes: Float32Array[],
): Promise<{ values: Map<string, { dims: readonly number[]; data: Float32Array }>[]; output: string }> {
  const { network, model, layerTensors } = trace;
  const output = model.graph!.output[0].name;
  const extra = [...new Set(layerTensors)].filter((t) => t !== output);
  const options = {
    graphOptimizationLevel: 'all',
    interOpNumThreads: 1,
    externalData: externalFiles(model, baseDir),
    // No pre-packed copies of the weights: the session runs twice (VGG-11: 13 s instead of 22 s to
    // create, 0.5 GB less memory, on a loaded 2-core machine).
    extra: { session: { intra_op: { allow_spinning: '0' }, disable_prepacking: '1' } },
  } as ort.InferenceSession.SessionOptions;
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(withOutputs(bytes, extra), options);
  } catch (e) {
    throw new UnsupportedModelError(`onnxruntime cannot load the model to check the import (${(e as Error).message.split('\n')[0]})`);
  }
  try {
    const values = [];
    for (const probe of probes) {
      let result: ort.InferenceSession.ReturnType;
      try {
        result = await session.run({ [network.inputName]: new ort.Tensor('float32', probe, [1, ...network.inputShape]) });
      } catch (e) {
        throw new UnsupportedModelError(`onnxruntime cannot run the model to check the import (${(e as Error).message.split('\n')[0]})`);
      }
      const named = new Map<string, { dims: readonly number[]; data: Float32Array }>();
      for (const name of [...extra, output]) {
        const tensor = result[name];
        if (tensor.type !== 'float32') throw new UnsupportedModelError(`tensor '${name}' is ${tensor.type} in onnxruntime, not float32`);
        named.set(name, { dims: tensor.dims, data: Float32Array.from(tensor.data as Float32Array) });
      }
      values.push(named);
    }
    return { values, output };
  } finally {
    await session.release();
  }
}

/**
 * How far onnxruntime's Sigmoid and Tanh may be from the exact function, absolute (their outputs
 * lie in [−1, 1]): MLAS evaluates both by rational approximations accurate to a few float32 ulp;
 * 2⁻¹⁸ ≈ 4e-6 leaves a wide margin and is still far below what a wrong op changes.
 */
export const SMOOTH_ACTIVATION_TOLERANCE = 2 ** -18;

/**
 * The bound on the outputs of an activation given a bound `pre` on how far the two pre-activations
 * may differ: σ is K-Lipschitz (K = sup|σ'|), plus each side's evaluation of σ — exact for ReLU and
 * Clip, one rounded product for LeakyReLU/PReLU, an approximation for sigmoid and tanh.
 */
export function activationBound(activation: AnyActivation, shape: number[], y: Float32Array, pre: Float64Array): Float64Array {
  if (activation.kind === 'relu' || activation.kind === 'clip') return pre;
  const unit = scalarActivations(activation, shape);
  const slope = globalSlope(activation);
  return pre.map((e, j) => {
    const a = unit(j);
    const own = a.kind === 'leakyrelu' ? 2 * UNIT_ROUNDOFF * Math.abs(applyScalar(a, y[j])) + SMALLEST_NORMAL_HALF : SMOOTH_ACTIVATION_TOLERANCE;
    return slope * e + own;
  });
}

/** Per-output bound on |ours − onnxruntime| for one layer applied to the same inputs `read`. */
async function layerBound(layer: Layer, read: Float32Array[], input: Float32Array, preActivation: Float32Array | null, backend: Backend): Promise<Float64Array> {
  let bound: Float64Array;
  if (layer.kind === 'add') {
    // Two float32 sums of k terms, any order: each within γ_{k−1}·Σ|x_j| of the exact sum.
    const k = read.length;
    bound = new Float64Array(size(layer.outputShape));
    for (const x of read) for (let j = 0; j < bound.length; j++) bound[j] += Math.abs(x[j]);
    const g = 2 * gamma(k + 1);
    for (let j = 0; j < bound.length; j++) bound[j] = g * bound[j] + k * SMALLEST_NORMAL_HALF;
  } else {
    bound = await roundingBound(layer, input, backend); // zeros where the layer must be exact
  }
  const activation = activationOf(layer);
  if (!activation) return bound;
  return activationBound(activation, layer.outputShape, preActivation ?? input, bound);
}

/** The first layer that differs on this probe, as an error; or the worst difference/bound ratio. */
async function compareLayers(
  trace: ImportTrace,
  probe: Float32Array,
  probeName: string,
  values: Map<string, { dims: readonly number[]; data: Float32Array }>,
  backend: Backend,
): Promise<number> {
  const { network, layerTensors } = trace;
  let worst = 0;
  for (let i = 0; i < network.layers.length; i++) {
    const layer = network.layers[i];
    const tensor = layerTensors[i];
    const reference = values.get(tensor)!;
    const where = describe(i, layer, tensor);
    if (!sameShape([...reference.dims], layer.outputShape)) {
      throw new UnsupportedModelError(
        `the import differs from the ONNX graph at ${where}: onnxruntime computes shape [${reference.dims}], the import [${layer.outputShape}]; the model is refused rather than certified wrongly (please report it)`,
        layer.name,
      );
    }
    // The engine's own forward pass, on this layer alone, from onnxruntime's inputs to it.
    const read = inputsOf(network, i).map((j) => (j < 0 ? probe : values.get(layerTensors[j])!.data));
    const { input, preActivation, output: ours } = await applyLayer(backend, layer, read);
    const bound = await layerBound(layer, read, input, preActivation, backend);
    for (let j = 0; j < ours.length; j++) {
      const theirs = reference.data[j];
      if (!Number.isFinite(theirs)) {
        throw new UnsupportedModelError(`onnxruntime computes a non-finite value at ${where} on the ${probeName} probe: the network overflows float32`, layer.name);
      }
      const difference = Math.abs(ours[j] - theirs);
      if (!(difference <= bound[j])) {
        throw new UnsupportedModelError(
          `the import differs from the ONNX graph at ${where}: output ${j} is ${fmt(ours[j])} where onnxruntime gives ${fmt(theirs)} on the ${probeName} probe (float32 rounding allows ${fmt(bound[j])}); the model is refused rather than certified wrongly (please report it)`,
          layer.name,
        );
      }
      if (bound[j] > 0) worst = Math.max(worst, difference / bound[j]);
    }
  }
  return worst;
}

/**
 * Check an import against onnxruntime running the original graph (see the file header). Throws an
 * UnsupportedModelError naming the first layer that differs; returns what was compared.
 */
export async function checkImport(trace: ImportTrace, bytes: Uint8Array, baseDir: ExternalDataDir = null, options: CheckOptions = {}): Promise<ImportCheck> {
  const started = performance.now();
  const { network } = trace;
  const seed = options.seed ?? 0;
  const n = size(network.inputShape);
  const probes = [
    { name: `random:${seed}`, x: new SeededRandom(seed).fillNormal(new Float32Array(n), 1) },
    { name: 'zero', x: new Float32Array(n) },
  ];
  const { values, output } = await runOriginal(trace, bytes, baseDir, probes.map((p) => p.x));
  const backend = options.backend ?? createCpuBackend();
  try {
    const reports: ProbeReport[] = [];
    for (let p = 0; p < probes.length; p++) {
      const worstRatio = await compareLayers(trace, probes[p].x, probes[p].name, values[p], backend);
      const ours = (await nominalPass(network, backend, probes[p].x)).logits;
      const theirs = values[p].get(output)!.data;
      let logitDifference = 0;
      let logitScale = 0;
      for (let j = 0; j < ours.length; j++) {
        logitDifference = Math.max(logitDifference, Math.abs(ours[j] - theirs[j]));
        logitScale = Math.max(logitScale, Math.abs(theirs[j]));
      }
      reports.push({ probe: probes[p].name, logitDifference, logitScale, worstRatio });
    }
    return { layers: network.layers.length, probes: reports, seconds: (performance.now() - started) / 1000 };
  } finally {
    if (!options.backend) await backend.dispose();
  }
}

/** importOnnx, then the cross-check: what every model given by a user goes through. */
export async function importOnnxChecked(bytes: Uint8Array, name = 'model', baseDir: ExternalDataDir = null, options: CheckOptions = {}): Promise<Network> {
  const trace = importOnnxTrace(bytes, name, baseDir);
  await checkImport(trace, bytes, baseDir, options);
  return trace.network;
}

/** importOnnxFile, then the cross-check. */
export async function importOnnxFileChecked(file: string, options: CheckOptions = {}): Promise<Network> {
  const { bytes, name, baseDir } = readModelFile(file);
  return importOnnxChecked(bytes, name, baseDir, options);
}
