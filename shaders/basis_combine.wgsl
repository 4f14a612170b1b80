// out_r ← beta·out_r + sign·Σ_{p < count} c[coefficientOffset + r·coefficientStride + p]·V[first + p]_r
// for every run r (BasisOps; V slot-major: run r of slot s at (s·runs + r)·length). One invocation
// per element of out, looping over the slots: Gram–Schmidt subtracts (sign −1, beta 1) the
// coefficients that basis_dots/sum_partials left in device memory, without a read-back; Ritz
// vectors combine host coefficients (sign 1, beta 0: out is overwritten, never read).
#include "common/elementwise.wgsl"

struct BasisCombineParams {
  length: u32,
  runs: u32,
  first: u32,
  count: u32,
  coefficientOffset: u32,
  coefficientStride: u32,
  beta: f32,
  sign: f32,
}

@group(0) @binding(0) var<uniform> params: BasisCombineParams;
@group(0) @binding(1) var<storage, read> basis: array<f32>;
@group(0) @binding(2) var<storage, read> coefficients: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = invocationIndex(id, groups);
  let total = params.length * params.runs;
  if (i >= total) {
    return;
  }
  let c = params.coefficientOffset + (i / params.length) * params.coefficientStride;
  var sum = 0.0;
  for (var p = 0u; p < params.count; p++) {
    sum = fma(coefficients[c + p], basis[(params.first + p) * total + i], sum);
  }
  var value = params.sign * sum;
  if (params.beta != 0.0) {
    value = fma(params.beta, out[i], value);
  }
  out[i] = value;
}
