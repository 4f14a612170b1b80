/**
 * BasisOps on the GPU: a basis is one storage buffer of slots × runs × dim f32 (slot-major), so a
 * Gram–Schmidt pass against any number of slots is one basis_dots dispatch per contiguous range of
 * slots, one sum_partials and one basis_combine per range, and its coefficients go from the first
 * to the second through device memory: orthonormalise records CGS2 and the normalisation with no
 * read-back, and a solver reads its DeviceScalars once for many steps. A basis that exceeds one
 * storage binding is refused (allocBasis returns null) and the solver keeps separate blocks.
 */
import { invariant } from '../../errors.js';
import type { BasisOps, DeviceBasis, DeviceBlock, DeviceScalars } from '../backend.js';
import { linearGroups } from './layers.js';
import { DOT_WORKGROUPS_TARGET, LINEAR_WORKGROUP, MAX_PARTIALS_PER_DOT } from './programs.js';
import type { GpuRuntime } from './runtime.js';
import { asGpuBlock } from './vectors.js';

export class GpuBasis implements DeviceBasis {
  constructor(
    readonly count: number,
    readonly dim: number,
    readonly slots: number,
    readonly buffer: GPUBuffer,
  ) {}
}

export class GpuScalars implements DeviceScalars {
  constructor(
    readonly length: number,
    readonly buffer: GPUBuffer,
  ) {}
}

function asGpuBasis(basis: DeviceBasis): GpuBasis {
  invariant(basis instanceof GpuBasis, 'a device basis of another backend was passed to the WebGPU backend');
  return basis;
}

function asGpuScalars(scalars: DeviceScalars): GpuScalars {
  invariant(scalars instanceof GpuScalars, 'device scalars of another backend were passed to the WebGPU backend');
  return scalars;
}

/** The slots as maximal runs of consecutive indices, in their order: [first slot, count, position of the first]. */
export function slotRanges(slots: readonly number[]): [number, number, number][] {
  const ranges: [number, number, number][] = [];
  slots.forEach((slot, position) => {
    const last = ranges[ranges.length - 1];
    if (last && last[0] + last[1] === slot) last[1]++;
    else ranges.push([slot, 1, position]);
  });
  return ranges;
}

export class GpuBasisOps implements BasisOps {
  constructor(private readonly runtime: GpuRuntime) {}

  allocBasis(count: number, dim: number, slots: number): GpuBasis | null {
    invariant([count, dim, slots].every((v) => Number.isInteger(v) && v > 0), `a basis of ${slots}×${count}×${dim}`);
    if (4 * slots * count * dim > this.runtime.maxBindingBytes) return null;
    return new GpuBasis(count, dim, slots, this.runtime.createStorage(slots * count * dim, undefined, 'basis'));
  }

  freeBasis(basis: DeviceBasis): void {
    this.runtime.release(asGpuBasis(basis).buffer);
  }

  storeSlot(basis: DeviceBasis, slot: number, x: DeviceBlock): void {
    const v = asGpuBasis(basis);
    const block = this.blockOf(v, x);
    checkSlot(v, slot);
    const bytes = 4 * v.count * v.dim;
    this.runtime.copy(block.buffer, v.buffer, bytes, 0, slot * bytes);
  }

  keepBasisRuns(basis: DeviceBasis, runs: readonly number[]): GpuBasis {
    const kept = this.gatherBasisRuns(basis, runs);
    this.freeBasis(basis);
    return kept;
  }

  /** A new basis holding the given runs of every slot, in that order. */
  gatherBasisRuns(basis: DeviceBasis, runs: readonly number[]): GpuBasis {
    const v = asGpuBasis(basis);
    runs.forEach((run) => invariant(Number.isInteger(run) && run >= 0 && run < v.count, `run ${run} of a basis of ${v.count}`));
    const out = this.allocBasis(runs.length, v.dim, v.slots);
    invariant(out, 'a gathered basis is never larger than its source');
    const runBytes = 4 * v.dim;
    for (let s = 0; s < v.slots; s++) {
      // Consecutive source runs go in one copy.
      for (let i = 0; i < runs.length; ) {
        let length = 1;
        while (i + length < runs.length && runs[i + length] === runs[i] + length) length++;
        this.runtime.copy(v.buffer, out.buffer, length * runBytes, (s * v.count + runs[i]) * runBytes, (s * runs.length + i) * runBytes);
        i += length;
      }
    }
    return out;
  }

  combineSlots(basis: DeviceBasis, slots: readonly number[], coefficients: ArrayLike<number>, out: DeviceBlock): void {
    const v = asGpuBasis(basis);
    const o = this.blockOf(v, out);
    const k = slots.length;
    invariant(k > 0 && coefficients.length === v.count * k, `combineSlots: ${coefficients.length} coefficients for ${v.count} runs × ${k} slots`);
    slots.forEach((s) => checkSlot(v, s));
    const c = this.runtime.transientStorage(Float32Array.from(coefficients));
    for (const [first, count, position] of slotRanges(slots)) {
      this.combine(v, first, count, c, position, k, position === 0 ? 0 : 1, 1, o.buffer);
    }
  }

  orthonormalise(
    basis: DeviceBasis,
    w: DeviceBlock,
    against: readonly number[],
    next: DeviceBlock,
    into: number | null,
    record: DeviceScalars,
    offset: number,
    stride: number,
  ): void {
    const v = asGpuBasis(basis);
    const [x, y] = [this.blockOf(v, w), this.blockOf(v, next)];
    const r = asGpuScalars(record);
    const k = against.length;
    invariant(x.buffer !== y.buffer, 'orthonormalise: next must not be w');
    invariant(stride >= 2 * k + 1 && offset + (v.count - 1) * stride + 2 * k < r.length, 'orthonormalise: the record is too short for its layout');
    against.forEach((s) => checkSlot(v, s));
    if (into !== null) checkSlot(v, into);
    const rt = this.runtime;
    const [runs, length] = [v.count, v.dim];
    const ranges = slotRanges(against);
    for (let pass = 0; k > 0 && pass < 2; pass++) {
      const at = offset + pass * k;
      const partialsPerDot = this.partialsPerDot(length, runs * Math.ceil(k / 4));
      const partials = rt.scratch(runs * k * partialsPerDot, 'basis partials');
      for (const [first, count, position] of ranges) {
        rt.dispatch(
          'basisDots',
          { length, runs, partialsPerDot, first, count, positionOffset: position, positions: k },
          [x.buffer, v.buffer, partials],
          [partialsPerDot, runs, Math.ceil(count / 4)],
          false,
        );
      }
      rt.dispatch('sumPartials', { partialsPerDot, slots: runs * k, slotsPerRun: k, outStride: stride, outOffset: at }, [partials, r.buffer], rt.grid(runs * k), false);
      for (const [first, count, position] of ranges) this.combine(v, first, count, r.buffer, at + position, stride, 1, -1, x.buffer);
    }
    // ν = ||w||² after the second pass, then the normalisation.
    const partialsPerDot = this.partialsPerDot(length, runs);
    const partials = rt.scratch(runs * partialsPerDot, 'basis partials');
    rt.dispatch('dot4Partials', { length, partialsPerDot, slot: 0, count: 1, slotsPerRun: 1 }, [x.buffer, x.buffer, x.buffer, x.buffer, x.buffer, partials], [partialsPerDot, runs, 1], false);
    rt.dispatch('sumPartials', { partialsPerDot, slots: runs, slotsPerRun: 1, outStride: stride, outOffset: offset + 2 * k }, [partials, r.buffer], rt.grid(runs), false);
    rt.dispatch(
      'normaliseRuns',
      { length, runs, normOffset: offset + 2 * k, normStride: stride, slot: into ?? 0, writeSlot: into === null ? 0 : 1 },
      [x.buffer, r.buffer, y.buffer, v.buffer],
      linearGroups(runs * length),
      false,
    );
  }

  allocScalars(length: number): GpuScalars {
    return new GpuScalars(length, this.runtime.createStorage(length, undefined, 'scalars'));
  }

  async readScalars(scalars: DeviceScalars, length?: number): Promise<Float64Array> {
    const s = asGpuScalars(scalars);
    invariant(length === undefined || (length > 0 && length <= s.length), `read ${length} of ${s.length} scalars`);
    return Float64Array.from(await this.runtime.read(s.buffer, length ?? s.length));
  }

  freeScalars(scalars: DeviceScalars): void {
    this.runtime.release(asGpuScalars(scalars).buffer);
  }

  /** out_r ← beta·out_r + sign·Σ_p coefficients[coefficientOffset + r·coefficientStride + p]·V[first + p]_r */
  private combine(v: GpuBasis, first: number, count: number, coefficients: GPUBuffer, coefficientOffset: number, coefficientStride: number, beta: number, sign: number, out: GPUBuffer): void {
    this.runtime.dispatch(
      'basisCombine',
      { length: v.dim, runs: v.count, first, count, coefficientOffset, coefficientStride, beta, sign },
      [v.buffer, coefficients, out],
      linearGroups(v.count * v.dim),
      false,
    );
  }

  /** Partial sums per dot product: enough workgroups over all of them, at most one workgroup's worth to add. */
  private partialsPerDot(length: number, workgroupsPerPartial: number): number {
    return Math.max(1, Math.min(MAX_PARTIALS_PER_DOT, Math.ceil(length / LINEAR_WORKGROUP), Math.ceil(DOT_WORKGROUPS_TARGET / workgroupsPerPartial)));
  }

  private blockOf(v: GpuBasis, x: DeviceBlock) {
    const block = asGpuBlock(x);
    invariant(block.count === v.count && block.dim === v.dim, `a block of ${block.count}×${block.dim} for a basis of ${v.count}×${v.dim}`);
    return block;
  }
}

function checkSlot(v: GpuBasis, slot: number): void {
  invariant(Number.isInteger(slot) && slot >= 0 && slot < v.slots, `slot ${slot} of a basis of ${v.slots}`);
}
