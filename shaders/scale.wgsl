// x ← alpha·x (VectorOps.scale).
#include "common/elementwise.wgsl"

struct ScaleParams {
  length: u32,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> params: ScaleParams;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) count: vec3u) {
  let i = invocationIndex(id, count);
  if (i < params.length) {
    x[i] = params.alpha * x[i];
  }
}
