/**
 * VectorOps on the CPU: device vectors are plain Float64Arrays, so Lanczos keeps its basis in
 * double precision while the layer operators run in float32 through onnxruntime.
 */
import type { DeviceVector, VectorOps } from '../backend.js';

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
    o.fill(0);
    basis.forEach((v, k) => {
      const c = coefficients[k];
      const a = v as Float64Array;
      if (c !== 0) for (let i = 0; i < o.length; i++) o[i] += c * a[i];
    });
  },
  async dots(x, basis) {
    return Float64Array.from(basis, (b) => dot64(x as Float64Array, b as Float64Array));
  },
  async dot(x, y) {
    return dot64(x as Float64Array, y as Float64Array);
  },
};

export function dot64(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export type CpuVector = Float64Array & DeviceVector;
