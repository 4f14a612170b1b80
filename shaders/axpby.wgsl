// y ← alpha·x + beta·y (VectorOps.axpy with beta = 1; combine's first term with beta = 0, which
// overwrites y without reading it, so stale contents never leak in).
#include "common/elementwise.wgsl"

struct AxpbyParams {
  length: u32,
  alpha: f32,
  beta: f32,
}

@group(0) @binding(0) var<uniform> params: AxpbyParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) count: vec3u) {
  let i = invocationIndex(id, count);
  if (i >= params.length) {
    return;
  }
  var value = params.alpha * x[i];
  if (params.beta != 0.0) {
    value = fma(params.beta, y[i], value);
  }
  y[i] = value;
}
