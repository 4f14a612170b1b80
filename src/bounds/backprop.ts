/**
 * Reverse-mode differentiation of a network: vector–Jacobian products uᵀ ∂f/∂x at a point x, built
 * only from the Backend's ops (applyAT for each affine layer: transposed convolution, transposed
 * GEMV, average-pool transpose, diagonal scale) and host-side masks (ReLU: pre-activation > 0;
 * max pool: each output's gradient is routed to the argmax of its window, found from the pool's
 * input on the forward pass). Used by the lower bounds (lower.ts) and the attacks (attacks.ts).
 * At a ReLU kink (pre-activation exactly 0) the derivative taken is 0.
 */
import type { Backend } from '../backend/backend.js';
import { invariant } from '../errors.js';
import { isAffine, type Network, size } from '../model/ir.js';
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


/** uᵀ ∂f/∂x at the traced point: the gradient of x ↦ u·f(x). */
export async function vjp(network: Network, backend: Backend, trace: ForwardTrace, cotangent: Float32Array): Promise<Float32Array> {
  invariant(cotangent.length === trace.logits.length, 'cotangent and output differ in size');
  let g = cotangent;
  for (let index = network.layers.length - 1; index >= 0; index--) {
    const layer = network.layers[index];
    if (isAffine(layer)) {
      if (layer.relu) {
        const y = trace.preActivations[index];
        invariant(y && y.length === g.length, 'pre-activation missing from the trace');
        g = g.map((v, i) => (y[i] > 0 ? v : 0));
      }
      g = await backend.applyAT(layer, g);
    } else if (layer.kind === 'relu') {
      const x = trace.inputs[index];
      g = g.map((v, i) => (x[i] > 0 ? v : 0));
    } else if (layer.kind === 'maxpool') {
      const argmax = windowArgmax(layer, trace.inputs[index]);
      const out = new Float32Array(size(layer.inputShape));
      for (let o = 0; o < argmax.length; o++) if (argmax[o] >= 0) out[argmax[o]] += g[o];
      g = out;
    }
    // flatten: the identity on the data.
    invariant(g.length === size(layer.inputShape), `gradient of layer ${layer.name} has the wrong size`);
  }
  return g;
}
