/**
 * Reduced AlexNet and VGG-16 (small inputs and widths, the same layer types: 11×11 stride-4 conv,
 * overlapping 3×3 stride-2 max pools, 2×2 pools, an adaptive average pool that is the identity and
 * one that is not, flatten, wide dense layers) against dense float64 matrices: every layer's local
 * bound and global bound to 1e-4, and the long-vector Lanczos path and a starved session cache give
 * the same figures.
 */
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { certify } from '../../src/bounds/certify.js';
import { PAPER_REPRODUCTION } from '../../src/bounds/defaults.js';
import { largestEigenvalue } from '../../src/bounds/spectral.js';
import type { Network } from '../../src/model/ir.js';
import { alexnet, buildNetwork, randomInput, vgg16 } from '../../src/model/zoo/index.js';
import { apply, denseBounds, denseMatrix, spectralNorm } from '../helpers/dense-matrices.js';

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);

const reducedAlexNet = () => buildNetwork(alexnet({ inputSize: 63, widths: [2, 4, 4, 4, 4], hidden: 16, classes: 10, pooled: 1 }), 7);
const reducedVgg = () => buildNetwork(vgg16({ inputSize: 16, config: [2, 'M', 4, 'M', 8, 8, 'M'], hidden: 16, classes: 10, pooled: 1 }), 7);

const CASES: [string, () => Network, string[]][] = [
  ['AlexNet', reducedAlexNet, ['conv', 'maxpool', 'conv', 'maxpool', 'conv', 'conv', 'conv', 'maxpool', 'flatten', 'dense', 'dense', 'dense']],
  ['VGG-16', reducedVgg, ['conv', 'maxpool', 'conv', 'maxpool', 'conv', 'conv', 'maxpool', 'avgpool', 'flatten', 'dense', 'dense', 'dense']],
];

describe.each(CASES)('reduced %s', (_name, build, kinds) => {
  const network = build();
  const x0 = randomInput(network, 3);
  const backend = createCpuBackend();
  afterAll(() => backend.dispose());

  test('has the architecture’s layer sequence', () => {
    expect(network.layers.map((l) => l.kind)).toEqual(kinds);
  });

  test.each([0.01, 0.3])('local (eps %p) and global bounds match dense matrices to 1e-4', async (eps) => {
    const reference = denseBounds(network, x0, eps);
    const result = await certify(network, x0, backend, { ...PAPER_REPRODUCTION, eps: [eps], global: true, tolerance: 1e-10 });
    result.local[0].layers.forEach((l, i) => expect(rel(l.bound, reference.local[i])).toBeLessThan(1e-4));
    result.global!.layers.forEach((l, i) => expect(rel(l.bound, reference.global[i])).toBeLessThan(1e-4));
    expect(rel(result.local[0].bound, reference.local.reduce((a, b) => a * b, 1))).toBeLessThan(1e-3);
    result.logits.forEach((v, i) => expect(Math.abs(v - reference.logits[i])).toBeLessThan(1e-4 * (1 + Math.abs(reference.logits[i]))));
    // AlexNet's overlapping 3×3 stride-2 pools: n_max = 4, bound 2 (Theorem 3); the last one here
    // has a single window (3×3 → 1×1), bound 1. VGG's 2×2 stride-2 pools do not overlap: 1.
    const pools = result.global!.layers.filter((l) => l.kind === 'maxpool').map((l) => l.bound);
    expect(pools).toEqual(_name === 'AlexNet' ? [2, 2, 1] : [1, 1, 1]);
  });

  test('a starved session cache (every session released after use) gives the same bounds', async () => {
    const starved = createCpuBackend({ sessionBudgetBytes: 1 });
    try {
      const a = await certify(network, x0, backend, { ...PAPER_REPRODUCTION, eps: [0.05], tolerance: 1e-10 });
      const b = await certify(network, x0, starved, { ...PAPER_REPRODUCTION, eps: [0.05], tolerance: 1e-10 });
      b.local[0].layers.forEach((l, i) => expect(l.bound).toBe(a.local[0].layers[i].bound));
    } finally {
      await starved.dispose();
    }
  });
});

test('Lanczos with local reorthogonalisation (the long-vector path) matches the dense norm', async () => {
  const network = reducedAlexNet();
  const x0 = randomInput(network, 3);
  const conv = network.layers[0];
  if (conv.kind !== 'conv') throw new Error('expected a convolution first');
  const a = denseMatrix(conv);
  const y0 = apply(a, x0);
  const eps = 0.3;
  const lambda = new Float64Array(a.rows);
  for (let i = 0; i < a.rows; i++) {
    let s = 0;
    for (const v of a.value[i]) s += v * v;
    const yHat = y0[i] + eps * Math.sqrt(s);
    lambda[i] = yHat <= 0 ? 0 : y0[i] <= 0 ? yHat / (yHat - y0[i]) : 1;
  }
  const expected = spectralNorm(a, lambda, null);
  const backend = createCpuBackend();
  try {
    const op = await backend.gramOperator(conv, null, Float32Array.from(lambda, (l) => l * l));
    for (const fullReorthogonalisation of [true, false]) {
      const result = await largestEigenvalue(op, backend.vectors, { tolerance: 1e-8, maxIterations: 2000, basisSize: 8, fullReorthogonalisation });
      expect(result.converged).toBe(true);
      expect(rel(Math.sqrt(result.eigenvalue), expected)).toBeLessThan(1e-6);
      expect(Math.sqrt(result.eigenvalue)).toBeLessThanOrEqual(expected * (1 + 1e-6));
    }
    op.dispose();
  } finally {
    await backend.dispose();
  }
});
