/**
 * The recursion that carries Propositions 2 and 3 from chains to DAGs (docs/graphs.md §1): a bound
 * on how far each layer's output can move is its factor times the combined bound of its inputs —
 * the input's own for a one-input layer (Proposition 2), the sum for an Add (triangle inequality),
 * the root-sum-of-squares for a Concat (the stacked vector's norm). On a chain this is the running
 * product, computed in the same order as before, so chains give the same numbers to the last bit.
 */
import { inputsOf, type Layer, type Network } from '../model/ir.js';

/** The bound on the deviation of what `layer` reads, from the bounds on its inputs' deviations. */
export function combineRadii(layer: Layer, radii: number[]): number {
  if (layer.kind === 'add') return radii.reduce((a, b) => a + b, 0);
  if (layer.kind === 'concat') return Math.hypot(...radii);
  return radii[0];
}

/**
 * g_i = factor_i · combine(g of layer i's inputs), with g = 1 at `source` (−1: the network input)
 * and 0 at every other input or layer not downstream of it. g at the last layer is the network's
 * Lipschitz bound from the source's output to the network's output (the other inputs fixed).
 */
export function propagateGains(network: Network, factors: ArrayLike<number>, source = -1): number[] {
  const gains = new Array<number>(network.layers.length).fill(0);
  const gainOf = (j: number) => (j === source ? 1 : j < 0 ? 0 : gains[j]);
  for (let i = source + 1; i < network.layers.length; i++) {
    const incoming = inputsOf(network, i).map(gainOf);
    if (incoming.every((g) => g === 0)) continue; // not downstream of the source
    gains[i] = factors[i] * combineRadii(network.layers[i], incoming);
  }
  return gains;
}

/** The network's bound from its layers' factors: g at the last layer, from the network input. */
export function networkGain(network: Network, factors: ArrayLike<number>): number {
  return propagateGains(network, factors).at(-1) ?? 1;
}

/** For each layer m, the bound from its output to the network's output (1 for the last layer). */
export function downstreamGains(network: Network, factors: ArrayLike<number>): number[] {
  const last = network.layers.length - 1;
  return network.layers.map((_, m) => (m === last ? 1 : propagateGains(network, factors, m)[last]));
}
