// out ← beta·out + Σ_{k < count} c_k·b_k for up to four vectors in one pass (VectorOps.combine
// takes a basis four vectors at a time, axpy is one vector with beta = 1; beta = 0 overwrites out
// without reading it, so stale contents never leak in). Unused b bindings (k ≥ count) hold any
// buffer and are not read; out is never one of the b_k.
#include "common/elementwise.wgsl"

struct Combine4Params {
  length: u32,
  count: u32,
  beta: f32,
  c0: f32,
  c1: f32,
  c2: f32,
  c3: f32,
}

@group(0) @binding(0) var<uniform> params: Combine4Params;
@group(0) @binding(1) var<storage, read> b0: array<f32>;
@group(0) @binding(2) var<storage, read> b1: array<f32>;
@group(0) @binding(3) var<storage, read> b2: array<f32>;
@group(0) @binding(4) var<storage, read> b3: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = invocationIndex(id, groups);
  if (i >= params.length) {
    return;
  }
  let count = params.count;
  var value = params.c0 * b0[i];
  if (count > 1u) { value = fma(params.c1, b1[i], value); }
  if (count > 2u) { value = fma(params.c2, b2[i], value); }
  if (count > 3u) { value = fma(params.c3, b3[i], value); }
  if (params.beta != 0.0) {
    value = fma(params.beta, out[i], value);
  }
  out[i] = value;
}
