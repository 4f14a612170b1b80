/**
 * Vector–Jacobian products against central finite differences, on random networks with every layer
 * kind and on the two fixtures. The networks are piecewise linear, so a difference quotient taken
 * within one linear piece is exact up to rounding (see activationPattern).
 */
import path from 'node:path';
import { createBackend } from '../../src/backend/select.js';
import type { Backend } from '../../src/backend/backend.js';
import { evaluate, forwardTrace, vjp } from '../../src/bounds/backprop.js';
import { windowArgmax as maxPoolArgmax } from '../../src/model/pool-geometry.js';
import { ratio, ratioGradient } from '../../src/bounds/lower.js';
import { Rng } from '../../src/random.js';
import { loadInputFile } from '../../src/model/input.js';
import { isAffine, type MaxPoolLayer, type Network, size } from '../../src/model/ir.js';
import { importOnnxFile } from '../../src/model/onnx-import.js';
import { everyLayerNetwork, randomInput } from './small-networks.js';

const fixtures = path.resolve('fixtures');
let backend: Backend;
beforeAll(async () => {
  backend = await createBackend('cpu');
});
afterAll(async () => backend.dispose());

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Which linear piece of f holds x: the sign of every ReLU input and the argmax of every max-pool
 * window. The set of inputs sharing a pattern is convex (an intersection of half-spaces), so if
 * x − hv, x and x + hv share one, so does the segment between them, and a difference quotient over it
 * is exact up to rounding.
 */
async function activationPattern(network: Network, x: Float32Array): Promise<string> {
  const trace = await forwardTrace(network, backend, x);
  const parts: string[] = [];
  network.layers.forEach((layer, i) => {
    const signs = (v: Float32Array) => Array.from(v, (y) => (y > 0 ? '1' : '0')).join('');
    if (isAffine(layer) && layer.relu) parts.push(signs(trace.preActivations[i]!));
    else if (layer.kind === 'relu') parts.push(signs(trace.inputs[i]));
    else if (layer.kind === 'maxpool') parts.push(maxPoolArgmax(layer, trace.inputs[i]).join(','));
  });
  return parts.join('|');
}

/** A scalar function's value and the magnitude its float32 rounding scales with. */
interface Scalar {
  value: number;
  magnitude: number;
}

/**
 * Compares ∇g·v with the central difference quotient of g along random unit directions v, each with
 * the largest step h ≤ firstStep (halving) that keeps x ± hv in x's linear piece; returns how many
 * directions were checked (a direction needing h < 1e-6 is skipped).
 */
async function checkDirectional(network: Network, g: (x: Float32Array) => Promise<Scalar>, gradient: ArrayLike<number>, x: Float32Array, rng: Rng, directions = 6, firstStep = 0.1, samePiece = true): Promise<number> {
  const pattern = await activationPattern(network, x);
  let checked = 0;
  for (let d = 0; d < directions; d++) {
    const v = Float64Array.from({ length: x.length }, () => rng.gaussian());
    const vn = Math.sqrt(dot(v, v));
    v.forEach((_, i) => (v[i] /= vn));
    for (let h = firstStep; h >= 1e-6; h /= 2) {
      const plus = x.map((xi, i) => xi + h * v[i]);
      const minus = x.map((xi, i) => xi - h * v[i]);
      if (samePiece && ((await activationPattern(network, plus)) !== pattern || (await activationPattern(network, minus)) !== pattern)) continue;
      const [gp, gm] = [await g(plus), await g(minus)];
      // The step actually taken is plus − minus (x ± hv rounded to float32): compare along it.
      // f is evaluated in float32: allow a few float32 ulps of g.
      const predicted = dot(gradient, Float64Array.from(plus, (p, i) => p - minus[i])) / (2 * h);
      const quotient = (gp.value - gm.value) / (2 * h);
      const rounding = (4 * 2 ** -24 * (gp.magnitude + gm.magnitude)) / (2 * h);
      // Within one piece the quotient is exact; across a few kinks of a large network it moves a little.
      expect(Math.abs(predicted - quotient)).toBeLessThanOrEqual((samePiece ? 1e-3 : 3e-2) * Math.abs(quotient) + rounding);
      checked++;
      break;
    }
  }
  return checked;
}

async function checkNetwork(network: Network, x: Float32Array, seed: number, directions = 6, firstStep = 0.1, samePiece = true) {
  const rng = new Rng(seed);
  const outputs = size(network.outputShape);
  const u = Float32Array.from({ length: outputs }, () => rng.gaussian());
  const trace = await forwardTrace(network, backend, x);
  const gradient = await vjp(network, backend, trace, u);
  expect(gradient).toHaveLength(x.length);
  const g = async (y: Float32Array) => {
    const f = await evaluate(network, backend, y);
    return { value: dot(u, f), magnitude: dot(u.map(Math.abs), f.map(Math.abs)) };
  };
  const checked = await checkDirectional(network, g, gradient, x, rng, directions, firstStep, samePiece);
  expect(checked).toBeGreaterThanOrEqual(directions - 1);
}

describe('vjp', () => {
  test.each([1, 2, 3])('matches finite differences on a random network with every layer kind (seed %i)', async (seed) => {
    const network = everyLayerNetwork(seed);
    await backend.prepare(network);
    await checkNetwork(network, randomInput(size(network.inputShape), 100 + seed), seed);
  });

  test('routes a max pool gradient to the window argmax, summing where windows overlap', () => {
    const layer: MaxPoolLayer = {
      kind: 'maxpool', name: 'p', inputShape: [1, 3, 3], outputShape: [1, 2, 2],
      kernel: [2, 2], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1],
    };
    // The centre (index 4) is the maximum of all four overlapping windows.
    const x = Float32Array.from([1, 2, 3, 4, 9, 5, 6, 7, 8]);
    expect(Array.from(maxPoolArgmax(layer, x))).toEqual([4, 4, 4, 4]);
    const y = Float32Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0]);
    y[8] = 1; // only the last window has a unique non-zero maximum; others tie at 0 and take their first entry
    expect(Array.from(maxPoolArgmax(layer, y))).toEqual([0, 1, 3, 8]);
  });

  test.each([
    ['mnist_lenet', 'mnist_lenet_x0.npy'],
    ['cifar10_net', 'cifar10_net_x0.npy'],
  ])('matches finite differences on the %s fixture near x0', async (model, input) => {
    const network = await importOnnxFile(path.join(fixtures, `${model}.onnx`));
    await backend.prepare(network);
    const x0 = loadInputFile(path.join(fixtures, input), network);
    // Not at x0 itself: MNIST's constant background puts ties in its max pools there, where f has a
    // kink and a difference quotient is no derivative. A small random offset makes the point generic.
    const noise = randomInput(x0.length, 8);
    await checkNetwork(network, x0.map((v, i) => v + 0.01 * noise[i]), 7, 4, 1e-2, false);
  });

  test('the gradient of the Lipschitz ratio matches finite differences', async () => {
    const network = everyLayerNetwork(4);
    await backend.prepare(network);
    const n = size(network.inputShape);
    const x0 = randomInput(n, 40);
    const f0 = await evaluate(network, backend, x0);
    const x = x0.map((v, i) => v + 0.3 * randomInput(n, 41)[i]);
    const R = async (y: Float32Array) => {
      const f = await evaluate(network, backend, y);
      const r = ratio(f, f0, y, x0)!;
      return { value: r.value, magnitude: (Math.hypot(...f) + Math.hypot(...f0)) / r.dist };
    };
    const trace = await forwardTrace(network, backend, x);
    const gradient = await ratioGradient(network, backend, trace, x, x0, ratio(trace.logits, f0, x, x0)!);
    expect(gradient).not.toBeNull();
    expect(await checkDirectional(network, R, gradient!, x, new Rng(5))).toBeGreaterThanOrEqual(5);
  });
});
