/**
 * BasisOps on the CPU: a basis is one Float64Array of slots·count·dim (slot-major, as on the GPU),
 * device scalars a Float64Array. Nothing here waits for a device, so CPU solvers normally read
 * back every step through BlockVectorOps; these loops serve the device-resident Lanczos engine
 * when it is asked for on the CPU (tests and benchmarks compare the two engines on both backends).
 */
import { invariant } from '../../errors.js';
import type { BasisOps, DeviceBasis, DeviceScalars } from '../backend.js';
import { asCpuBlock, asFloat64, combineRange, compactRuns, dotRange, dotsRange } from './vectors.js';

export class CpuBasis implements DeviceBasis {
  constructor(
    readonly count: number,
    readonly dim: number,
    readonly slots: number,
    readonly data: Float64Array,
  ) {
    invariant(data.length === slots * count * dim, `a basis of ${slots}×${count}×${dim} holds ${data.length} values`);
  }

  /** Slot s of every run: a view of count·dim values. */
  slot(s: number): Float64Array {
    invariant(Number.isInteger(s) && s >= 0 && s < this.slots, `slot ${s} of a basis of ${this.slots}`);
    const size = this.count * this.dim;
    return this.data.subarray(s * size, (s + 1) * size);
  }
}

export class CpuScalars implements DeviceScalars {
  constructor(readonly data: Float64Array) {}

  get length(): number {
    return this.data.length;
  }
}

function asCpuBasis(basis: DeviceBasis): CpuBasis {
  invariant(basis instanceof CpuBasis, 'a device basis of another backend was passed to the CPU backend');
  return basis;
}

function asCpuScalars(scalars: DeviceScalars): CpuScalars {
  invariant(scalars instanceof CpuScalars, 'device scalars of another backend were passed to the CPU backend');
  return scalars;
}

/** The block's array, after checking that it has the basis's runs and length. */
function blockOf(basis: CpuBasis, x: Parameters<typeof asCpuBlock>[0]): Float64Array {
  const block = asCpuBlock(x);
  invariant(block.count === basis.count && block.dim === basis.dim, `a block of ${block.count}×${block.dim} for a basis of ${basis.count}×${basis.dim}`);
  return block.data;
}

export const cpuBasisOps: BasisOps = {
  allocBasis: (count, dim, slots) => new CpuBasis(count, dim, slots, new Float64Array(slots * count * dim)),
  freeBasis: () => {},
  storeSlot(basis, slot, x) {
    const b = asCpuBasis(basis);
    b.slot(slot).set(blockOf(b, x));
  },
  keepBasisRuns(basis, runs) {
    const b = asCpuBasis(basis);
    return new CpuBasis(runs.length, b.dim, b.slots, compactRuns(b.data, b.count, b.dim, b.slots, runs));
  },
  combineSlots(basis, slots, coefficients, out) {
    const b = asCpuBasis(basis);
    const o = blockOf(b, out);
    const k = slots.length;
    invariant(k > 0 && coefficients.length === b.count * k, `combineSlots: ${coefficients.length} coefficients for ${b.count} runs × ${k} slots`);
    const views = slots.map((s) => b.slot(s));
    const c = asFloat64(coefficients);
    for (let run = 0; run < b.count; run++) combineRange(c, run * k, views, o, run * b.dim, (run + 1) * b.dim);
  },
  orthonormalise(basis, w, against, next, into, record, offset, stride) {
    const b = asCpuBasis(basis);
    const x = blockOf(b, w);
    const y = blockOf(b, next);
    invariant(x !== y, 'orthonormalise: next must not be w');
    const r = asCpuScalars(record).data;
    const k = against.length;
    invariant(stride >= 2 * k + 1 && offset + (b.count - 1) * stride + 2 * k < r.length, 'orthonormalise: the record is too short for its layout');
    const views = against.map((s) => b.slot(s));
    const target = into === null ? null : b.slot(into);
    for (let run = 0; run < b.count; run++) {
      const [start, end] = [run * b.dim, (run + 1) * b.dim];
      const base = offset + run * stride;
      for (let pass = 0; pass < 2; pass++) {
        const at = base + pass * k;
        dotsRange(x, views, start, end, r, at);
        for (let q = 0; q < k; q++) {
          const c = r[at + q];
          const v = views[q];
          for (let i = start; i < end; i++) x[i] -= c * v[i];
        }
      }
      const nu = dotRange(x, x, start, end);
      r[base + 2 * k] = nu;
      const inverse = nu > 0 ? 1 / Math.sqrt(nu) : 0;
      for (let i = start; i < end; i++) y[i] = x[i] * inverse;
      if (target) target.set(y.subarray(start, end), start);
    }
  },
  allocScalars: (length) => new CpuScalars(new Float64Array(length)),
  async readScalars(scalars, length) {
    const data = asCpuScalars(scalars).data;
    return Float64Array.from(data.subarray(0, length ?? data.length));
  },
  freeScalars: () => {},
};
