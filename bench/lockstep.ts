/**
 * Lock-step Lanczos against one run at a time (issue 17): `npm run bench -- --only lockstep` on
 * the CPU, and bench/gpu.ts's `lockstep` section on a GPU.
 *
 * - Layers: the operators D_b Aᵀ Λ_b² A D_b of each affine layer at B values of ε (log-spaced
 *   from 10⁻³ to 1, as the paper's local bound at x0 builds them), solved one run after another
 *   (spectral.ts, fresh starts) and as one lock-step block per engine; then the KW certificates of
 *   the same runs, single (certificates.ts) and lock-step. Per layer: wall time for all B runs,
 *   the speed-up, operator applications (single: one per step and run; block: batched calls and
 *   the applications they held), read-backs, and the largest relative difference of the results.
 * - Bounds: one local bound (the paper's method, Lanczos estimates) per ε with SpectralSolver
 *   against LockstepSpectralSolver alone (B = 1: the device engine on a GPU) and with every ε of
 *   the list together (`together`, the layers of all ε in shared blocks): time per bound.
 * Figures are medians of `rounds` rounds in which the variants take turns. Never a test: they
 * depend on the machine and its load.
 */
import type { Backend, GramOperator } from '../src/backend/backend.js';
import { kwLargestEigenvalue } from '../src/bounds/certificates.js';
import { kwLargestEigenvaluesLockstep } from '../src/bounds/kw-block.js';
import { largestEigenvaluesLockstep } from '../src/bounds/lanczos-block.js';
import { localBound, nominalPass, type NominalPass, SpectralSolver, type SpectralSettings } from '../src/bounds/layer-bounds.js';
import type { LockstepEngine } from '../src/bounds/lockstep.js';
import { LockstepSpectralSolver } from '../src/bounds/lockstep-solver.js';
import { largestEigenvalue } from '../src/bounds/spectral.js';
import type { SpectralNormReport } from '../src/bounds/types.js';
import type { NormSolver } from '../src/bounds/norms.js';
import type { AffineLayer, Network } from '../src/model/ir.js';

export interface LockstepBenchOptions {
  /** Runs per block B (ε values of one image). */
  counts: number[];
  rounds: number;
  tolerance: number;
  maxIterations: number;
  /** Local bounds of the `bounds` table. */
  eps: number[];
  /** Leave out the KW rows (long vectors: VGG-16). */
  certificates: boolean;
  /** Steps per read-back of the device engine (its default when absent). */
  stepsPerReadBack?: number;
}

export const DEFAULT_LOCKSTEP_BENCH: LockstepBenchOptions = { counts: [4, 16], rounds: 3, tolerance: 1e-6, maxIterations: 5000, eps: [0.001, 0.01, 0.1, 1], certificates: true };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (seconds: number) => (seconds < 0.1 ? `${(seconds * 1000).toFixed(2)} ms` : `${(seconds * 1000).toFixed(0)} ms`);

/** ε values log-spaced from 10⁻³ to 1. */
function epsValues(count: number): number[] {
  return Array.from({ length: count }, (_, i) => (count === 1 ? 0.01 : 10 ** (-3 + (3 * i) / (count - 1))));
}

/** The operators of one layer at B runs: its input masks and slopes (Λ²), as the local bound made them. */
export interface LayerRuns {
  index: number;
  layer: AffineLayer;
  masks: (Float32Array | null)[];
  slopes: (Float32Array | null)[];
}

/** A SpectralSolver that notes every operator it is asked for. */
class RecordingSolver extends SpectralSolver {
  readonly requests: { index: number; layer: AffineLayer; mask: Float32Array | null; slopes: Float32Array | null }[] = [];

  override norm(key: string, index: number, layer: AffineLayer, mask: Float32Array | null, slopes: Float32Array | null): Promise<SpectralNormReport> {
    this.requests.push({ index, layer, mask, slopes });
    return super.norm(key, index, layer, mask, slopes);
  }
}

/** Each affine layer's operators at the ε values: B runs per layer that needed Lanczos at every ε. */
export async function recordRuns(backend: Backend, network: Network, nominal: NominalPass, eps: number[], settings: SpectralSettings): Promise<LayerRuns[]> {
  const perEps = [];
  for (const e of eps) {
    const solver = new RecordingSolver(backend, settings);
    await localBound(network, backend, nominal, e, solver);
    solver.dispose();
    perEps.push(new Map(solver.requests.map((r) => [r.index, r])));
  }
  const layers: LayerRuns[] = [];
  for (const [index, first] of perEps[0]) {
    if (!perEps.every((m) => m.has(index))) continue;
    layers.push({ index, layer: first.layer, masks: perEps.map((m) => m.get(index)!.mask), slopes: perEps.map((m) => m.get(index)!.slopes) });
  }
  return layers;
}

/** B runs' masks or slopes one after another (null: identities in every run). */
export function joined(parts: (Float32Array | null)[], per: number): Float32Array | null {
  if (parts.every((p) => p === null)) return null;
  const out = new Float32Array(parts.length * per).fill(1);
  parts.forEach((p, b) => p && out.set(p, b * per));
  return out;
}

interface Measured {
  seconds: number[];
  values: number[];
  calls: number;
  applications: number;
  readBacks: number;
}

const measured = (): Measured => ({ seconds: [], values: [], calls: 0, applications: 0, readBacks: 0 });

async function singleOperators(backend: Backend, runs: LayerRuns): Promise<GramOperator[]> {
  return Promise.all(runs.masks.map((mask, b) => backend.gramOperator(runs.layer, mask, runs.slopes[b])));
}

/** Times the eigen-solves (and KW certificates) of one layer's B runs, single against lock-step. */
async function layerRow(backend: Backend, runs: LayerRuns, options: LockstepBenchOptions, engines: LockstepEngine[]): Promise<string[]> {
  const count = runs.masks.length;
  const [n, m] = [runs.layer.inputShape.reduce((a, b) => a * b, 1), runs.layer.outputShape.reduce((a, b) => a * b, 1)];
  const masks = joined(runs.masks, n);
  const slopes = joined(runs.slopes, m);
  const seeds = Array.from({ length: count }, () => runs.index + 1);
  const settings = { tolerance: options.tolerance, maxIterations: options.maxIterations };
  const eigen = { single: measured(), ...Object.fromEntries(engines.map((e) => [e, measured()])) } as Record<'single' | LockstepEngine, Measured>;
  const kw = { single: measured(), ...Object.fromEntries(engines.map((e) => [e, measured()])) } as Record<'single' | LockstepEngine, Measured>;
  const kwSeeds = seeds.map((s, b) => 1000 * s + b);
  for (let round = 0; round <= options.rounds; round++) {
    const timed = round > 0; // round 0 warms sessions and pipelines up
    // Single runs, one after another.
    let started = performance.now();
    const ops = await singleOperators(backend, runs);
    const results = [];
    for (const op of ops) results.push(await largestEigenvalue(op, backend.vectors, { ...settings, seed: runs.index + 1 }));
    if (timed) eigen.single.seconds.push((performance.now() - started) / 1000);
    eigen.single.values = results.map((r) => r.eigenvalue);
    eigen.single.calls = eigen.single.applications = results.reduce((a, r) => a + r.iterations, 0);
    results.forEach((r) => backend.vectors.free(r.vector));
    if (options.certificates) {
      started = performance.now();
      const certs = [];
      for (const [b, op] of ops.entries()) certs.push(await kwLargestEigenvalue(op, backend.vectors, { delta: 1e-3, seed: kwSeeds[b], support: runs.masks[b] }));
      if (timed) kw.single.seconds.push((performance.now() - started) / 1000);
      kw.single.values = certs.map((c) => c.bound);
      kw.single.calls = kw.single.applications = certs.reduce((a, c) => a + c.steps, 0);
    }
    ops.forEach((op) => op.dispose());
    for (const engine of engines) {
      started = performance.now();
      let op = await backend.gramBlockOperator(runs.layer, masks, slopes, count);
      const block = await largestEigenvaluesLockstep(op, backend, { ...settings, seeds, engine, stepsPerReadBack: options.stepsPerReadBack });
      if (timed) eigen[engine].seconds.push((performance.now() - started) / 1000);
      op.dispose();
      Object.assign(eigen[engine], { values: block.runs.map((r) => r.eigenvalue), calls: block.operatorCalls, applications: block.runApplications, readBacks: block.readBacks });
      block.runs.forEach((r) => backend.vectors.free(r.vector));
      if (!options.certificates) continue;
      started = performance.now();
      op = await backend.gramBlockOperator(runs.layer, masks, slopes, count);
      const certs = await kwLargestEigenvaluesLockstep(op, backend, { delta: 1e-3, seeds: kwSeeds, supports: masks, engine, ranks: runs.slopes.map((s) => (s ? s.reduce((a, v) => a + (v > 0 ? 1 : 0), 0) : m)) });
      if (timed) kw[engine].seconds.push((performance.now() - started) / 1000);
      op.dispose();
      Object.assign(kw[engine], { values: certs.runs.map((r) => r.bound), calls: certs.operatorCalls, applications: certs.runApplications, readBacks: certs.readBacks });
    }
  }
  const shape = `${runs.layer.kind} ${runs.index} [${runs.layer.inputShape.join('×')}]`;
  const rows: string[] = [];
  for (const [what, table] of [['λ_max', eigen], ['KW', kw]] as const) {
    if (what === 'KW' && !options.certificates) continue;
    const single = median(table.single.seconds);
    for (const engine of engines) {
      const t = table[engine];
      const differs = Math.max(...t.values.map((v, b) => Math.abs(v - table.single.values[b]) / Math.max(Math.abs(table.single.values[b]), 1e-300)));
      rows.push(
        `| ${shape} | ${what} | ${count} | ${ms(single)} · ${table.single.applications} | ${engine}: ${ms(median(t.seconds))} · ${t.calls} calls (${t.applications}) · ${t.readBacks} read-backs | ${(single / median(t.seconds)).toFixed(2)}× | ${differs.toExponential(1)} |`,
      );
    }
  }
  return rows;
}

/** The layer table of one network: each affine layer's B runs at B ε values, for each B. */
export async function lockstepLayers(backend: Backend, name: string, network: Network, x0: Float32Array, options: LockstepBenchOptions = DEFAULT_LOCKSTEP_BENCH, engines: LockstepEngine[] = ['host', 'device']): Promise<void> {
  await backend.prepare(network);
  const nominal = await nominalPass(network, backend, x0);
  console.log(`\n${name}, lock-step Lanczos per layer: B runs at B values of ε (${backend.name}, tolerance ${options.tolerance}; medians of ${options.rounds} rounds)`);
  console.log('| layer | solve | B | one run at a time · applications | lock-step · batched calls (applications) · read-backs | speed-up | largest rel. difference |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const count of options.counts) {
    const layers = await recordRuns(backend, network, nominal, epsValues(count), { tolerance: options.tolerance, maxIterations: options.maxIterations });
    for (const runs of layers) for (const row of await layerRow(backend, runs, options, engines)) console.log(row);
  }
}

/**
 * The bound table of one network: per ε, one local bound (paper's method, estimates) with
 * SpectralSolver, with LockstepSpectralSolver alone, and all ε together; seconds per bound.
 */
export async function lockstepBounds(backend: Backend, name: string, network: Network, x0: Float32Array, options: LockstepBenchOptions = DEFAULT_LOCKSTEP_BENCH, engine?: LockstepEngine): Promise<void> {
  await backend.prepare(network);
  const nominal = await nominalPass(network, backend, x0);
  const settings = { tolerance: options.tolerance, maxIterations: options.maxIterations, engine, stepsPerReadBack: options.stepsPerReadBack };
  const eps = options.eps;
  const times = { single: eps.map(() => [] as number[]), alone: eps.map(() => [] as number[]), together: [] as number[] };
  const bounds = { single: [] as number[], alone: [] as number[], together: [] as number[] };
  const applications = { single: 0, alone: 0, together: 0 };
  for (let round = 0; round <= options.rounds; round++) {
    const timed = round > 0;
    for (const [i, e] of eps.entries()) {
      // Fresh solvers: no warm start carried from one bound to the next.
      for (const variant of ['single', 'alone'] as const) {
        const solver = variant === 'single' ? new SpectralSolver(backend, settings) : new LockstepSpectralSolver(backend, settings);
        const started = performance.now();
        const bound = await localBound(network, backend, nominal, e, solver);
        if (timed) times[variant][i].push((performance.now() - started) / 1000);
        solver.dispose();
        bounds[variant][i] = bound.bound;
        if (i === 0) applications[variant] = 0;
        applications[variant] += bound.layers.reduce((a, l) => a + (l.spectral?.iterations ?? 0), 0);
      }
    }
    const solver = new LockstepSpectralSolver(backend, settings);
    const started = performance.now();
    const all = await solver.together(eps.map((e) => (s: NormSolver) => localBound(network, backend, nominal, e, s)));
    if (timed) times.together.push((performance.now() - started) / 1000);
    solver.dispose();
    bounds.together = all.map((b) => b.bound);
  }
  const differs = (values: number[]) => Math.max(...values.map((v, i) => Math.abs(v - bounds.single[i]) / bounds.single[i]));
  const perBound = (list: number[][]) => list.reduce((a, t) => a + median(t), 0) / eps.length;
  console.log(`\n${name}, one local bound (paper's method, Lanczos estimates, tolerance ${options.tolerance}; ${backend.name}; medians of ${options.rounds} rounds), ε = ${eps.join(', ')}`);
  console.log('| solver | time per bound | speed-up | Lanczos steps (all ε) | largest rel. difference of the bounds |');
  console.log('| --- | --- | --- | --- | --- |');
  const base = perBound(times.single);
  console.log(`| SpectralSolver, one ε at a time | ${ms(base)} | 1.00× | ${applications.single} | 0 |`);
  console.log(`| LockstepSpectralSolver, one ε at a time | ${ms(perBound(times.alone))} | ${(base / perBound(times.alone)).toFixed(2)}× | ${applications.alone} | ${differs(bounds.alone).toExponential(1)} |`);
  const together = median(times.together) / eps.length;
  console.log(`| LockstepSpectralSolver, all ${eps.length} ε together | ${ms(together)} | ${(base / together).toFixed(2)}× | | ${differs(bounds.together).toExponential(1)} |`);
}
