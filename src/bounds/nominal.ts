/**
 * The nominal pass: the network evaluated at x0 on the backend, layer by layer in topological
 * order, keeping what the bounds and the gradients need — each layer's input, each affine or Add
 * layer's pre-activation and each layer's output. Activations, sums and concatenations run on the
 * host (cheap next to the affine maps); the backend runs the affine maps and max pools.
 */
import type { Backend } from '../backend/backend.js';
import { activate, activationOf } from '../model/activations.js';
import { invariant } from '../errors.js';
import { inputsOf, isAffine, type Layer, type Network, size, stack } from '../model/ir.js';

export interface NominalPass {
  /** Each layer's input; for an Add or Concat, its inputs stacked one after another. */
  inputs: Float32Array[];
  /** Each affine or Add layer's output before its activation (null for other layers). */
  preActivations: (Float32Array | null)[];
  /** Each layer's output (on a chain, the same arrays as the next layer's input). */
  outputs: Float32Array[];
  logits: Float32Array;
}

export function relu(x: Float32Array): Float32Array {
  return x.map((v) => (v > 0 ? v : 0));
}


/** The elementwise float32 sum of equal-length arrays, left to right. */
export function sum(parts: Float32Array[]): Float32Array {
  const out = Float32Array.from(parts[0]);
  for (const p of parts.slice(1)) for (let i = 0; i < out.length; i++) out[i] += p[i];
  return out;
}

/** The values a layer reads: the network input for −1, else that layer's output. */
export function valuesOf<T>(network: Network, index: number, input: T, outputs: T[]): T[] {
  return inputsOf(network, index).map((j) => (j < 0 ? input : outputs[j]));
}

/** One layer applied to the values it reads: its input, its pre-activation (affine and Add layers) and its output. */
export async function applyLayer(backend: Backend, layer: Layer, read: Float32Array[]): Promise<{ input: Float32Array; preActivation: Float32Array | null; output: Float32Array }> {
  const input = read.length === 1 ? read[0] : stack(read, (n) => new Float32Array(n));
  const activation = activationOf(layer);
  if (isAffine(layer) || layer.kind === 'add') {
    const y = layer.kind === 'add' ? sum(read) : await backend.forward(layer, input);
    return { input, preActivation: y, output: activation ? activate(activation, y, layer.outputShape) : y };
  }
  let output = input; // flatten, concat (its inputs stacked)
  if (layer.kind === 'maxpool') output = await backend.maxPool(layer, input);
  else if (activation) output = activate(activation, input, layer.outputShape);
  return { input, preActivation: null, output };
}

export async function nominalPass(network: Network, backend: Backend, x0: Float32Array): Promise<NominalPass> {
  const inputs: Float32Array[] = [];
  const preActivations: (Float32Array | null)[] = [];
  const outputs: Float32Array[] = [];
  for (const [index, layer] of network.layers.entries()) {
    const { input, preActivation, output } = await applyLayer(backend, layer, valuesOf(network, index, x0, outputs));
    inputs.push(input);
    preActivations.push(preActivation);
    outputs.push(output);
  }
  const logits = outputs.at(-1) ?? x0;
  invariant(network.layers.length === 0 || logits.length === size(network.outputShape), 'the last layer is not the network output');
  return { inputs, preActivations, outputs, logits };
}
