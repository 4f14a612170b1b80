/**
 * VectorOps and BlockVectorOps on the GPU: a device vector is an f32 storage buffer, a block of B
 * runs one storage buffer of B·dim (run r at [r·dim, (r+1)·dim)). Both go through the same
 * run-wise kernels, a vector being a block of one run. copy/scale/axpy/combine are recorded and
 * stay on the device; dots submit and read back only the dot products, reduced in two levels
 * (per-workgroup pairwise sums, then one workgroup per dot product), every run's in one read-back.
 * Combinations and dot products take four basis vectors per dispatch (combine4, dot4_partials):
 * Lanczos' reorthogonalisation would otherwise be one dispatch per basis vector.
 *
 * Coefficients reach combine4 and scale through a storage buffer, in the run-major layout in which
 * sum_partials writes dot products: device-resident Lanczos can bind the dot products it just
 * computed as the next combination's coefficients without a read-back in between.
 */
import type { BlockVectorOps, DeviceBlock, DeviceVector, VectorOps } from '../backend.js';
import { invariant } from '../../errors.js';
import { linearGroups } from './layers.js';
import { DOT_WORKGROUPS_TARGET, LINEAR_WORKGROUP, MAX_PARTIALS_PER_DOT } from './programs.js';
import type { GpuRuntime } from './runtime.js';

export class GpuVector implements DeviceVector {
  constructor(
    readonly length: number,
    readonly buffer: GPUBuffer,
  ) {}
}

export class GpuBlock implements DeviceBlock {
  constructor(
    readonly count: number,
    readonly dim: number,
    readonly buffer: GPUBuffer,
  ) {}
}

export function asGpuVector(v: DeviceVector): GpuVector {
  invariant(v instanceof GpuVector, 'a device vector of another backend was passed to the WebGPU backend');
  return v;
}

export function asGpuBlock(x: DeviceBlock): GpuBlock {
  invariant(x instanceof GpuBlock, 'a device block of another backend was passed to the WebGPU backend');
  return x;
}

/** runs × dim values in one buffer: what the run-wise kernels take. */
interface Runs {
  runs: number;
  dim: number;
  buffer: GPUBuffer;
}

const vectorRuns = (v: DeviceVector): Runs => ({ runs: 1, dim: v.length, buffer: asGpuVector(v).buffer });
const blockRuns = (x: DeviceBlock): Runs => ({ runs: x.count, dim: x.dim, buffer: asGpuBlock(x).buffer });

function sameLayout(a: Runs, b: Runs): void {
  invariant(a.runs === b.runs && a.dim === b.dim, `vector layouts differ: ${a.runs}×${a.dim} and ${b.runs}×${b.dim}`);
}

/** The run-wise kernels behind both interfaces. */
class RunKernels {
  constructor(private readonly runtime: GpuRuntime) {}

  /** x_r ← alphas[r]·x_r */
  scale(alphas: ArrayLike<number>, x: Runs): void {
    invariant(alphas.length === x.runs, 'scale: one factor per run');
    const factors = this.runtime.transientStorage(Float32Array.from(alphas));
    this.runtime.dispatch('scale', { length: x.dim, runs: x.runs }, [factors, x.buffer], linearGroups(x.runs * x.dim));
  }

  /**
   * out_r ← beta·out_r + Σ_i coefficients[r·k + i]·basis[i]_r, k = basis.length ≥ 1, four basis
   * vectors per dispatch (one pass over out for each four).
   */
  combine(coefficients: ArrayLike<number>, basis: Runs[], out: Runs, beta: number): void {
    const k = basis.length;
    invariant(k > 0, 'combine of no vectors');
    invariant(coefficients.length === out.runs * k, `combine: ${coefficients.length} coefficients for ${out.runs} runs × ${k} vectors`);
    const buffers = basis.map((b) => {
      sameLayout(b, out);
      invariant(b.buffer !== out.buffer, 'combine/axpy: out must not be one of the inputs');
      return b.buffer;
    });
    const c = this.runtime.transientStorage(Float32Array.from(coefficients));
    for (let slot = 0; slot < k; slot += 4) {
      const group = buffers.slice(slot, slot + 4);
      const bound = [0, 1, 2, 3].map((i) => group[i] ?? group[0]);
      this.runtime.dispatch(
        'combine4',
        { length: out.dim, runs: out.runs, slotsPerRun: k, slot, count: group.length, beta: slot === 0 ? beta : 1 },
        [...bound, c, out.buffer],
        linearGroups(out.runs * out.dim),
        false, // slot and slotsPerRun change every step: one-off uniforms, not a cache that grows with k²
      );
    }
  }

  /** [x_r · basis[i]_r] at r·k + i: one submit and one read-back for every run. */
  async dots(x: Runs, basis: Runs[]): Promise<Float64Array> {
    const k = basis.length;
    if (k === 0) return new Float64Array(0);
    basis.forEach((b) => sameLayout(x, b));
    const rt = this.runtime;
    const slots = x.runs * k;
    const partialsPerDot = Math.max(1, Math.min(MAX_PARTIALS_PER_DOT, Math.ceil(x.dim / LINEAR_WORKGROUP), Math.ceil(DOT_WORKGROUPS_TARGET / x.runs)));
    const partials = rt.scratch(slots * partialsPerDot, 'dot partials');
    const results = rt.scratch(slots, 'dots');
    // Four dot products per pass over x.
    for (let slot = 0; slot < k; slot += 4) {
      const group = basis.slice(slot, slot + 4).map((b) => b.buffer);
      const bound = [0, 1, 2, 3].map((i) => group[i] ?? group[0]);
      rt.dispatch(
        'dot4Partials',
        { length: x.dim, partialsPerDot, slot, count: group.length, slotsPerRun: k },
        [x.buffer, ...bound, partials],
        [partialsPerDot, x.runs, 1],
        false,
      );
    }
    rt.dispatch('sumPartials', { partialsPerDot, slots, slotsPerRun: slots, outStride: 0, outOffset: 0 }, [partials, results], rt.grid(slots), false);
    return Float64Array.from(await rt.read(results, slots));
  }
}

export class GpuVectorOps implements VectorOps {
  private readonly kernels: RunKernels;

  constructor(private readonly runtime: GpuRuntime) {
    this.kernels = new RunKernels(runtime);
  }

  alloc(length: number): GpuVector {
    return new GpuVector(length, this.runtime.createStorage(length, undefined, 'vector'));
  }

  upload(data: Float32Array | Float64Array): GpuVector {
    const values = data instanceof Float32Array ? data : Float32Array.from(data);
    return new GpuVector(values.length, this.runtime.createStorage(values.length, values, 'vector'));
  }

  async download(v: DeviceVector): Promise<Float64Array> {
    const x = asGpuVector(v);
    return Float64Array.from(await this.runtime.read(x.buffer, x.length));
  }

  free(v: DeviceVector): void {
    this.runtime.release(asGpuVector(v).buffer);
  }

  copy(x: DeviceVector, out: DeviceVector): void {
    sameLayout(vectorRuns(x), vectorRuns(out));
    this.runtime.copy(asGpuVector(x).buffer, asGpuVector(out).buffer, 4 * x.length);
  }

  scale(alpha: number, x: DeviceVector): void {
    this.kernels.scale([alpha], vectorRuns(x));
  }

  axpy(alpha: number, x: DeviceVector, y: DeviceVector): void {
    this.kernels.combine([alpha], [vectorRuns(x)], vectorRuns(y), 1);
  }

  combine(coefficients: ArrayLike<number>, basis: DeviceVector[], out: DeviceVector): void {
    invariant(coefficients.length === basis.length, 'combine: one coefficient per basis vector');
    if (basis.length === 0) this.scale(0, out);
    else this.kernels.combine(coefficients, basis.map(vectorRuns), vectorRuns(out), 0);
  }

  dots(x: DeviceVector, basis: DeviceVector[]): Promise<Float64Array> {
    return this.kernels.dots(vectorRuns(x), basis.map(vectorRuns));
  }

  async dot(x: DeviceVector, y: DeviceVector): Promise<number> {
    return (await this.dots(x, [y]))[0];
  }
}

export class GpuBlockOps implements BlockVectorOps {
  readonly roundTripReadBack = true;
  private readonly kernels: RunKernels;

  constructor(private readonly runtime: GpuRuntime) {
    this.kernels = new RunKernels(runtime);
  }

  allocBlock(count: number, dim: number): GpuBlock {
    invariant(Number.isInteger(count) && count > 0 && Number.isInteger(dim) && dim > 0, `a block of ${count}×${dim}`);
    return new GpuBlock(count, dim, this.runtime.createStorage(count * dim, undefined, 'block'));
  }

  uploadBlock(data: Float32Array | Float64Array, count: number): GpuBlock {
    invariant(count > 0 && data.length > 0 && data.length % count === 0, `${data.length} values do not split into ${count} vectors`);
    const values = data instanceof Float32Array ? data : Float32Array.from(data);
    return new GpuBlock(count, data.length / count, this.runtime.createStorage(values.length, values, 'block'));
  }

  async downloadBlock(x: DeviceBlock): Promise<Float64Array> {
    const b = asGpuBlock(x);
    return Float64Array.from(await this.runtime.read(b.buffer, b.count * b.dim));
  }

  freeBlock(x: DeviceBlock): void {
    this.runtime.release(asGpuBlock(x).buffer);
  }

  copyBlock(x: DeviceBlock, out: DeviceBlock): void {
    sameLayout(blockRuns(x), blockRuns(out));
    this.runtime.copy(asGpuBlock(x).buffer, asGpuBlock(out).buffer, 4 * x.count * x.dim);
  }

  setRun(block: DeviceBlock, run: number, v: DeviceVector): void {
    const b = asGpuBlock(block);
    invariant(v.length === b.dim, `a vector of ${v.length} for runs of ${b.dim}`);
    this.runtime.copy(asGpuVector(v).buffer, b.buffer, 4 * b.dim, 0, 4 * b.dim * checkRun(b, run));
  }

  getRun(block: DeviceBlock, run: number, out: DeviceVector): void {
    const b = asGpuBlock(block);
    invariant(out.length === b.dim, `a vector of ${out.length} for runs of ${b.dim}`);
    this.runtime.copy(b.buffer, asGpuVector(out).buffer, 4 * b.dim, 4 * b.dim * checkRun(b, run), 0);
  }

  gatherRuns(x: DeviceBlock, runs: readonly number[]): GpuBlock {
    const b = asGpuBlock(x);
    const out = this.allocBlock(runs.length, b.dim);
    runs.forEach((run, i) => this.runtime.copy(b.buffer, out.buffer, 4 * b.dim, 4 * b.dim * checkRun(b, run), 4 * b.dim * i));
    return out;
  }

  keepRuns(x: DeviceBlock, runs: readonly number[]): GpuBlock {
    const kept = this.gatherRuns(x, runs);
    this.freeBlock(x);
    return kept;
  }

  scaleRuns(alphas: ArrayLike<number>, x: DeviceBlock): void {
    this.kernels.scale(alphas, blockRuns(x));
  }

  axpyRuns(alphas: ArrayLike<number>, x: DeviceBlock, y: DeviceBlock): void {
    this.kernels.combine(alphas, [blockRuns(x)], blockRuns(y), 1);
  }

  combineRuns(coefficients: ArrayLike<number>, basis: DeviceBlock[], out: DeviceBlock): void {
    if (basis.length === 0) {
      invariant(coefficients.length === 0, 'combineRuns: coefficients for no basis');
      this.kernels.scale(new Float32Array(out.count), blockRuns(out));
    } else this.kernels.combine(coefficients, basis.map(blockRuns), blockRuns(out), 0);
  }

  dotsRuns(x: DeviceBlock, basis: DeviceBlock[]): Promise<Float64Array> {
    return this.kernels.dots(blockRuns(x), basis.map(blockRuns));
  }
}

function checkRun(block: GpuBlock, run: number): number {
  invariant(Number.isInteger(run) && run >= 0 && run < block.count, `run ${run} of a block of ${block.count}`);
  return run;
}
