// Transposed average pool v = Aᵀ u: one invocation per input element, gathering u/divisor from
// every output whose window covers it (no scatter, no atomics).
#include "common/pool_geometry.wgsl"

@group(0) @binding(1) var<storage, read> upstream: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) count: vec3u) {
  let index = invocationIndex(id, count);
  let plane = pool.inHeight * pool.inWidth;
  if (index >= pool.channels * plane) {
    return;
  }
  let c = index / plane;
  let y = (index % plane) / pool.inWidth;
  let x = index % pool.inWidth;
  var sum = 0.0;
  for (var ky = 0u; ky < pool.kernelH; ky++) {
    let ny = i32(y + pool.padTop) - i32(ky);
    if (ny < 0 || ny % i32(pool.strideH) != 0 || u32(ny) / pool.strideH >= pool.outHeight) {
      continue;
    }
    let oy = u32(ny) / pool.strideH;
    for (var kx = 0u; kx < pool.kernelW; kx++) {
      let nx = i32(x + pool.padLeft) - i32(kx);
      if (nx < 0 || nx % i32(pool.strideW) != 0 || u32(nx) / pool.strideW >= pool.outWidth) {
        continue;
      }
      let ox = u32(nx) / pool.strideW;
      sum += upstream[(c * pool.outHeight + oy) * pool.outWidth + ox] / averageDivisor(oy, ox);
    }
  }
  output[index] = sum;
}
