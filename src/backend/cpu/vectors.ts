/**
 * VectorOps on the CPU: device vectors are plain Float64Arrays, so Lanczos keeps its basis in
 * double precision while the layer operators run in float32 through onnxruntime.
 * `dots` and `combine` take the basis four vectors per pass over memory: at ImageNet scale a
 * vector is 25 MB and Lanczos' reorthogonalisation is bound by memory traffic, not arithmetic.
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
    const n = o.length;
    const k = basis.length;
    let first = true;
    for (let start = 0; start < k; start += 4) {
      const count = Math.min(4, k - start);
      const c0 = coefficients[start];
      const a0 = basis[start] as Float64Array;
      if (count === 4) {
        const [c1, c2, c3] = [coefficients[start + 1], coefficients[start + 2], coefficients[start + 3]];
        const [a1, a2, a3] = [basis[start + 1], basis[start + 2], basis[start + 3]] as Float64Array[];
        if (first) for (let i = 0; i < n; i++) o[i] = c0 * a0[i] + c1 * a1[i] + c2 * a2[i] + c3 * a3[i];
        else for (let i = 0; i < n; i++) o[i] += c0 * a0[i] + c1 * a1[i] + c2 * a2[i] + c3 * a3[i];
      } else if (count === 3) {
        const [c1, c2] = [coefficients[start + 1], coefficients[start + 2]];
        const [a1, a2] = [basis[start + 1], basis[start + 2]] as Float64Array[];
        if (first) for (let i = 0; i < n; i++) o[i] = c0 * a0[i] + c1 * a1[i] + c2 * a2[i];
        else for (let i = 0; i < n; i++) o[i] += c0 * a0[i] + c1 * a1[i] + c2 * a2[i];
      } else if (count === 2) {
        const c1 = coefficients[start + 1];
        const a1 = basis[start + 1] as Float64Array;
        if (first) for (let i = 0; i < n; i++) o[i] = c0 * a0[i] + c1 * a1[i];
        else for (let i = 0; i < n; i++) o[i] += c0 * a0[i] + c1 * a1[i];
      } else if (first) for (let i = 0; i < n; i++) o[i] = c0 * a0[i];
      else for (let i = 0; i < n; i++) o[i] += c0 * a0[i];
      first = false;
    }
    if (first) o.fill(0);
  },
  async dots(x, basis) {
    const v = x as Float64Array;
    const n = v.length;
    const out = new Float64Array(basis.length);
    for (let start = 0; start < basis.length; start += 4) {
      const count = Math.min(4, basis.length - start);
      if (count === 4) {
        const [a0, a1, a2, a3] = basis.slice(start, start + 4) as Float64Array[];
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        for (let i = 0; i < n; i++) {
          const xi = v[i];
          s0 += xi * a0[i];
          s1 += xi * a1[i];
          s2 += xi * a2[i];
          s3 += xi * a3[i];
        }
        out[start] = s0;
        out[start + 1] = s1;
        out[start + 2] = s2;
        out[start + 3] = s3;
      } else {
        for (let j = start; j < start + count; j++) out[j] = dot64(v, basis[j] as Float64Array);
      }
    }
    return out;
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
