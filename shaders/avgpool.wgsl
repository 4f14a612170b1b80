// Average pool y = A x (an affine map without bias; pool.divisorPower = 2 applies A ⊙ A instead,
// which gives the row norms r² = (A ⊙ A)·mask). One invocation per output element.
#include "common/pool_geometry.wgsl"

@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) count: vec3u) {
  let index = invocationIndex(id, count);
  if (index >= pool.channels * pool.outHeight * pool.outWidth) {
    return;
  }
  let position = outputPosition(index);
  let c = position.x;
  let oy = position.y;
  let ox = position.z;
  let origin = windowOrigin(oy, ox);
  var sum = 0.0;
  for (var ky = 0u; ky < pool.kernelH; ky++) {
    let iy = origin.x + i32(ky);
    for (var kx = 0u; kx < pool.kernelW; kx++) {
      let ix = origin.y + i32(kx);
      if (iy >= 0 && iy < i32(pool.inHeight) && ix >= 0 && ix < i32(pool.inWidth)) {
        sum += input[(c * pool.inHeight + u32(iy)) * pool.inWidth + u32(ix)];
      }
    }
  }
  let divisor = averageDivisor(oy, ox);
  var weight = 0.0;
  if (divisor > 0.0) {
    weight = 1.0 / divisor;
  }
  if (pool.divisorPower == 2u) {
    weight *= weight;
  }
  output[index] = sum * weight;
}
