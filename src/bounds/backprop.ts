/**
 * Reverse-mode differentiation of a network: vector–Jacobian products uᵀ ∂f/∂x at a point x, built
 * only from the Backend's ops (applyAT for each affine layer: transposed convolution, transposed
 * GEMV, average-pool transpose, diagonal scale) and host-side factors (activations: σ' at the
 * pre-activation; max pool: each output's gradient is routed to the argmax of its window, found
 * from the pool's input on the forward pass; Add: the gradient goes to every input; Concat: split
 * by channels). Used by the lower bounds (lower.ts) and the attacks (attacks.ts). At a ReLU kink
 * (pre-activation exactly 0) the derivative taken is 0.
 */
import type { Backend } from '../backend/backend.js';
import { invariant } from '../errors.js';
import { activationOf, activationVjp } from '../model/activations.js';
import { inputsOf, isAffine, type Network, size } from '../model/ir.js';
import { nominalPass, type NominalPass } from './layer-bounds.js';
import { windowArgmax } from '../model/pool-geometry.js';

/** The forward pass at x, keeping what the backward pass needs (each layer's input and pre-activation). */
export type ForwardTrace = NominalPass;

/** f(x) with every layer's input and pre-activation recorded. */
export function forwardTrace(network: Network, backend: Backend, x: Float32Array): Promise<ForwardTrace> {
  return nominalPass(network, backend, x);
}

/** f(x) alone. */
export async function evaluate(network: Network, backend: Backend, x: Float32Array): Promise<Float32Array> {
  return (await nominalPass(network, backend, x)).logits;
}


/**
 * uᵀ ∂f/∂x at the traced point: the gradient of x ↦ u·f(x). Layers are visited in reverse
 * topological order; a layer's output gradient is complete when it is visited (every reader comes
 * later), and gradients add where a tensor is read twice (a branch point).
 */
export async function vjp(network: Network, backend: Backend, trace: ForwardTrace, cotangent: Float32Array): Promise<Float32Array> {
  invariant(cotangent.length === trace.logits.length, 'cotangent and output differ in size');
  const last = network.layers.length - 1;
  const gradients: (Float32Array | null)[] = network.layers.map(() => null);
  let inputGradient: Float32Array | null = null;
  const accumulate = (j: number, g: Float32Array) => {
    const current = j < 0 ? inputGradient : gradients[j];
    let total = g;
    if (current) {
      total = current;
      for (let i = 0; i < g.length; i++) total[i] += g[i];
    }
    if (j < 0) inputGradient = total;
    else gradients[j] = total;
  };
  if (last < 0) return cotangent;
  gradients[last] = Float32Array.from(cotangent);
  for (let index = last; index >= 0; index--) {
    const layer = network.layers[index];
    let g = gradients[index];
    gradients[index] = null;
    if (!g) continue; // the output does not depend on this layer
    const activation = activationOf(layer);
    if (isAffine(layer) || layer.kind === 'add') {
      if (activation) {
        const y = trace.preActivations[index];
        invariant(y && y.length === g.length, 'pre-activation missing from the trace');
        g = activationVjp(activation, y, g, layer.outputShape);
      }
      if (isAffine(layer)) g = await backend.applyAT(layer, g);
    } else if (activation) {
      g = activationVjp(activation, trace.inputs[index], g, layer.outputShape); // a lone ReLU or activation
    } else if (layer.kind === 'maxpool') {
      const argmax = windowArgmax(layer, trace.inputs[index]);
      const out = new Float32Array(size(layer.inputShape));
      for (let o = 0; o < argmax.length; o++) if (argmax[o] >= 0) out[argmax[o]] += g[o];
      g = out;
    }
    // flatten: the identity on the data.
    const from = inputsOf(network, index);
    if (layer.kind === 'concat') {
      let offset = 0;
      for (const j of from) {
        const n = j < 0 ? size(network.inputShape) : size(network.layers[j].outputShape);
        accumulate(j, g.slice(offset, offset + n));
        offset += n;
      }
      invariant(offset === g.length, `gradient of layer ${layer.name} has the wrong size`);
    } else {
      invariant(g.length === size(layer.inputShape), `gradient of layer ${layer.name} has the wrong size`);
      // An Add passes its gradient to every input (a copy each: they accumulate separately).
      from.forEach((j, k) => accumulate(j, from.length > 1 || k > 0 ? Float32Array.from(g!) : g!));
    }
  }
  return inputGradient ?? new Float32Array(size(network.inputShape));
}
