/**
 * Every backend operation against the dense matrices of test/helpers/dense.ts, on small random
 * layers of every kind. Parameterised over the backends this machine can run.
 */
import { describeEachBackend } from './backends.js';
import { denseOf, matTVec, matVec } from '../helpers/dense.js';
import { maxPoolMembership } from '../helpers/layer-definitions.js';
import { randomWeights } from '../helpers/random-networks.js';
import { affineLayers, poolLayers } from './layer-cases.js';

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel = 1e-4) {
  expect(actual.length).toBe(expected.length);
  let scaleMax = 0;
  for (let i = 0; i < expected.length; i++) scaleMax = Math.max(scaleMax, Math.abs(expected[i]));
  for (let i = 0; i < expected.length; i++) {
    if (Math.abs(actual[i] - expected[i]) > rel * Math.max(scaleMax, 1e-12)) {
      throw new Error(`entry ${i}: ${actual[i]} vs ${expected[i]} (scale ${scaleMax})`);
    }
  }
}

describeEachBackend((backend) => {
  describe.each(affineLayers)('%s', (_label, layer) => {
    const a = denseOf(layer);
    const x = randomWeights(a.cols, 1);
    const u = randomWeights(a.rows, 1);
    const mask = Float32Array.from(randomWeights(a.cols, 1), (v) => (v > -0.3 ? 1 : 0));
    const slopes = Float32Array.from(randomWeights(a.rows, 1), (v) => Math.abs(v));

    test('forward = A x + b', async () => {
      expectClose(await backend().forward(layer, x), matVec(a, x));
    });
    test('applyA = A v and applyAT = Aᵀ u', async () => {
      expectClose(await backend().applyA(layer, x), matVec(a, x, false));
      expectClose(await backend().applyAT(layer, u), matTVec(a, u));
    });
    test('rowNormsSquared = Σ_j A_ij² mask_j', async () => {
      const expected = new Float64Array(a.rows);
      for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) expected[i] += a.data[i * a.cols + j] ** 2 * mask[j];
      expectClose(await backend().rowNormsSquared(layer, mask), expected);
    });
    test('gramOperator = D Aᵀ Λ² A D', async () => {
      const op = await backend().gramOperator(layer, mask, Float32Array.from(slopes, (s) => s * s));
      const v = backend().vectors.upload(x);
      const out = backend().vectors.alloc(a.cols);
      await op.apply(v, out);
      const y = matVec(a, Float64Array.from(x, (xi, j) => xi * mask[j]), false).map((yi, i) => yi * slopes[i] ** 2);
      const expected = matTVec(a, y).map((zi, j) => zi * mask[j]);
      expectClose(await backend().vectors.download(out), expected);
      op.dispose();
      backend().vectors.free(v);
      backend().vectors.free(out);
    });
  });

  describe.each(poolLayers)('max pool %s', (_label, layer) => {
    const n = layer.inputShape.reduce((p, q) => p * q, 1);
    test('forward and mask propagation', async () => {
      const x = randomWeights(n, 1);
      const y = await backend().maxPool(layer, x);
      const mask = Float32Array.from(x, (v) => (v > 0.2 ? 1 : 0));
      const m = await backend().poolMask(layer, mask);
      // Reference: brute force over every window.
      const [c, h, w] = layer.inputShape;
      const [, ho, wo] = layer.outputShape;
      for (let ch = 0; ch < c; ch++)
        for (let oy = 0; oy < ho; oy++)
          for (let ox = 0; ox < wo; ox++) {
            let best = -Infinity;
            let any = 0;
            for (let ky = 0; ky < layer.kernel[0]; ky++)
              for (let kx = 0; kx < layer.kernel[1]; kx++) {
                const iy = oy * layer.strides[0] - layer.pads[0] + ky * layer.dilations[0];
                const ix = ox * layer.strides[1] - layer.pads[1] + kx * layer.dilations[1];
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                best = Math.max(best, x[(ch * h + iy) * w + ix]);
                any = Math.max(any, mask[(ch * h + iy) * w + ix]);
              }
            const o = (ch * ho + oy) * wo + ox;
            expect(y[o]).toBeCloseTo(best, 6);
            expect(m[o]).toBe(any);
          }
      expect(maxPoolMembership(layer)).toBeGreaterThanOrEqual(1);
    });
  });

  test('VectorOps: dots, axpy, combine, scale', async () => {
    const vec = backend().vectors;
    const a = vec.upload(Float64Array.of(1, 2, 3));
    const b = vec.upload(Float64Array.of(-1, 0.5, 2));
    expect(await vec.dot(a, b)).toBeCloseTo(6, 6);
    expect(Array.from(await vec.dots(a, [a, b]))).toEqual([14, 6].map((v) => expect.closeTo(v, 6)));
    vec.axpy(2, a, b);
    expect(Array.from(await vec.download(b))).toEqual([1, 4.5, 8].map((v) => expect.closeTo(v, 6)));
    const out = vec.alloc(3);
    vec.combine([1, -1], [a, b], out);
    vec.scale(2, out);
    expect(Array.from(await vec.download(out))).toEqual([0, -5, -10].map((v) => expect.closeTo(v, 6)));
    [a, b, out].forEach((v) => vec.free(v));
  });
});
