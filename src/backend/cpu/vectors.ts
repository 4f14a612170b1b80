/**
 * VectorOps and BlockVectorOps on the CPU: device vectors are plain Float64Arrays, so Lanczos keeps
 * its basis in double precision while the layer operators run in float32 through onnxruntime; a
 * block of B runs is one Float64Array of B·dim (run b at [b·dim, (b+1)·dim)).
 * `dots` and `combine` take the basis four vectors per pass over memory: at ImageNet scale a
 * vector is 25 MB and Lanczos' reorthogonalisation is bound by memory traffic, not arithmetic.
 * The loops work on the index range [start, end) of equally laid out arrays, so one vector and one
 * run of a block go through the same code.
 */
import { invariant } from '../../errors.js';
import type { BlockVectorOps, DeviceBlock, DeviceVector, VectorOps } from '../backend.js';

/** out[start, end) ← Σ_i coefficients[cOffset + i]·basis[i][start, end), four vectors per pass. */
export function combineRange(coefficients: Float64Array, cOffset: number, basis: Float64Array[], o: Float64Array, start: number, end: number): void {
  const k = basis.length;
  let first = true;
  for (let j = 0; j < k; j += 4) {
    const count = Math.min(4, k - j);
    const c0 = coefficients[cOffset + j];
    const a0 = basis[j];
    if (count === 4) {
      // Plain consts, not destructured tuples: a tuple per group of four was garbage on every Lanczos step.
      const c1 = coefficients[cOffset + j + 1];
      const c2 = coefficients[cOffset + j + 2];
      const c3 = coefficients[cOffset + j + 3];
      const a1 = basis[j + 1];
      const a2 = basis[j + 2];
      const a3 = basis[j + 3];
      if (first) for (let i = start; i < end; i++) o[i] = c0 * a0[i] + c1 * a1[i] + c2 * a2[i] + c3 * a3[i];
      else for (let i = start; i < end; i++) o[i] += c0 * a0[i] + c1 * a1[i] + c2 * a2[i] + c3 * a3[i];
    } else if (count === 3) {
      const c1 = coefficients[cOffset + j + 1];
      const c2 = coefficients[cOffset + j + 2];
      const a1 = basis[j + 1];
      const a2 = basis[j + 2];
      if (first) for (let i = start; i < end; i++) o[i] = c0 * a0[i] + c1 * a1[i] + c2 * a2[i];
      else for (let i = start; i < end; i++) o[i] += c0 * a0[i] + c1 * a1[i] + c2 * a2[i];
    } else if (count === 2) {
      const c1 = coefficients[cOffset + j + 1];
      const a1 = basis[j + 1];
      if (first) for (let i = start; i < end; i++) o[i] = c0 * a0[i] + c1 * a1[i];
      else for (let i = start; i < end; i++) o[i] += c0 * a0[i] + c1 * a1[i];
    } else if (first) for (let i = start; i < end; i++) o[i] = c0 * a0[i];
    else for (let i = start; i < end; i++) o[i] += c0 * a0[i];
    first = false;
  }
  if (first) o.fill(0, start, end);
}

/** out[outOffset + i] ← x[start, end) · basis[i][start, end), four dot products per pass. */
export function dotsRange(x: Float64Array, basis: Float64Array[], start: number, end: number, out: Float64Array, outOffset: number): void {
  for (let j = 0; j < basis.length; j += 4) {
    if (basis.length - j >= 4) {
      const a0 = basis[j];
      const a1 = basis[j + 1];
      const a2 = basis[j + 2];
      const a3 = basis[j + 3];
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let i = start; i < end; i++) {
        const xi = x[i];
        s0 += xi * a0[i];
        s1 += xi * a1[i];
        s2 += xi * a2[i];
        s3 += xi * a3[i];
      }
      out[outOffset + j] = s0;
      out[outOffset + j + 1] = s1;
      out[outOffset + j + 2] = s2;
      out[outOffset + j + 3] = s3;
    } else {
      for (let q = j; q < basis.length; q++) out[outOffset + q] = dotRange(x, basis[q], start, end);
    }
  }
}

export function dotRange(a: Float64Array, b: Float64Array, start: number, end: number): number {
  let s = 0;
  for (let i = start; i < end; i++) s += a[i] * b[i];
  return s;
}

/**
 * Moves the given runs (increasing) of each of `slots` consecutive groups of `count` runs of `dim`
 * values to the front, in place (each target lies at or before its source), and returns the view
 * of slots·runs.length·dim values.
 */
export function compactRuns(data: Float64Array, count: number, dim: number, slots: number, runs: readonly number[]): Float64Array {
  runs.forEach((run, i) => invariant(Number.isInteger(run) && run >= 0 && run < count && (i === 0 || run > runs[i - 1]), `runs ${runs} of ${count}, increasing`));
  for (let s = 0; s < slots; s++) {
    runs.forEach((run, i) => {
      const [from, to] = [(s * count + run) * dim, (s * runs.length + i) * dim];
      if (from !== to) data.copyWithin(to, from, from + dim);
    });
  }
  return data.subarray(0, slots * runs.length * dim);
}

export const cpuVectors: VectorOps = {
  alloc: (length) => new Float64Array(length),
  upload: (data) => Float64Array.from(data),
  download: async (v) => Float64Array.from(v as Float64Array),
  free: () => {},
  copy(x, out) {
    (out as Float64Array).set(x as Float64Array);
  },
  scale(alpha, x) {
    const a = x as Float64Array;
    for (let i = 0; i < a.length; i++) a[i] *= alpha;
  },
  axpy(alpha, x, y) {
    const a = x as Float64Array;
    const b = y as Float64Array;
    for (let i = 0; i < a.length; i++) b[i] += alpha * a[i];
  },
  combine(coefficients, basis, out) {
    const o = out as Float64Array;
    combineRange(asFloat64(coefficients), 0, basis as Float64Array[], o, 0, o.length);
  },
  async dots(x, basis) {
    const v = x as Float64Array;
    const out = new Float64Array(basis.length);
    dotsRange(v, basis as Float64Array[], 0, v.length, out, 0);
    return out;
  },
  async dot(x, y) {
    return dot64(x as Float64Array, y as Float64Array);
  },
  // Plain consts, not a destructured pair: both run twice per KW Lanczos step.
  gather(x, indices, out) {
    const a = x as Float64Array;
    const o = out as Float64Array;
    for (let i = 0; i < indices.length; i++) o[i] = a[indices[i]];
  },
  scatter(x, indices, out) {
    const a = x as Float64Array;
    const o = out as Float64Array;
    o.fill(0);
    for (let i = 0; i < indices.length; i++) o[indices[i]] = a[i];
  },
};

/**
 * Coefficients as one array kind: combineRange's loops are hot, and coefficients arriving now as plain
 * arrays (spectral.ts) and now as Float64Arrays (certificates.ts) made V8 deoptimise them repeatedly.
 */
export function asFloat64(coefficients: ArrayLike<number>): Float64Array {
  return coefficients instanceof Float64Array ? coefficients : Float64Array.from(coefficients);
}

export function dot64(a: Float64Array, b: Float64Array): number {
  return dotRange(a, b, 0, a.length);
}

export type CpuVector = Float64Array & DeviceVector;

/** B runs of `dim` values in one Float64Array. */
export class CpuBlock implements DeviceBlock {
  constructor(
    readonly count: number,
    readonly dim: number,
    readonly data: Float64Array,
  ) {
    invariant(data.length === count * dim, `a block of ${count}×${dim} holds ${data.length} values`);
  }
}

export function asCpuBlock(x: DeviceBlock): CpuBlock {
  invariant(x instanceof CpuBlock, 'a device block of another backend was passed to the CPU backend');
  return x;
}

/** The blocks' arrays, after checking that they are laid out like `like`. */
function sameLayout(like: CpuBlock, blocks: DeviceBlock[]): Float64Array[] {
  return blocks.map((b) => {
    const block = asCpuBlock(b);
    invariant(block.count === like.count && block.dim === like.dim, `blocks differ: ${block.count}×${block.dim} and ${like.count}×${like.dim}`);
    return block.data;
  });
}

function runRange(block: CpuBlock, run: number): [number, number] {
  invariant(Number.isInteger(run) && run >= 0 && run < block.count, `run ${run} of a block of ${block.count}`);
  return [run * block.dim, (run + 1) * block.dim];
}

export const cpuBlockVectors: BlockVectorOps = {
  allocBlock: (count, dim) => new CpuBlock(count, dim, new Float64Array(count * dim)),
  uploadBlock(data, count) {
    invariant(count > 0 && data.length % count === 0, `${data.length} values do not split into ${count} vectors`);
    return new CpuBlock(count, data.length / count, Float64Array.from(data));
  },
  downloadBlock: async (x) => Float64Array.from(asCpuBlock(x).data),
  freeBlock: () => {},
  copyBlock(x, out) {
    const [o] = sameLayout(asCpuBlock(x), [out]);
    o.set(asCpuBlock(x).data);
  },
  setRun(block, run, v) {
    const b = asCpuBlock(block);
    invariant(v.length === b.dim, `a vector of ${v.length} for runs of ${b.dim}`);
    b.data.set(v as Float64Array, runRange(b, run)[0]);
  },
  getRun(block, run, out) {
    const b = asCpuBlock(block);
    invariant(out.length === b.dim, `a vector of ${out.length} for runs of ${b.dim}`);
    (out as Float64Array).set(b.data.subarray(...runRange(b, run)));
  },
  gatherRuns(x, runs) {
    const b = asCpuBlock(x);
    const out = new CpuBlock(runs.length, b.dim, new Float64Array(runs.length * b.dim));
    runs.forEach((run, i) => out.data.set(b.data.subarray(...runRange(b, run)), i * b.dim));
    return out;
  },
  keepRuns(x, runs) {
    const b = asCpuBlock(x);
    return new CpuBlock(runs.length, b.dim, compactRuns(b.data, b.count, b.dim, 1, runs));
  },
  scaleRuns(alphas, x) {
    const b = asCpuBlock(x);
    invariant(alphas.length === b.count, 'scaleRuns: one coefficient per run');
    for (let run = 0; run < b.count; run++) {
      const alpha = alphas[run];
      for (let i = run * b.dim; i < (run + 1) * b.dim; i++) b.data[i] *= alpha;
    }
  },
  axpyRuns(alphas, x, y) {
    const b = asCpuBlock(x);
    const [target] = sameLayout(b, [y]);
    invariant(alphas.length === b.count, 'axpyRuns: one coefficient per run');
    for (let run = 0; run < b.count; run++) {
      const alpha = alphas[run];
      for (let i = run * b.dim; i < (run + 1) * b.dim; i++) target[i] += alpha * b.data[i];
    }
  },
  combineRuns(coefficients, basis, out) {
    const o = asCpuBlock(out);
    const arrays = sameLayout(o, basis);
    invariant(coefficients.length === o.count * basis.length, 'combineRuns: count × basis coefficients');
    const c = asFloat64(coefficients);
    for (let run = 0; run < o.count; run++) combineRange(c, run * basis.length, arrays, o.data, run * o.dim, (run + 1) * o.dim);
  },
  async dotsRuns(x, basis) {
    const b = asCpuBlock(x);
    const arrays = sameLayout(b, basis);
    const out = new Float64Array(b.count * basis.length);
    for (let run = 0; run < b.count; run++) dotsRange(b.data, arrays, run * b.dim, (run + 1) * b.dim, out, run * basis.length);
    return out;
  },
  roundTripReadBack: false,
};
