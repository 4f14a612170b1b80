/**
 * VectorOps on the GPU: device vectors are f32 storage buffers. copy/scale/axpy/combine are
 * recorded and stay on the device; dots/dot submit and read back only the dot products, reduced
 * in two levels (per-workgroup pairwise sums, then one workgroup per dot product). Combinations and
 * dot products take four vectors per dispatch (combine4, dot4_partials): Lanczos' reorthogonalisation
 * would otherwise be one dispatch per basis vector.
 */
import type { DeviceVector, VectorOps } from '../backend.js';
import { invariant } from '../../errors.js';
import { linearGroups } from './layers.js';
import { LINEAR_WORKGROUP, MAX_PARTIALS_PER_DOT } from './programs.js';
import type { GpuRuntime } from './runtime.js';

export class GpuVector implements DeviceVector {
  constructor(
    readonly length: number,
    readonly buffer: GPUBuffer,
  ) {}
}

export function asGpuVector(v: DeviceVector): GpuVector {
  invariant(v instanceof GpuVector, 'a device vector of another backend was passed to the WebGPU backend');
  return v;
}

function sameLength(a: DeviceVector, b: DeviceVector): number {
  invariant(a.length === b.length, `vector lengths differ: ${a.length} and ${b.length}`);
  return a.length;
}

export class GpuVectorOps implements VectorOps {
  constructor(private readonly runtime: GpuRuntime) {}

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
    this.runtime.copy(asGpuVector(x).buffer, asGpuVector(out).buffer, 4 * sameLength(x, out));
  }

  scale(alpha: number, x: DeviceVector): void {
    const v = asGpuVector(x);
    this.runtime.dispatch('scale', { length: v.length, alpha }, [v.buffer], linearGroups(v.length), false);
  }

  axpy(alpha: number, x: DeviceVector, y: DeviceVector): void {
    this.combineInto([alpha], [x], y, 1);
  }

  combine(coefficients: ArrayLike<number>, basis: DeviceVector[], out: DeviceVector): void {
    invariant(coefficients.length === basis.length, 'combine: one coefficient per basis vector');
    if (basis.length === 0) {
      this.scale(0, out);
      return;
    }
    this.combineInto(coefficients, basis, out, 0);
  }

  /** out ← beta·out + Σ c_i b_i, four basis vectors per dispatch (one pass over out for each four). */
  private combineInto(coefficients: ArrayLike<number>, basis: DeviceVector[], out: DeviceVector, beta: number): void {
    const target = asGpuVector(out);
    for (let start = 0; start < basis.length; start += 4) {
      const group = basis.slice(start, start + 4).map((b) => {
        sameLength(b, out);
        invariant(asGpuVector(b).buffer !== target.buffer, 'combine/axpy: out must not be one of the inputs');
        return asGpuVector(b).buffer;
      });
      const c = (k: number) => (k < group.length ? coefficients[start + k] : 0);
      const buffers = [0, 1, 2, 3].map((k) => group[k] ?? group[0]);
      this.runtime.dispatch(
        'combine4',
        { length: out.length, count: group.length, beta: start === 0 ? beta : 1, c0: c(0), c1: c(1), c2: c(2), c3: c(3) },
        [...buffers, target.buffer],
        linearGroups(out.length),
        false,
      );
    }
  }

  async dots(x: DeviceVector, basis: DeviceVector[]): Promise<Float64Array> {
    if (basis.length === 0) return new Float64Array(0);
    const rt = this.runtime;
    const length = x.length;
    const partialsPerDot = Math.min(MAX_PARTIALS_PER_DOT, Math.ceil(length / LINEAR_WORKGROUP));
    const partials = rt.scratch(basis.length * partialsPerDot, 'dot partials');
    const results = rt.scratch(basis.length, 'dots');
    const xBuffer = asGpuVector(x).buffer;
    basis.forEach((b) => sameLength(x, b));
    // Four dot products per pass over x.
    for (let slot = 0; slot < basis.length; slot += 4) {
      const group = basis.slice(slot, slot + 4).map((b) => asGpuVector(b).buffer);
      const buffers = [0, 1, 2, 3].map((k) => group[k] ?? group[0]);
      rt.dispatch('dot4Partials', { length, partialsPerDot, slot, count: group.length }, [xBuffer, ...buffers, partials], [partialsPerDot, 1, 1]);
    }
    rt.dispatch('sumPartials', { partialsPerDot }, [partials, results], [basis.length, 1, 1]);
    return Float64Array.from(await rt.read(results, basis.length));
  }

  async dot(x: DeviceVector, y: DeviceVector): Promise<number> {
    return (await this.dots(x, [y]))[0];
  }
}
