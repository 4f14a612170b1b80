/**
 * Networks on a 2-D input, where the smallest adversarial perturbation can be found by a grid:
 * multilayer perceptrons with PyTorch's default initialisation (nn.Linear: weights and biases
 * uniform in ±1/sqrt(fan_in)), a search along rays for the nearest class change (float64 forward
 * passes, so the answer is the exact network's), and inputs pushed to within a chosen distance of
 * the decision boundary.
 */
import { Rng } from '../../src/random.js';
import type { DenseLayer, Network } from '../../src/model/ir.js';

/** nn.Linear's default initialisation: kaiming_uniform(a = √5), i.e. U(±1/√fan_in), bias the same. */
function torchLinear(inputs: number, outputs: number, relu: boolean, rng: Rng, name: string): DenseLayer {
  const bound = 1 / Math.sqrt(inputs);
  const uniform = (n: number) => Float32Array.from({ length: n }, () => (rng.uniform() * 2 - 1) * bound);
  return { kind: 'dense', name, relu, inputShape: [inputs], outputShape: [outputs], weight: uniform(inputs * outputs), bias: uniform(outputs) };
}

/** An MLP 2 → hidden… → classes with PyTorch's default initialisation; the last layer scaled by `lastScale`. */
export function torchMlp(widths: number[], seed: number, lastScale = 1): Network {
  const rng = new Rng(seed);
  const layers = widths.slice(1).map((w, i) => torchLinear(widths[i], w, i < widths.length - 2, rng, `fc${i + 1}`));
  const last = layers[layers.length - 1];
  last.weight = last.weight.map((v) => v * lastScale);
  last.bias = last.bias.map((v) => v * lastScale);
  return { name: `mlp-${widths.join('-')}-seed${seed}`, inputName: 'x', inputShape: [widths[0]], outputShape: [widths[widths.length - 1]], layers };
}

/** The exact network (float64 arithmetic on its float32 weights): logits at x. */
export function forward64(network: Network, x: ArrayLike<number>): Float64Array {
  let v = Float64Array.from(x);
  for (const layer of network.layers) {
    if (layer.kind !== 'dense') throw new Error('forward64 handles dense layers only');
    const [n] = layer.inputShape;
    const [m] = layer.outputShape;
    const out = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      let s = layer.bias[i];
      for (let j = 0; j < n; j++) s += layer.weight[i * n + j] * v[j];
      out[i] = layer.relu && s < 0 ? 0 : s;
    }
    v = out;
  }
  return v;
}

export function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

/**
 * The nearest class change from x0 found along `rays` directions, stepping by `step` out to
 * `reach` and then bisecting the first change on each ray to 1e-12: an adversarial point at the
 * returned distance exists (the true minimum is at most it, and within the grid's resolution).
 */
export function nearestAdversarial(network: Network, x0: ArrayLike<number>, { rays = 3600, reach = 10, step = 1e-3 } = {}): { distance: number; direction: [number, number] } {
  const cls = argmax(forward64(network, x0));
  let best = { distance: Infinity, direction: [1, 0] as [number, number] };
  const changes = (t: number, u: [number, number]) => argmax(forward64(network, [x0[0] + t * u[0], x0[1] + t * u[1]])) !== cls;
  for (let r = 0; r < rays; r++) {
    const angle = (2 * Math.PI * r) / rays;
    const u: [number, number] = [Math.cos(angle), Math.sin(angle)];
    // Steps grow geometrically from `step` so both near and far changes are found quickly.
    let lo = 0;
    let hi = step;
    while (hi <= Math.min(reach, best.distance) && !changes(hi, u)) {
      lo = hi;
      hi = hi < 0.01 ? hi + step : hi * 1.01;
    }
    if (hi > Math.min(reach, best.distance)) continue;
    while (hi - lo > 1e-12) {
      const mid = (lo + hi) / 2;
      if (changes(mid, u)) hi = mid;
      else lo = mid;
    }
    if (hi < best.distance) best = { distance: hi, direction: u };
  }
  return best;
}

/** An input `gap` away from the decision boundary: x moved along its nearest-change direction. */
export function nearBoundaryInput(network: Network, x: [number, number], gap: number): Float32Array {
  const { distance, direction } = nearestAdversarial(network, x);
  const t = distance - gap;
  return Float32Array.from([x[0] + t * direction[0], x[1] + t * direction[1]]);
}
