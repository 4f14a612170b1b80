/**
 * Lock-step KW certificates (bounds/kw-block.ts) against the single certificate of
 * certificates.ts for the same seeds (the same Gaussian starts, hence the same numbers up to
 * rounding) and against the dense λ_max, which every certificate must bound from above: B = 1, 3,
 * 8, both engines, both backends; runs with different supports (so different step counts), a run
 * with an empty support, and a low-rank operator whose Krylov space becomes invariant early.
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import type { Backend } from '../../src/backend/backend.js';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { DEFAULT_KW_EPSILON, kwEpsilon, kwLargestEigenvalue, kwSteps } from '../../src/bounds/certificates.js';
import { kwLargestEigenvaluesLockstep } from '../../src/bounds/kw-block.js';
import type { AffineLayer } from '../../src/model/ir.js';
import { dense } from '../helpers/random-networks.js';
import { describeEachBackend } from '../backend/backends.js';
import { lockstepLayers, relativeDifference, runCase, type RunCase } from './lockstep-cases.js';

const ENGINES = ['host', 'device'] as const;
const DELTA = 1e-3;

// The single certificates are computed on the CPU (float64 vectors) for every backend: on WebGPU
// the single version loses orthogonality once a low-rank operator's range is exhausted (see
// kw-block.ts), which the block engines do not.
const reference = createCpuBackend();
afterAll(() => reference.dispose());

/** Agreement with the single certificate: the operators are float32 on both backends (onnxruntime batches differ from single calls in rounding), the GPU's vectors too. */
const agreement = (backend: Backend) => (backend.name === 'cpu' ? 1e-6 : 1e-4);

async function compare(backend: Backend, c: RunCase, engine: (typeof ENGINES)[number], seeds: number[], ranks?: number[]) {
  const op = await backend.gramBlockOperator(c.layer, c.masks, c.slopeSquared, c.count);
  const block = await kwLargestEigenvaluesLockstep(op, backend, { delta: DELTA, seeds, supports: c.masks, engine, ranks });
  op.dispose();
  expect(block.engine).toBe(engine);
  const tolerance = agreement(backend);
  for (let b = 0; b < c.count; b++) {
    const s = await c.single(reference, b);
    const single = await kwLargestEigenvalue(s, reference.vectors, { delta: DELTA, seed: seeds[b], support: c.masks.subarray(b * c.n, (b + 1) * c.n) });
    s.dispose();
    const run = block.runs[b];
    const dim = c.masks.subarray(b * c.n, (b + 1) * c.n).reduce((a, v) => a + v, 0);
    const target = Math.min(kwSteps(dim, DELTA, DEFAULT_KW_EPSILON), dim);
    if (run.steps === target && single.steps === target) {
      expect(run.epsilon).toBe(single.epsilon);
    } else {
      // An invariant Krylov space ended a run early (an operator of rank below the step count):
      // where, depends on rounding once the range is exhausted; KW then holds with k = n.
      for (const r of [run, single]) if (r.steps < target) expect(r.epsilon).toBe(kwEpsilon(dim, dim, DELTA));
      if (backend.name === 'cpu') expect(Math.abs(run.steps - single.steps)).toBeLessThanOrEqual(2);
    }
    expect(relativeDifference(run.ritz, single.ritz)).toBeLessThanOrEqual(tolerance);
    expect(relativeDifference(run.bound, single.bound)).toBeLessThanOrEqual(tolerance);
    // An upper bound of the exact λ_max (the GPU's float32 operator moves it by ~1e-6), within KW's inflation.
    expect(run.bound).toBeGreaterThanOrEqual(c.exact[b] * (1 - (backend.name === 'cpu' ? 1e-9 : 1e-5)));
    if (c.exact[b] > 0) expect(run.bound).toBeLessThanOrEqual((c.exact[b] / (1 - run.epsilon)) * (1 + 1e-4));
  }
  return block;
}

describeEachBackend((backend) => {
  describe.each(ENGINES)('%s engine', (engine) => {
    describe.each(lockstepLayers)('%s', (_label, layer) => {
      test.each([1, 3, 8])('B = %i: each run equals the single certificate and bounds the dense λ_max', async (count) => {
        const c = runCase(layer, count, 40 + count);
        const seeds = Array.from({ length: count }, (_, b) => 1000 + 7 * b);
        const block = await compare(backend(), c, engine, seeds);
        const steps = block.runs.map((r) => r.steps);
        const total = steps.reduce((a, s) => a + s, 0);
        expect(block.runApplications).toBeGreaterThanOrEqual(total);
        expect(block.runApplications).toBeLessThanOrEqual(count * block.operatorCalls);
        if (engine === 'host') {
          // One batched call per step while any run is going.
          expect(block.operatorCalls).toBe(Math.max(...steps));
        } else {
          // Blocks end where a run reaches its step count: steps after an invariant Krylov space
          // are the only ones discarded. One read-back per block, plus the start's norms.
          expect(block.operatorCalls).toBeGreaterThanOrEqual(Math.max(...steps));
          expect(block.readBacks).toBeLessThanOrEqual(count + 1);
          if (count === 1) expect(block.readBacks).toBe(2);
        }
      });
    });

    test('an empty support certifies 0 without steps; the other runs are unaffected', async () => {
      const c = runCase(lockstepLayers[0][1], 3, 61, 1);
      const block = await compare(backend(), c, engine, [4, 5, 6]);
      expect(block.runs[1]).toEqual({ bound: 0, ritz: 0, steps: 0, epsilon: 0 });
      expect(block.runs[0].steps).toBeGreaterThan(0);
    });

    test('a low-rank operator: the Krylov space becomes invariant, KW holds with k = n', async () => {
      // Rank 3: invariant by step 4 in exact arithmetic, a step later in float32, long before
      // kwSteps; given the ranks, the device engine records no step beyond that.
      const layer = dense(30, 3) as AffineLayer;
      const c = runCase(layer, 2, 62);
      const block = await compare(backend(), c, engine, [8, 9], [3, 3]);
      block.runs.forEach((run, b) => {
        const dim = c.masks.subarray(b * c.n, (b + 1) * c.n).reduce((a, v) => a + v, 0);
        expect(run.steps).toBeLessThanOrEqual(5);
        expect(run.epsilon).toBe(kwEpsilon(dim, dim, DELTA));
      });
      expect(block.operatorCalls).toBeLessThanOrEqual(5);
    });
  });

  test('seeds and supports must match the runs', async () => {
    const c = runCase(lockstepLayers[2][1], 2, 5);
    const op = await backend().gramBlockOperator(c.layer, c.masks, c.slopeSquared, 2);
    await expect(kwLargestEigenvaluesLockstep(op, backend(), { delta: DELTA, seeds: [1] })).rejects.toThrow(RangeError);
    await expect(kwLargestEigenvaluesLockstep(op, backend(), { delta: DELTA, seeds: [1, 2], supports: c.masks.subarray(0, c.n) })).rejects.toThrow(RangeError);
    op.dispose();
  });
});
