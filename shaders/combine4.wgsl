// out_r ← beta·out_r + Σ_{k < count} c[r·slotsPerRun + slot + k]·b_k,r for every run r of a block
// (runs of `length` values one after another; a single vector is one run), up to four vectors per
// pass: VectorOps.combine and BlockVectorOps.combineRuns take a basis four vectors at a time,
// axpy is one vector with beta = 1. The coefficients are read from a storage buffer in the
// run-major layout that dot4_partials/sum_partials write, so they may come from the host or stay
// on the device. beta = 0 overwrites out without reading it, so stale contents never leak in.
// Unused b bindings (k ≥ count) hold any buffer and are not read; out is never one of the b_k.
#include "common/elementwise.wgsl"

struct Combine4Params {
  length: u32,
  runs: u32,
  slotsPerRun: u32,
  slot: u32,
  count: u32,
  beta: f32,
}

@group(0) @binding(0) var<uniform> params: Combine4Params;
@group(0) @binding(1) var<storage, read> b0: array<f32>;
@group(0) @binding(2) var<storage, read> b1: array<f32>;
@group(0) @binding(3) var<storage, read> b2: array<f32>;
@group(0) @binding(4) var<storage, read> b3: array<f32>;
@group(0) @binding(5) var<storage, read> coefficients: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = invocationIndex(id, groups);
  if (i >= params.length * params.runs) {
    return;
  }
  let c = (i / params.length) * params.slotsPerRun + params.slot;
  let count = params.count;
  var value = coefficients[c] * b0[i];
  if (count > 1u) { value = fma(coefficients[c + 1u], b1[i], value); }
  if (count > 2u) { value = fma(coefficients[c + 2u], b2[i], value); }
  if (count > 3u) { value = fma(coefficients[c + 3u], b3[i], value); }
  if (params.beta != 0.0) {
    value = fma(params.beta, out[i], value);
  }
  out[i] = value;
}
