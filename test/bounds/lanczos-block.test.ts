/**
 * Lock-step thick-restart Lanczos (bounds/lanczos-block.ts) against the single-run solver of
 * spectral.ts and the dense λ_max: B = 1, 3, 8 runs with their own masks and slopes, both engines
 * ('host': spectral.ts's arithmetic; 'device': CGS2 with device-resident coefficients), both
 * backends; runs that stop at different steps, a zero operator, restarts and restricted
 * reorthogonalisation, warm starts (a lower eigenvector among them), and the counts that show
 * finished runs dropping out and the device engine's read-backs per block of steps.
 */
import { describe, expect, test } from '@jest/globals';
import type { Backend, DeviceVector } from '../../src/backend/backend.js';
import { largestEigenvaluesLockstep, type LockstepEigenOptions } from '../../src/bounds/lanczos-block.js';
import { largestEigenvalue } from '../../src/bounds/spectral.js';
import { randomVector } from '../../src/random.js';
import type { ScaleLayer } from '../../src/model/ir.js';
import { describeEachBackend } from '../backend/backends.js';
import { lockstepLayers, relativeDifference, runCase, type RunCase } from './lockstep-cases.js';

const ENGINES = ['host', 'device'] as const;

/** Tolerances by backend: the CPU keeps vectors in float64, the GPU in float32. */
function settings(backend: Backend) {
  return backend.name === 'cpu'
    ? { tolerance: 1e-9, agree: 1e-6, iterationSlack: 1 }
    : { tolerance: 1e-6, agree: 2e-4, iterationSlack: 6 };
}

/** ||x||² and xᵀGx of a unit Ritz vector of run b (through the single operator). */
async function rayleigh(backend: Backend, c: RunCase, b: number, v: DeviceVector): Promise<{ norm: number; quotient: number }> {
  const op = await c.single(backend, b);
  const w = backend.vectors.alloc(c.n);
  await op.apply(v, w);
  const result = { norm: Math.sqrt(await backend.vectors.dot(v, v)), quotient: await backend.vectors.dot(v, w) };
  backend.vectors.free(w);
  op.dispose();
  return result;
}

/** Block and single results of every run, compared; returns the block result. */
async function compareWithSingle(backend: Backend, c: RunCase, options: Omit<LockstepEigenOptions, 'maxIterations'> & { maxIterations?: number }) {
  const { agree, iterationSlack } = settings(backend);
  const full = { maxIterations: 2000, ...options };
  const op = await backend.gramBlockOperator(c.layer, c.masks, c.slopeSquared, c.count);
  const block = await largestEigenvaluesLockstep(op, backend, full);
  op.dispose();
  expect(block.runs).toHaveLength(c.count);
  for (let b = 0; b < c.count; b++) {
    const run = block.runs[b];
    const singleOp = await c.single(backend, b);
    const single = await largestEigenvalue(singleOp, backend.vectors, {
      tolerance: full.tolerance,
      maxIterations: full.maxIterations,
      basisSize: full.basisSize,
      fullReorthogonalisation: full.fullReorthogonalisation,
      seed: options.seeds?.[b] ?? 1,
      start: options.starts?.[b] ?? undefined,
    });
    singleOp.dispose();
    // The same eigenvalue as the single run and as the dense matrix, from below (up to rounding).
    expect(relativeDifference(run.eigenvalue, single.eigenvalue)).toBeLessThanOrEqual(agree);
    if (c.exact[b] > 0) expect(relativeDifference(run.eigenvalue, c.exact[b])).toBeLessThanOrEqual(agree);
    else expect(run.eigenvalue).toBe(0);
    expect(run.eigenvalue).toBeLessThanOrEqual(c.exact[b] * (1 + agree) + 1e-30);
    expect(run.converged).toBe(single.converged);
    expect(Math.abs(run.iterations - single.iterations)).toBeLessThanOrEqual(iterationSlack);
    // A unit Ritz vector whose Rayleigh quotient is the eigenvalue.
    if (c.exact[b] > 0) {
      const { norm, quotient } = await rayleigh(backend, c, b, run.vector);
      expect(norm).toBeCloseTo(1, 5);
      expect(relativeDifference(quotient, run.eigenvalue)).toBeLessThanOrEqual(agree);
    }
    backend.vectors.free(single.vector);
  }
  return block;
}

function freeVectors(backend: Backend, vectors: DeviceVector[]) {
  for (const v of vectors) backend.vectors.free(v);
}

describeEachBackend((backend) => {
  describe.each(ENGINES)('%s engine', (engine) => {
    describe.each(lockstepLayers)('%s', (_label, layer) => {
      test.each([1, 3, 8])('B = %i: every run agrees with its single run and the dense λ_max', async (count) => {
        const c = runCase(layer, count, 10 + count);
        const { tolerance } = settings(backend());
        const seeds = Array.from({ length: count }, (_, b) => 3 + b);
        const block = await compareWithSingle(backend(), c, { tolerance, seeds, engine, stepsPerReadBack: 5 });
        expect(block.engine).toBe(engine);
        const iterations = block.runs.map((r) => r.iterations);
        const total = iterations.reduce((a, i) => a + i, 0);
        // Finished runs ride along until dropping them pays (worthCompacting) or a restart.
        expect(block.runApplications).toBeGreaterThanOrEqual(total);
        expect(block.runApplications).toBeLessThanOrEqual(count * block.operatorCalls);
        if (engine === 'host') {
          // One batched call per step while any run is going.
          expect(block.operatorCalls).toBe(Math.max(...iterations));
        } else {
          // Whole blocks of 5 steps: a run's extra steps after it stopped are discarded.
          expect(block.operatorCalls).toBeGreaterThanOrEqual(Math.max(...iterations));
          expect(block.operatorCalls).toBeLessThanOrEqual(Math.max(...iterations) + 4);
          // One read-back per block of steps, plus one per batch of runs that stopped.
          const blocks = Math.ceil(block.operatorCalls / 5) + Math.ceil(block.operatorCalls / 25);
          expect(block.readBacks).toBeLessThanOrEqual(blocks + count);
        }
        freeVectors(backend(), block.runs.map((r) => r.vector));
      });
    });

    test('runs that stop at different steps, and a zero operator among them', async () => {
      const c = runCase(lockstepLayers[0][1], 4, 77, 2);
      const block = await compareWithSingle(backend(), c, { tolerance: settings(backend()).tolerance, engine, seeds: [1, 2, 3, 4] });
      const iterations = block.runs.map((r) => r.iterations);
      expect(new Set(iterations).size).toBeGreaterThan(1);
      expect(block.runs[2]).toMatchObject({ eigenvalue: 0, iterations: 1, converged: true });
      // The zero operator's run left the block early: fewer applications than 4 runs × all steps.
      expect(block.runApplications).toBeLessThan(4 * block.operatorCalls);
      freeVectors(backend(), block.runs.map((r) => r.vector));
    });

    test('thick restarts and restricted reorthogonalisation (small basis)', async () => {
      const c = runCase(lockstepLayers[0][1], 3, 91);
      for (const fullReorthogonalisation of [true, false]) {
        const block = await compareWithSingle(backend(), c, { tolerance: settings(backend()).tolerance, engine, basisSize: 8, fullReorthogonalisation, seeds: [5, 6, 7] });
        // More steps than one cycle of the basis: restarts happened.
        expect(Math.max(...block.runs.map((r) => r.iterations))).toBeGreaterThan(8);
        freeVectors(backend(), block.runs.map((r) => r.vector));
      }
    });

    test('warm starts from a previous solve: the same eigenvalues in fewer steps', async () => {
      const c = runCase(lockstepLayers[3][1], 3, 55);
      const { tolerance } = settings(backend());
      const first = await compareWithSingle(backend(), c, { tolerance, engine });
      const starts = first.runs.map((r) => r.vector);
      starts[1] = null as never; // run 1 starts cold
      const again = await compareWithSingle(backend(), c, { tolerance, engine, starts });
      expect(again.runs[0].iterations).toBeLessThan(first.runs[0].iterations);
      expect(again.runs[2].iterations).toBeLessThan(first.runs[2].iterations);
      expect(again.runs[1].iterations).toBe(first.runs[1].iterations);
      freeVectors(backend(), [...first.runs, ...again.runs].map((r) => r.vector));
    });

    test('a warm start on a lower eigenvector (an invariant subspace) still finds the top', async () => {
      // D Sᵀ Λ² S D of a diagonal layer is diagonal: run b's entries s_i²·λ_b,i², with the top at
      // index 1, 3 and 4 for runs 0, 1, 2. Warm starts: e_0 (an eigenvector of run 0, of
      // eigenvalue 1: Lanczos from it alone stays there), run 1 none, run 2 its top eigenvector.
      const s2 = [1, 81, 4, 9, 16, 0, 2, 3];
      const layer: ScaleLayer = { kind: 'scale', name: 'diagonal', relu: true, inputShape: [8], outputShape: [8], scale: Float32Array.from(s2, Math.sqrt), shift: new Float32Array(8) };
      const lambda2 = [[1, 1, 1, 1, 1, 1, 1, 1], [1, 0.5, 1, 20, 1, 1, 1, 1], [1, 1, 1, 1, 9, 1, 1, 1]];
      const tops = [81, 180, 144];
      const op = await backend().gramBlockOperator(layer, null, Float32Array.from(lambda2.flat()), 3);
      const unit = (i: number) => backend().vectors.upload(Float64Array.from({ length: 8 }, (_, k) => (k === i ? 1 : 0)));
      const starts = [unit(0), null, unit(4)];
      const block = await largestEigenvaluesLockstep(op, backend(), { tolerance: 1e-10, maxIterations: 100, starts, seeds: [9, 9, 9], engine });
      op.dispose();
      block.runs.forEach((run, b) => expect(relativeDifference(run.eigenvalue, tops[b])).toBeLessThan(1e-6));
      freeVectors(backend(), [starts[0]!, starts[2]!, ...block.runs.map((r) => r.vector)]);
    });
  });

  test('a warm start opposite the random start falls back on the random start alone (the cold start)', async () => {
    const c = runCase(lockstepLayers[2][1], 2, 66);
    const op = await backend().gramBlockOperator(c.layer, c.masks, c.slopeSquared, 2);
    const r = randomVector(c.n, 4);
    const norm = Math.hypot(...r);
    // Run 0: −r̂ exactly (ŵ + r̂ = 0); run 1: nearly −r̂ (ŵ·r̂ < −3/4).
    const opposite = backend().vectors.upload(r.map((v) => -v / norm));
    const nearly = backend().vectors.upload(r.map((v, i) => -v / norm + (i === 0 ? 0.3 : 0)));
    const options = { tolerance: 1e-8, maxIterations: 500, seeds: [4, 4] };
    const warm = await largestEigenvaluesLockstep(op, backend(), { ...options, starts: [opposite, nearly] });
    const cold = await largestEigenvaluesLockstep(op, backend(), options);
    op.dispose();
    for (let b = 0; b < 2; b++) {
      expect(warm.runs[b].iterations).toBe(cold.runs[b].iterations);
      expect(warm.runs[b].eigenvalue).toBe(cold.runs[b].eigenvalue);
    }
    freeVectors(backend(), [opposite, nearly, ...warm.runs.map((r) => r.vector), ...cold.runs.map((r) => r.vector)]);
  });

  test('warm starts and seeds must come one per run', async () => {
    const c = runCase(lockstepLayers[2][1], 2, 5);
    const op = await backend().gramBlockOperator(c.layer, c.masks, c.slopeSquared, 2);
    await expect(largestEigenvaluesLockstep(op, backend(), { tolerance: 1e-6, maxIterations: 10, seeds: [1] })).rejects.toThrow(RangeError);
    await expect(largestEigenvaluesLockstep(op, backend(), { tolerance: 1e-6, maxIterations: 10, starts: [null, null, null] })).rejects.toThrow(RangeError);
    op.dispose();
  });
});
