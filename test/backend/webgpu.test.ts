/**
 * WebGPU kernels against straightforward float64 references: every affine map (forward, A, Aᵀ,
 * row norms) of convolutions, dense, average pool and scale layers, max pooling and its mask,
 * the Gram operator D Aᵀ Λ² A D against its explicit matrix, and VectorOps. Relative tolerance
 * 1e-4. Skipped only when no WebGPU adapter exists on this machine (see webgpu-setup.ts).
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import type { AffineLayer } from '../../src/model/ir.js';
import { size } from '../../src/model/ir.js';
import { createWebGpuBackend } from '../../src/backend/webgpu/index.js';
import { tryCreateWebGpuBackend } from './webgpu-setup.js';
import {
  avgPoolReference, convReference, convTransposeReference, denseReference, expectClose, explicitMatrix, gramReference,
  makeAvgPool, makeConv, makeDense, makeMaxPool, makeScale, matTVec, matVec, maxPoolReference, random, randomArray,
  randomMask, rowNormsSquaredOf, scaleReference,
} from './webgpu-reference.js';

const { backend: gpu, reason } = await tryCreateWebGpuBackend();
const suite = gpu ? describe : describe.skip;
if (!gpu) test.skip(`WebGPU unavailable: ${reason}`, () => undefined);

afterAll(async () => {
  await gpu?.dispose();
});

/** The layer's bias-free map A on float64 vectors, by the reference loops. */
function referenceA(layer: AffineLayer): (x: ArrayLike<number>) => Float64Array {
  switch (layer.kind) {
    case 'conv': return (x) => convReference(layer, x, false);
    case 'dense': return (x) => denseReference(layer, x, false);
    case 'avgpool': return (x) => avgPoolReference(layer, x);
    case 'scale': return (x) => scaleReference(layer, x, false);
  }
}

/** Checks A, Aᵀ, row norms and the Gram operator of a small layer against its explicit matrix. */
async function checkAgainstExplicitMatrix(layer: AffineLayer, seed: number): Promise<void> {
  const backend = gpu!;
  const rand = random(seed);
  const cols = size(layer.inputShape);
  const rows = size(layer.outputShape);
  const a = explicitMatrix(referenceA(layer), cols, rows);
  const v = randomArray(cols, rand);
  const u = randomArray(rows, rand);
  const mask = randomMask(cols, rand);
  const slopeSquared = Float32Array.from({ length: rows }, () => (rand() + 1) / 2);

  expectClose(await backend.applyA(layer, v), matVec(a, rows, cols, v));
  expectClose(await backend.applyAT(layer, u), matTVec(a, rows, cols, u));
  expectClose(await backend.rowNormsSquared(layer, mask), rowNormsSquaredOf(a, rows, cols, mask));
  expectClose(await backend.rowNormsSquared(layer, new Float32Array(cols).fill(1)), rowNormsSquaredOf(a, rows, cols, new Float32Array(cols).fill(1)));

  for (const [d, lambda2] of [[mask, slopeSquared], [null, null], [mask, null], [null, slopeSquared]] as const) {
    const op = await backend.gramOperator(layer, d, lambda2);
    expect(op.dim).toBe(cols);
    const x = backend.vectors.upload(v);
    const out = backend.vectors.alloc(cols);
    await op.apply(x, out);
    expectClose(await backend.vectors.download(out), gramReference(a, rows, cols, d, lambda2, v));
    backend.vectors.free(x);
    backend.vectors.free(out);
    op.dispose();
  }
}

suite('WebGPU backend', () => {
  test('names its adapter', () => {
    expect(gpu!.name).toBe('webgpu');
    expect(gpu!.adapter.length).toBeGreaterThan(3);
    console.info(`WebGPU adapter: ${gpu!.adapter}`);
  });

  // Only meaningful where the adapter is a software one (llvmpipe in CI); a real GPU is accepted.
  const softwareAdapter = /llvmpipe|lavapipe|softpipe|swiftshader/i.test(gpu?.adapter ?? '');
  (softwareAdapter ? test : test.skip)('refuses a software adapter when asked to (for --backend auto)', async () => {
    await expect(createWebGpuBackend({ allowSoftware: false })).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
  });

  describe('convolution', () => {
    const cases = [
      { name: 'plain 3×3', o: { inShape: [3, 7, 7], outChannels: 4, kernel: [3, 3] } },
      { name: 'stride 2, asymmetric pads', o: { inShape: [2, 9, 8], outChannels: 5, kernel: [3, 3], strides: [2, 2], pads: [1, 0, 2, 1] } },
      { name: 'dilation, mixed strides', o: { inShape: [2, 8, 9], outChannels: 3, kernel: [2, 3], strides: [1, 2], pads: [2, 1, 0, 2], dilations: [2, 1] } },
      { name: '2 groups, 3×2 kernel', o: { inShape: [4, 6, 7], outChannels: 6, kernel: [3, 2], pads: [1, 1, 1, 1], group: 2 } },
      { name: 'depthwise ×2, stride 2', o: { inShape: [3, 8, 8], outChannels: 6, kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], group: 3 } },
      { name: '1×1', o: { inShape: [5, 4, 6], outChannels: 7, kernel: [1, 1] } },
      { name: 'several tiles (M, N > 64, K > 16)', o: { inShape: [6, 9, 9], outChannels: 70, kernel: [3, 3], pads: [1, 1, 1, 1] } },
    ] as const;

    test.each(cases)('$name: forward and Aᵀ against direct loops', async ({ o }) => {
      const layer = makeConv(1, o as Parameters<typeof makeConv>[1]);
      const rand = random(2);
      const x = randomArray(size(layer.inputShape), rand);
      const u = randomArray(size(layer.outputShape), rand);
      expectClose(await gpu!.forward(layer, x), convReference(layer, x, true));
      expectClose(await gpu!.applyAT(layer, u), convTransposeReference(layer, u));
    });

    test.each(cases)('$name: A, Aᵀ, row norms, Gram against the explicit matrix', async ({ o }) => {
      await checkAgainstExplicitMatrix(makeConv(7, o as Parameters<typeof makeConv>[1]), 8);
    });

    test('a larger layer (several tiles per group and in K, 2 groups)', async () => {
      const layer = makeConv(3, { inShape: [16, 20, 18], outChannels: 96, kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], group: 2 });
      const rand = random(4);
      const x = randomArray(size(layer.inputShape), rand);
      const u = randomArray(size(layer.outputShape), rand);
      expectClose(await gpu!.forward(layer, x), convReference(layer, x, true));
      expectClose(await gpu!.applyAT(layer, u), convTransposeReference(layer, u));
      const squared = { ...layer, weight: layer.weight.map((w) => w * w) };
      const mask = randomMask(size(layer.inputShape), rand);
      expectClose(await gpu!.rowNormsSquared(layer, mask), convReference(squared, mask, false));
    });
  });

  describe('dense', () => {
    test('forward against the direct loop', async () => {
      const layer = makeDense(11, 300, 70);
      const x = randomArray(300, random(12));
      expectClose(await gpu!.forward(layer, x), denseReference(layer, x, true));
    });

    test('A, Aᵀ, row norms, Gram against the explicit matrix', async () => {
      await checkAgainstExplicitMatrix(makeDense(13, 300, 70), 14);
    });

    test('weights split across storage bindings give the same results', async () => {
      // 16 rows of 300 floats per binding: 70 rows become 5 blocks.
      const { backend: split } = await tryCreateWebGpuBackend({ maxBindingBytes: 16 * 300 * 4 });
      expect(split).not.toBeNull();
      try {
        const layer = makeDense(15, 300, 70);
        const rand = random(16);
        const a = explicitMatrix(referenceA(layer), 300, 70);
        const x = randomArray(300, rand);
        const u = randomArray(70, rand);
        const mask = randomMask(300, rand);
        expectClose(await split!.forward(layer, x), denseReference(layer, x, true));
        expectClose(await split!.applyA(layer, x), matVec(a, 70, 300, x));
        expectClose(await split!.applyAT(layer, u), matTVec(a, 70, 300, u));
        expectClose(await split!.rowNormsSquared(layer, mask), rowNormsSquaredOf(a, 70, 300, mask));
        // A row wider than a binding cannot be split by rows: a typed error, not a GPU fault.
        await expect(split!.forward(makeDense(17, 5000, 2), new Float32Array(5000))).rejects.toMatchObject({ code: 'UNSUPPORTED_MODEL' });
      } finally {
        await split!.dispose();
      }
    });
  });

  test('prepare() keeps one network\'s weights; a released layer is uploaded again on use', async () => {
    const first = makeDense(18, 40, 30);
    const second = makeConv(19, { inShape: [2, 5, 5], outChannels: 3, kernel: [3, 3] });
    const network = (layer: AffineLayer) => ({ name: layer.name, inputName: 'x', inputShape: layer.inputShape, outputShape: layer.outputShape, layers: [layer] });
    await gpu!.prepare(network(first));
    await gpu!.prepare(network(second));
    const x = randomArray(40, random(20));
    expectClose(await gpu!.forward(first, x), denseReference(first, x, true));
  });

  describe('average pool', () => {
    const cases = [
      { name: '2×2 stride 2', shape: [2, 6, 8], kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0] },
      { name: '3×3 stride 2, pads, count_include_pad', shape: [3, 7, 8], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 0], countIncludePad: true },
      { name: '3×3 stride 2, pads, excluding pads', shape: [3, 7, 8], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 0], countIncludePad: false },
      { name: '3×2 stride 1, asymmetric pads, excluding pads', shape: [2, 5, 6], kernel: [3, 2], strides: [1, 1], pads: [2, 0, 1, 1], countIncludePad: false },
    ] as const;

    test.each(cases)('$name', async ({ shape, kernel, strides, pads, ...rest }) => {
      const countIncludePad = 'countIncludePad' in rest ? rest.countIncludePad : false;
      const layer = makeAvgPool([...shape], [...kernel], [...strides], [...pads], countIncludePad);
      const x = randomArray(size(layer.inputShape), random(21));
      expectClose(await gpu!.forward(layer, x), avgPoolReference(layer, x));
      await checkAgainstExplicitMatrix(layer, 22);
    });
  });

  describe('diagonal scale', () => {
    test.each([[[3, 4, 5]], [[7]]])('shape %j', async (shape) => {
      const layer = makeScale(31, shape);
      const x = randomArray(size(shape), random(32));
      expectClose(await gpu!.forward(layer, x), scaleReference(layer, x, true));
      await checkAgainstExplicitMatrix(layer, 33);
    });
  });

  describe('max pool', () => {
    const cases = [
      { name: '2×2 stride 2', shape: [3, 8, 8], kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1] },
      { name: '3×3 stride 2 (overlapping)', shape: [2, 9, 9], kernel: [3, 3], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1] },
      { name: '3×3 stride 2, pads 1', shape: [2, 8, 7], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1] },
      { name: 'dilation 2, asymmetric pads', shape: [2, 9, 10], kernel: [2, 3], strides: [1, 2], pads: [1, 0, 0, 2], dilations: [2, 2] },
      { name: 'ceil-mode shape (last window hangs over)', shape: [2, 7, 7], kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], ceil: true },
    ] as const;

    test.each(cases)('$name: forward and mask', async ({ shape, kernel, strides, pads, dilations, ...rest }) => {
      const ceil = 'ceil' in rest && rest.ceil;
      const layer = makeMaxPool([...shape], [...kernel], [...strides], [...pads], [...dilations], ceil);
      if (ceil) expect(layer.outputShape).toEqual([2, 4, 4]);
      const rand = random(41);
      const x = randomArray(size(layer.inputShape), rand);
      expectClose(await gpu!.maxPool(layer, x), maxPoolReference(layer, x));
      const mask = randomMask(size(layer.inputShape), rand, 0.2);
      const expected = maxPoolReference(layer, mask, true);
      expect(Array.from(await gpu!.poolMask(layer, mask))).toEqual(Array.from(expected));
      expect(expected.some((m) => m === 0) && expected.some((m) => m === 1)).toBe(true);
    });
  });

  describe('vector operations', () => {
    const n = 100_003; // not a multiple of the workgroup size; more than 256 workgroups per dot
    const rand = random(51);
    const positive = () => (rand() + 1) / 2;
    const xs = Array.from({ length: 5 }, () => Float32Array.from({ length: n }, positive));
    const dotOf = (a: ArrayLike<number>, b: ArrayLike<number>) => {
      let s = 0;
      for (let i = 0; i < a.length; i++) s += a[i] * b[i];
      return s;
    };

    test('upload, download, copy, scale, axpy, combine', async () => {
      const v = gpu!.vectors;
      const [a, b, c] = xs.map((x) => v.upload(x));
      expectClose(await v.download(a), xs[0], 0);
      const out = v.alloc(n);
      v.copy(b, out);
      v.scale(-2.5, out);
      v.axpy(0.75, a, out);
      expectClose(await v.download(out), xs[1].map((y, i) => -2.5 * y + 0.75 * xs[0][i]));
      v.combine([0.5, -1, 2], [a, b, c], out); // overwrites out's old contents
      expectClose(await v.download(out), xs[0].map((y, i) => 0.5 * y - xs[1][i] + 2 * xs[2][i]));
      v.combine(new Float64Array([3]), [c], out);
      expectClose(await v.download(out), xs[2].map((y) => 3 * y));
      for (const vector of [a, b, c, out]) v.free(vector);
    });

    test('dots and dot read back every product at once', async () => {
      const v = gpu!.vectors;
      const vectors = xs.map((x) => v.upload(x));
      const dots = await v.dots(vectors[0], vectors);
      expectClose(dots, xs.map((x) => dotOf(xs[0], x)));
      expectClose([await v.dot(vectors[3], vectors[4])], [dotOf(xs[3], xs[4])]);
      const small = v.upload(new Float64Array([1, 2, 3]));
      expectClose([await v.dot(small, small)], [14], 0);
      expect((await v.dots(small, [])).length).toBe(0);
      for (const vector of [...vectors, small]) v.free(vector);
    });

    test('dots and combine over nine vectors (four-vector kernels, two full groups and one)', async () => {
      const v = gpu!.vectors;
      const vectors = xs.map((x) => v.upload(x));
      const nine = Array.from({ length: 9 }, (_, i) => vectors[i % 5]);
      const coefficients = Array.from({ length: 9 }, (_, i) => (i % 2 ? -0.25 : 0.5) * (i + 1));
      expectClose(await v.dots(vectors[1], nine), nine.map((_, i) => dotOf(xs[1], xs[i % 5])));
      const out = v.alloc(n);
      v.combine(coefficients, nine, out);
      expectClose(await v.download(out), Float32Array.from({ length: n }, (_, j) => coefficients.reduce((s, c, i) => s + c * xs[i % 5][j], 0)));
      for (const vector of [...vectors, out]) v.free(vector);
    });

    test('a vector longer than 65535 workgroups (2D dispatch grid)', async () => {
      const v = gpu!.vectors;
      const length = 256 * 65_535 + 1000;
      const data = new Float32Array(length);
      for (let i = 0; i < length; i += 997) data[i] = (i % 7) + 1;
      const x = v.upload(data);
      v.scale(2, x);
      const back = await v.download(x);
      let mismatches = 0;
      for (let i = 0; i < length; i++) if (back[i] !== 2 * data[i]) mismatches++;
      expect(mismatches).toBe(0);
      expect(back[length - 1 - ((length - 1) % 997)]).toBeGreaterThan(0);
      v.free(x);
    });
  });
});
