// Elementwise product in place, x ← d ⊙ x: applies a diagonal matrix given by its diagonal (the
// domain mask D or the squared slopes Λ² of the Gram operator).
#include "common/elementwise.wgsl"

struct MultiplyParams {
  length: u32,
}

@group(0) @binding(0) var<uniform> params: MultiplyParams;
@group(0) @binding(1) var<storage, read> diagonal: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) count: vec3u) {
  let i = invocationIndex(id, count);
  if (i < params.length) {
    x[i] = diagonal[i] * x[i];
  }
}
