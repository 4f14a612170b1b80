/**
 * Block operations (B vectors per call) against single-vector calls and the dense matrices of
 * test/helpers/dense.ts: every layer kind, B = 1, 3, 8, each vector with its own data, mask and
 * slopes; and BlockVectorOps against float64 loops. Parameterised over the backends this machine
 * can run (WebGPU: llvmpipe here and in CI).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { AffineLayer, ConvLayer } from '../../src/model/ir.js';
import { size } from '../../src/model/ir.js';
import type { Backend, DeviceBlock } from '../../src/backend/backend.js';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { callChunks } from '../../src/backend/cpu/onnx-kernels.js';
import { conv } from '../helpers/random-networks.js';
import { denseOf, matTVec, matVec } from '../helpers/dense.js';
import { affineLayers, poolLayers } from './layer-cases.js';
import { expectClose, maxPoolReference, random, randomArray, randomMask } from './webgpu-reference.js';
import { tryCreateWebGpuBackend } from './webgpu-setup.js';
import { describeEachBackend, webgpuAvailable } from './backends.js';


const COUNTS = [1, 3, 8];

/** Vector b of a block of vectors of length n. */
function part(block: ArrayLike<number>, b: number, n: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => block[b * n + i]);
}

/** Masks of B runs, run b with its own density (run 0 sparse, the last nearly full). */
function runMasks(count: number, n: number, rand: () => number): Float32Array {
  const masks = new Float32Array(count * n);
  for (let b = 0; b < count; b++) masks.set(randomMask(n, rand, 0.3 + (0.6 * (b + 1)) / count), b * n);
  return masks;
}

/** D Aᵀ Λ² A D x by the dense matrix. */
function gramDense(a: ReturnType<typeof denseOf>, mask: ArrayLike<number> | null, slope2: ArrayLike<number> | null, x: ArrayLike<number>): Float64Array {
  const y = matVec(a, Float64Array.from(x, (v, j) => (mask ? v * mask[j] : v)), false).map((v, i) => (slope2 ? v * slope2[i] : v));
  return matTVec(a, y).map((v, j) => (mask ? v * mask[j] : v));
}

describeEachBackend((backend) => {
  describe.each(affineLayers)('%s', (_label, layer: AffineLayer) => {
    const a = denseOf(layer);
    const [n, m] = [a.cols, a.rows];

    test.each(COUNTS)('B = %i: forward, A, Aᵀ, row norms per vector = single calls = dense matrix', async (count) => {
      const rand = random(100 + count);
      const x = randomArray(count * n, rand);
      const u = randomArray(count * m, rand);
      const masks = runMasks(count, n, rand);
      const forward = await backend().forwardBlock(layer, x, count);
      const applied = await backend().applyABlock(layer, x, count);
      const transposed = await backend().applyATBlock(layer, u, count);
      const norms = await backend().rowNormsSquaredBlock(layer, masks, count);
      for (const [block, length] of [[forward, m], [applied, m], [transposed, n], [norms, m]] as const) expect(block.length).toBe(count * length);
      for (let b = 0; b < count; b++) {
        const [xb, ub, maskb] = [x.subarray(b * n, (b + 1) * n), u.subarray(b * m, (b + 1) * m), masks.subarray(b * n, (b + 1) * n)];
        const rowNorms = new Float64Array(m);
        for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) rowNorms[i] += a.data[i * n + j] ** 2 * maskb[j];
        expectClose(part(forward, b, m), matVec(a, xb));
        expectClose(part(applied, b, m), matVec(a, xb, false));
        expectClose(part(transposed, b, n), matTVec(a, ub));
        expectClose(part(norms, b, m), rowNorms);
        expectClose(part(forward, b, m), await backend().forward(layer, xb), 1e-5);
        expectClose(part(applied, b, m), await backend().applyA(layer, xb), 1e-5);
        expectClose(part(transposed, b, n), await backend().applyAT(layer, ub), 1e-5);
        expectClose(part(norms, b, m), await backend().rowNormsSquared(layer, maskb), 1e-5);
      }
    });

    test.each(COUNTS)('B = %i: Gram operator with each run\'s own mask and slopes', async (count) => {
      const rand = random(200 + count);
      const x = randomArray(count * n, rand);
      const masks = runMasks(count, n, rand);
      const slope2 = Float32Array.from({ length: count * m }, () => ((rand() + 1) / 2) ** 2);
      for (const [d, l2] of [[masks, slope2], [null, null], [masks, null], [null, slope2]] as const) {
        const op = await backend().gramBlockOperator(layer, d, l2, count);
        expect([op.dim, op.count]).toEqual([n, count]);
        const input = backend().blocks.uploadBlock(x, count);
        const out = backend().blocks.allocBlock(count, n);
        await op.apply(input, out);
        const result = await backend().blocks.downloadBlock(out);
        for (let b = 0; b < count; b++) {
          const xb = x.subarray(b * n, (b + 1) * n);
          const maskb = d && d.subarray(b * n, (b + 1) * n);
          const l2b = l2 && l2.subarray(b * m, (b + 1) * m);
          expectClose(part(result, b, n), gramDense(a, maskb, l2b, xb));
          // The same run through the single-vector operator.
          const single = await backend().gramOperator(layer, maskb, l2b);
          const v = backend().vectors.upload(xb);
          const w = backend().vectors.alloc(n);
          await single.apply(v, w);
          expectClose(part(result, b, n), await backend().vectors.download(w), 1e-5);
          single.dispose();
          backend().vectors.free(v);
          backend().vectors.free(w);
        }
        op.dispose();
        backend().blocks.freeBlock(input);
        backend().blocks.freeBlock(out);
      }
    });
  });

  describe.each(poolLayers)('max pool %s', (_label, layer) => {
    const [n, m] = [size(layer.inputShape), size(layer.outputShape)];
    test.each(COUNTS)('B = %i: forward and mask propagation per vector = single calls = definition', async (count) => {
      const rand = random(300 + count);
      const x = randomArray(count * n, rand);
      const masks = runMasks(count, n, rand);
      const pooled = await backend().maxPoolBlock(layer, x, count);
      const maskOut = await backend().poolMaskBlock(layer, masks, count);
      expect([pooled.length, maskOut.length]).toEqual([count * m, count * m]);
      for (let b = 0; b < count; b++) {
        const [xb, maskb] = [x.subarray(b * n, (b + 1) * n), masks.subarray(b * n, (b + 1) * n)];
        expectClose(part(pooled, b, m), maxPoolReference(layer, xb), 1e-6);
        expect(Array.from(part(maskOut, b, m))).toEqual(Array.from(maxPoolReference(layer, maskb, true)));
        expect(Array.from(part(pooled, b, m))).toEqual(Array.from(await backend().maxPool(layer, xb)));
      }
    });
  });

  test('a block whose length is not count × the layer size is refused', async () => {
    const layer = affineLayers[0][1];
    await expect(backend().applyABlock(layer, new Float32Array(size(layer.inputShape) * 2 + 1), 2)).rejects.toThrow();
    await expect(backend().gramBlockOperator(layer, new Float32Array(size(layer.inputShape)), null, 2)).rejects.toThrow();
  });

  describe('BlockVectorOps', () => {
    const count = 3;
    const dim = 1000; // several workgroups per run on the GPU
    const rand = random(7);
    const data = (k: number) => Array.from({ length: k }, () => Float64Array.from({ length: count * dim }, rand));
    const run = (v: Float64Array, b: number) => v.subarray(b * dim, (b + 1) * dim);
    const dot = (p: Float64Array, q: Float64Array) => p.reduce((s, value, i) => s + value * q[i], 0);

    function expectRunsClose(actual: Float64Array, expected: Float64Array) {
      for (let b = 0; b < expected.length / dim; b++) expectClose(run(actual, b), run(expected, b), 1e-5);
    }

    test.each([1, 4, 6, 9])('dotsRuns and combineRuns with %i basis blocks: run-major coefficients, per run', async (k) => {
      const ops = backend().blocks;
      const [xData, ...basisData] = data(k + 1);
      const x = ops.uploadBlock(xData, count);
      const basis = basisData.map((b) => ops.uploadBlock(b, count));
      const dots = await ops.dotsRuns(x, basis);
      expect(dots.length).toBe(count * k);
      const expectedDots = new Float64Array(count * k);
      for (let b = 0; b < count; b++) for (let i = 0; i < k; i++) expectedDots[b * k + i] = dot(run(xData, b), run(basisData[i], b));
      expectClose(dots, expectedDots, 1e-5);

      const coefficients = Float64Array.from({ length: count * k }, rand);
      const out = ops.allocBlock(count, dim);
      ops.combineRuns(coefficients, basis, out);
      const expected = new Float64Array(count * dim);
      for (let b = 0; b < count; b++)
        for (let i = 0; i < k; i++) for (let j = 0; j < dim; j++) expected[b * dim + j] += coefficients[b * k + i] * basisData[i][b * dim + j];
      expectRunsClose(await ops.downloadBlock(out), expected);
      [x, out, ...basis].forEach((block) => ops.freeBlock(block));
    });

    test('scaleRuns, axpyRuns, copyBlock, combineRuns of nothing', async () => {
      const ops = backend().blocks;
      const [xData, yData] = data(2);
      const x = ops.uploadBlock(xData, count);
      const y = ops.uploadBlock(yData, count);
      const alphas = [2, -0.5, 0];
      ops.scaleRuns(alphas, x);
      const scaled = xData.map((v, i) => v * alphas[Math.floor(i / dim)]);
      const scaledBack = await ops.downloadBlock(x);
      expectRunsClose(scaledBack.subarray(0, 2 * dim), scaled.subarray(0, 2 * dim));
      expect(run(scaledBack, 2).every((v) => v === 0)).toBe(true);
      ops.axpyRuns([1, 3, -2], x, y);
      const summed = yData.map((v, i) => v + [1, 3, -2][Math.floor(i / dim)] * scaled[i]);
      expectRunsClose(await ops.downloadBlock(y), summed);
      const copy = ops.allocBlock(count, dim);
      ops.copyBlock(y, copy);
      expectRunsClose(await ops.downloadBlock(copy), summed);
      ops.combineRuns([], [], copy);
      expect(Array.from(await ops.downloadBlock(copy)).every((v) => v === 0)).toBe(true);
      [x, y, copy].forEach((block) => ops.freeBlock(block));
    });

    test('setRun, getRun and gatherRuns move single runs in and out', async () => {
      const ops = backend().blocks;
      const vectors = backend().vectors;
      const [xData] = data(1);
      const x = ops.uploadBlock(xData, count);
      const fresh = Float64Array.from({ length: dim }, rand);
      const v = vectors.upload(fresh);
      ops.setRun(x, 1, v);
      const out = vectors.alloc(dim);
      ops.getRun(x, 2, out);
      expectClose(await vectors.download(out), run(xData, 2), 1e-6);
      const gathered: DeviceBlock = ops.gatherRuns(x, [2, 1]);
      expect([gathered.count, gathered.dim]).toEqual([2, dim]);
      const values = await ops.downloadBlock(gathered);
      expectClose(values.subarray(0, dim), run(xData, 2), 1e-6);
      expectClose(values.subarray(dim), fresh, 1e-6);
      expectClose(run(await ops.downloadBlock(x), 0), run(xData, 0), 1e-6);
      [x, gathered].forEach((block) => ops.freeBlock(block));
      [v, out].forEach((vector) => vectors.free(vector));
    });

    test('one lock-step power iteration of 3 runs = 3 single power iterations', async () => {
      // What lock-step Lanczos will do each step: a block Gram application, per-run dot products
      // (one read-back), a per-run scale.
      const layer = affineLayers[0][1];
      const n = size(layer.inputShape);
      const m = size(layer.outputShape);
      const masks = runMasks(count, n, rand);
      const slope2 = Float32Array.from({ length: count * m }, () => (rand() + 1) / 2);
      const start = Float64Array.from({ length: count * n }, rand);
      const op = await backend().gramBlockOperator(layer, masks, slope2, count);
      const ops = backend().blocks;
      let v = ops.uploadBlock(start, count);
      let w = ops.allocBlock(count, n);
      const rayleigh: Float64Array[] = [];
      for (let step = 0; step < 5; step++) {
        await op.apply(v, w);
        const [vw, ww] = [await ops.dotsRuns(v, [w]), await ops.dotsRuns(w, [w])];
        rayleigh.push(vw);
        ops.scaleRuns(Array.from(ww, (s) => 1 / Math.sqrt(s)), w);
        [v, w] = [w, v];
      }
      for (let b = 0; b < count; b++) {
        const single = await backend().gramOperator(layer, masks.subarray(b * n, (b + 1) * n), slope2.subarray(b * m, (b + 1) * m));
        let p = backend().vectors.upload(start.subarray(b * n, (b + 1) * n));
        let q = backend().vectors.alloc(n);
        for (let step = 0; step < 5; step++) {
          await single.apply(p, q);
          const pq = await backend().vectors.dot(p, q);
          expect(Math.abs(pq - rayleigh[step][b])).toBeLessThanOrEqual(1e-4 * Math.abs(pq));
          backend().vectors.scale(1 / Math.sqrt(await backend().vectors.dot(q, q)), q);
          [p, q] = [q, p];
        }
        single.dispose();
        backend().vectors.free(p);
        backend().vectors.free(q);
      }
      op.dispose();
      ops.freeBlock(v);
      ops.freeBlock(w);
    });
  });
});

test('CPU: a starved session cache (every session released after use) gives the same blocks and single vectors', async () => {
  const layer = affineLayers.find(([label]) => label.startsWith('conv strided'))![1];
  const [n, m] = [size(layer.inputShape), size(layer.outputShape)];
  const rand = random(29);
  const x = randomArray(3 * n, rand);
  const masks = runMasks(3, n, rand);
  const slope2 = Float32Array.from({ length: 3 * m }, () => (rand() + 1) / 2);
  const results: Float32Array[][] = [];
  for (const budget of [undefined, 1]) {
    const cpu = createCpuBackend({ sessionBudgetBytes: budget });
    try {
      const op = await cpu.gramBlockOperator(layer, masks, slope2, 3);
      const out = cpu.blocks.allocBlock(3, n);
      await op.apply(cpu.blocks.uploadBlock(x, 3), out);
      op.dispose();
      results.push([
        await cpu.applyA(layer, x.subarray(0, n)),
        await cpu.applyABlock(layer, x, 3),
        await cpu.applyA(layer, x.subarray(n, 2 * n)),
        await cpu.applyATBlock(layer, await cpu.applyABlock(layer, x.subarray(0, 2 * n), 2), 2),
        Float32Array.from(await cpu.blocks.downloadBlock(out)),
      ]);
    } finally {
      await cpu.dispose();
    }
  }
  results[0].forEach((expected, i) => expect(Array.from(results[1][i])).toEqual(Array.from(expected)));
  expectClose(results[0][1].subarray(0, m), results[0][0]);
  expectClose(results[0][1].subarray(m, 2 * m), results[0][2]);
});

test('CPU: blocks larger than one session call\'s working set are split into calls and agree with single vectors', async () => {
  const layer = conv([4, 48, 48], 4, [3, 3], { pads: [1, 1, 1, 1] }) as ConvLayer;
  const [n, m] = [size(layer.inputShape), size(layer.outputShape)];
  const count = 64;
  for (const op of ['gram', 'linear', 'transpose', 'rowNormsSquared'] as const) expect(callChunks(layer, op, count).length).toBeGreaterThan(1);
  const cpu = createCpuBackend();
  try {
    const rand = random(31);
    const x = randomArray(count * n, rand);
    const masks = runMasks(count, n, rand);
    const slope2 = Float32Array.from({ length: count * m }, () => (rand() + 1) / 2);
    const op = await cpu.gramBlockOperator(layer, masks, slope2, count);
    const out = cpu.blocks.allocBlock(count, n);
    await op.apply(cpu.blocks.uploadBlock(x, count), out);
    const gram = await cpu.blocks.downloadBlock(out);
    op.dispose();
    const [applied, transposed, norms] = [await cpu.applyABlock(layer, x, count), await cpu.applyATBlock(layer, x, count), await cpu.rowNormsSquaredBlock(layer, masks, count)];
    const boundaries = new Set(callChunks(layer, 'gram', count).flatMap(([first, runs]) => [first, first + runs - 1]));
    for (const b of [...boundaries, 21]) {
      const [xb, maskb] = [x.subarray(b * n, (b + 1) * n), masks.subarray(b * n, (b + 1) * n)];
      const single = await cpu.gramOperator(layer, maskb, slope2.subarray(b * m, (b + 1) * m));
      const w = cpu.vectors.alloc(n);
      await single.apply(cpu.vectors.upload(xb), w);
      single.dispose();
      expectClose(part(gram, b, n), await cpu.vectors.download(w), 1e-5);
      expectClose(part(applied, b, m), await cpu.applyA(layer, xb), 1e-5);
      expectClose(part(transposed, b, n), await cpu.applyAT(layer, xb), 1e-5);
      expectClose(part(norms, b, m), await cpu.rowNormsSquared(layer, maskb), 1e-5);
    }
  } finally {
    await cpu.dispose();
  }
});

// WebGPU only: blocks through dense weights split across storage bindings, and combinations whose
// dispatches straddle an automatic submit (the coefficient buffer must survive it).
const gpuSuite = webgpuAvailable ? describe : describe.skip;
gpuSuite('WebGPU blocks', () => {
  let gpu: Backend;
  beforeAll(async () => {
    gpu = (await tryCreateWebGpuBackend()).backend!;
  });
  afterAll(async () => {
    await gpu.dispose();
  });

  test('dense weights split across bindings, B = 5 (a partial group of four vectors)', async () => {
    const { backend: split } = await tryCreateWebGpuBackend({ maxBindingBytes: 16 * 300 * 4 });
    expect(split).not.toBeNull();
    try {
      const layer = affineLayers.find(([label]) => label.startsWith('dense large'))![1];
      const a = denseOf(layer);
      const rand = random(17);
      const count = 5;
      const x = randomArray(count * a.cols, rand);
      const u = randomArray(count * a.rows, rand);
      const masks = runMasks(count, a.cols, rand);
      const [forward, transposed, norms] = [
        await split!.forwardBlock(layer, x, count),
        await split!.applyATBlock(layer, u, count),
        await split!.rowNormsSquaredBlock(layer, masks, count),
      ];
      for (let b = 0; b < count; b++) {
        const maskb = masks.subarray(b * a.cols, (b + 1) * a.cols);
        const rowNorms = new Float64Array(a.rows);
        for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) rowNorms[i] += a.data[i * a.cols + j] ** 2 * maskb[j];
        expectClose(part(forward, b, a.rows), matVec(a, x.subarray(b * a.cols, (b + 1) * a.cols)));
        expectClose(part(transposed, b, a.cols), matTVec(a, u.subarray(b * a.rows, (b + 1) * a.rows)));
        expectClose(part(norms, b, a.rows), rowNorms);
      }
    } finally {
      await split!.dispose();
    }
  });

  test('a combination straddling an automatic submit keeps its coefficients', async () => {
    const ops = gpu.blocks;
    const count = 2;
    const dim = 64;
    const rand = random(23);
    const basisData = Array.from({ length: 12 }, () => Float64Array.from({ length: count * dim }, rand));
    const basis = basisData.map((b) => ops.uploadBlock(b, count));
    const scratch = ops.allocBlock(count, dim);
    const out = ops.allocBlock(count, dim);
    const other = ops.allocBlock(count, dim);
    const first = Float64Array.from({ length: count * 12 }, rand);
    const second = Float64Array.from({ length: count * 12 }, rand);
    // 510 recorded dispatches, then a combination of three dispatches (the runtime submits after
    // 512), then another combination whose coefficients reuse the pooled buffer.
    for (let i = 0; i < 510; i++) ops.scaleRuns([1, 1], scratch);
    ops.combineRuns(first, basis, out);
    ops.combineRuns(second, basis, other);
    for (const [coefficients, block] of [[first, out], [second, other]] as const) {
      const expected = new Float64Array(count * dim);
      for (let b = 0; b < count; b++)
        for (let i = 0; i < 12; i++) for (let j = 0; j < dim; j++) expected[b * dim + j] += coefficients[b * 12 + i] * basisData[i][b * dim + j];
      expectClose(await ops.downloadBlock(block), expected, 1e-5);
    }
    [scratch, out, other, ...basis].forEach((block) => ops.freeBlock(block));
  });
});

describe('CPU combine: coefficients of any array kind', () => {
  // combine() converts plain-array coefficients to a Float64Array (one element kind keeps its loops
  // optimised): plain arrays, Float64Arrays and offset subarrays must give the same sums exactly.
  test.each([1, 3, 4, 7])('%i basis vectors', async (k) => {
    const { cpuVectors } = await import('../../src/backend/cpu/vectors.js');
    const rand = random(11);
    const dim = 37;
    const basis = Array.from({ length: k }, () => Float64Array.from({ length: dim }, rand));
    const plain = Array.from({ length: k }, rand);
    const padded = Float64Array.from([rand(), ...plain]);
    const expected = new Float64Array(dim);
    for (let j = 0; j < dim; j++) for (let i = 0; i < k; i++) expected[j] += plain[i] * basis[i][j];
    const results = [plain, Float64Array.from(plain), padded.subarray(1)].map((coefficients) => {
      const out = new Float64Array(dim).fill(NaN);
      cpuVectors.combine(coefficients, basis, out);
      return out;
    });
    for (const out of results) expect(Array.from(out)).toEqual(Array.from(results[0]));
    expectClose(results[0], expected, 1e-12);
  });
});
