/**
 * BasisOps (the device-resident basis of lock-step Lanczos) against float64 loops on both
 * backends: storeSlot, combineSlots over non-contiguous slots, orthonormalise (CGS2 coefficients,
 * the residual's norm and the normalised vector, into a slot or not, the record's layout with a
 * stride and an offset), keepRuns and keepBasisRuns; a basis too large for one binding is refused; and
 * BlockGramOperator.gatherRuns equals the operator built from the gathered masks and slopes.
 */
import { describe, expect, test } from '@jest/globals';
import { size } from '../../src/model/ir.js';
import { describeEachBackend, webgpuAvailable } from './backends.js';
import { affineLayers } from './layer-cases.js';
import { expectClose, random, randomArray, randomMask } from './webgpu-reference.js';
import { tryCreateWebGpuBackend } from './webgpu-setup.js';

const [count, dim, slots] = [3, 700, 6];
const rand = random(41);
const data = () => Float64Array.from({ length: count * dim }, rand);
const run = (v: Float64Array, b: number) => v.subarray(b * dim, (b + 1) * dim);
const dot = (p: Float64Array, q: Float64Array) => p.reduce((s, value, i) => s + value * q[i], 0);

describeEachBackend((backend) => {
  const tolerance = () => (backend().name === 'cpu' ? 1e-12 : 2e-5);

  test('storeSlot and combineSlots (slots in any order, host coefficients)', async () => {
    const { basis: ops, blocks } = backend();
    const values = Array.from({ length: slots }, data);
    const basis = ops.allocBasis(count, dim, slots)!;
    expect([basis.count, basis.dim, basis.slots]).toEqual([count, dim, slots]);
    values.forEach((v, s) => {
      const block = blocks.uploadBlock(v, count);
      ops.storeSlot(basis, s, block);
      blocks.freeBlock(block);
    });
    const chosen = [4, 0, 1, 2, 5]; // two ranges: [4], [0, 1, 2], [5]
    const coefficients = Float64Array.from({ length: count * chosen.length }, rand);
    const out = blocks.allocBlock(count, dim);
    ops.combineSlots(basis, chosen, coefficients, out);
    const result = await blocks.downloadBlock(out);
    for (let b = 0; b < count; b++) {
      const expected = new Float64Array(dim);
      chosen.forEach((s, i) => run(values[s], b).forEach((v, j) => (expected[j] += coefficients[b * chosen.length + i] * v)));
      expectClose(run(result, b), expected, tolerance());
    }
    blocks.freeBlock(out);
    ops.freeBasis(basis);
  });

  test.each([
    ['against a prefix, into a slot', [0, 1, 2], 3],
    ['against two ranges, into no slot', [0, 1, 4], null],
    ['against nothing (normalisation only)', [], 5],
  ] as [string, number[], number | null][])('orthonormalise %s: CGS2 coefficients, ν and the normalised vector', async (_label, against, into) => {
    const { basis: ops, blocks } = backend();
    // An orthonormal basis per run (Gram–Schmidt in float64 on the host).
    const values = Array.from({ length: slots }, data);
    for (let b = 0; b < count; b++)
      for (let s = 0; s < slots; s++) {
        const v = run(values[s], b);
        for (let t = 0; t < s; t++) {
          const c = dot(v, run(values[t], b));
          run(values[t], b).forEach((u, j) => (v[j] -= c * u));
        }
        const norm = Math.sqrt(dot(v, v));
        v.forEach((_, j) => (v[j] /= norm));
      }
    const basis = ops.allocBasis(count, dim, slots)!;
    values.forEach((v, s) => {
      const block = blocks.uploadBlock(v, count);
      ops.storeSlot(basis, s, block);
      blocks.freeBlock(block);
    });
    const wData = data();
    const w = blocks.uploadBlock(wData, count);
    const next = blocks.allocBlock(count, dim);
    const k = against.length;
    const [offset, stride] = [5, 2 * k + 3];
    const record = ops.allocScalars(offset + count * stride);
    ops.orthonormalise(basis, w, against, next, into, record, offset, stride);
    const scalars = await ops.readScalars(record);
    const normalised = await blocks.downloadBlock(next);
    for (let b = 0; b < count; b++) {
      const x = Float64Array.from(run(wData, b));
      const c1 = against.map((s) => dot(x, run(values[s], b)));
      const residual = x.map((v, j) => v - against.reduce((a, s, i) => a + c1[i] * run(values[s], b)[j], 0));
      const nu = dot(residual, residual);
      const at = offset + b * stride;
      if (k > 0) expectClose(scalars.subarray(at, at + k), c1, tolerance());
      // The second pass finds what the first left: rounding only.
      for (let i = 0; i < k; i++) expect(Math.abs(scalars[at + k + i])).toBeLessThan(1e-4 * Math.sqrt(dot(x, x)));
      expect(Math.abs(scalars[at + 2 * k] - nu)).toBeLessThanOrEqual(tolerance() * 10 * nu);
      expectClose(run(normalised, b), residual.map((v) => v / Math.sqrt(nu)), 1e-4);
    }
    if (into !== null) {
      // The slot now holds the normalised vectors: combining it alone gives them back.
      const out = blocks.allocBlock(count, dim);
      ops.combineSlots(basis, [into], new Float64Array(count).fill(1), out);
      expectClose(await blocks.downloadBlock(out), normalised, 1e-6);
      blocks.freeBlock(out);
    }
    [w, next].forEach((block) => blocks.freeBlock(block));
    ops.freeScalars(record);
    ops.freeBasis(basis);
  });

  test('orthonormalise of a zero vector gives zero (ν = 0), not NaN', async () => {
    const { basis: ops, blocks } = backend();
    const basis = ops.allocBasis(1, dim, 2)!;
    const w = blocks.allocBlock(1, dim);
    const next = blocks.allocBlock(1, dim);
    const record = ops.allocScalars(3);
    ops.orthonormalise(basis, w, [0], next, 1, record, 0, 3);
    expect(Array.from(await ops.readScalars(record))).toEqual([0, 0, 0]);
    expect((await blocks.downloadBlock(next)).every((v) => v === 0)).toBe(true);
    [w, next].forEach((block) => blocks.freeBlock(block));
    ops.freeScalars(record);
    ops.freeBasis(basis);
  });

  test('keepBasisRuns keeps the given runs of every slot, in order', async () => {
    const { basis: ops, blocks } = backend();
    const values = Array.from({ length: 2 }, () => Float64Array.from({ length: 5 * dim }, rand));
    const basis = ops.allocBasis(5, dim, 2)!;
    values.forEach((v, s) => {
      const block = blocks.uploadBlock(v, 5);
      ops.storeSlot(basis, s, block);
      blocks.freeBlock(block);
    });
    const runs = [0, 3, 4];
    const gathered = ops.keepBasisRuns(basis, runs);
    expect([gathered.count, gathered.slots]).toEqual([3, 2]);
    for (let s = 0; s < 2; s++) {
      const out = blocks.allocBlock(3, dim);
      const pick = new Float64Array(3).fill(1);
      ops.combineSlots(gathered, [s], pick, out);
      const result = await blocks.downloadBlock(out);
      runs.forEach((r, i) => expectClose(run(result, i), values[s].subarray(r * dim, (r + 1) * dim), 1e-6));
      blocks.freeBlock(out);
    }
    ops.freeBasis(gathered);
  });

  test('keepRuns keeps the given runs of a block, in order, and refuses runs out of order', async () => {
    const { blocks } = backend();
    const values = Float64Array.from({ length: 5 * dim }, rand);
    const kept = blocks.keepRuns(blocks.uploadBlock(values, 5), [1, 2, 4]);
    expect([kept.count, kept.dim]).toEqual([3, dim]);
    const result = await blocks.downloadBlock(kept);
    [1, 2, 4].forEach((r, i) => expectClose(run(result, i), values.subarray(r * dim, (r + 1) * dim), 1e-6));
    blocks.freeBlock(kept);
    if (backend().name === 'cpu') expect(() => blocks.keepRuns(blocks.uploadBlock(values, 5), [2, 1])).toThrow();
  });

  test.each(affineLayers.filter(([label]) => !label.startsWith('scale')).slice(0, 6))('%s: gatherRuns = the operator of the gathered masks and slopes', async (_label, layer) => {
    const [n, m] = [size(layer.inputShape), size(layer.outputShape)];
    const r = random(7);
    const masks = new Float32Array(4 * n);
    for (let b = 0; b < 4; b++) masks.set(randomMask(n, r, 0.4 + 0.15 * b), b * n);
    const slopes = Float32Array.from({ length: 4 * m }, () => (r() + 1) / 2);
    const x = randomArray(2 * n, r);
    const op = await backend().gramBlockOperator(layer, masks, slopes, 4);
    const gathered = await op.gatherRuns([3, 1]);
    op.dispose(); // the gathered operator lives on its own
    expect([gathered.count, gathered.dim]).toEqual([2, n]);
    const direct = await backend().gramBlockOperator(
      layer,
      Float32Array.from([...masks.subarray(3 * n, 4 * n), ...masks.subarray(n, 2 * n)]),
      Float32Array.from([...slopes.subarray(3 * m, 4 * m), ...slopes.subarray(m, 2 * m)]),
      2,
    );
    const results = [];
    for (const operator of [gathered, direct]) {
      const out = backend().blocks.allocBlock(2, n);
      await operator.apply(backend().blocks.uploadBlock(x, 2), out);
      results.push(await backend().blocks.downloadBlock(out));
      operator.dispose();
    }
    expect(Array.from(results[0])).toEqual(Array.from(results[1]));
  });
});

(webgpuAvailable ? describe : describe.skip)('WebGPU basis', () => {
  test('a basis larger than one storage binding is refused (the solver keeps separate blocks)', async () => {
    const { backend } = await tryCreateWebGpuBackend({ maxBindingBytes: 4 * 1000 });
    try {
      expect(backend!.basis.allocBasis(2, 100, 5)).not.toBeNull();
      expect(backend!.basis.allocBasis(2, 100, 6)).toBeNull();
    } finally {
      await backend!.dispose();
    }
  });
});
