// Max pool mask propagation (method.md, max pooling): an output is 1 iff some tap of its window
// inside the input has mask 1, i.e. the max pool of the 0/1 mask with padding contributing 0.
#include "common/pool_geometry.wgsl"

@group(0) @binding(1) var<storage, read> mask: array<f32>;
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
  var anyActive = 0.0;
  for (var ky = 0u; ky < pool.kernelH; ky++) {
    let iy = origin.x + i32(ky * pool.dilationH);
    if (iy < 0 || iy >= i32(pool.inHeight)) {
      continue;
    }
    for (var kx = 0u; kx < pool.kernelW; kx++) {
      let ix = origin.y + i32(kx * pool.dilationW);
      if (ix >= 0 && ix < i32(pool.inWidth) && mask[(c * pool.inHeight + u32(iy)) * pool.inWidth + u32(ix)] > 0.0) {
        anyActive = 1.0;
      }
    }
  }
  output[index] = anyActive;
}
