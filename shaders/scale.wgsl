// x_r ← alpha_r·x_r for every run r of a block (runs of `length` values one after another; a
// single vector is one run): VectorOps.scale and BlockVectorOps.scaleRuns. The factors are read
// from a storage buffer, one per run.
#include "common/elementwise.wgsl"

struct ScaleParams {
  length: u32,
  runs: u32,
}

@group(0) @binding(0) var<uniform> params: ScaleParams;
@group(0) @binding(1) var<storage, read> alphas: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) count: vec3u) {
  let i = invocationIndex(id, count);
  if (i < params.length * params.runs) {
    x[i] = alphas[i / params.length] * x[i];
  }
}
