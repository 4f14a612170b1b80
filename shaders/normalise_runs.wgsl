// next_r ← w_r / √ν_r for every run r, ν_r = norms[normOffset + r·normStride] (zero where ν_r is
// not positive), and the same values into slot `slot` of the basis when writeSlot is 1
// (BasisOps.orthonormalise: the new Lanczos vector, normalised on the device, becomes the next
// operator input and the next basis slot without a read-back).
#include "common/elementwise.wgsl"

struct NormaliseParams {
  length: u32,
  runs: u32,
  normOffset: u32,
  normStride: u32,
  slot: u32,
  writeSlot: u32,
}

@group(0) @binding(0) var<uniform> params: NormaliseParams;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> norms: array<f32>;
@group(0) @binding(3) var<storage, read_write> next: array<f32>;
@group(0) @binding(4) var<storage, read_write> basis: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = invocationIndex(id, groups);
  let total = params.length * params.runs;
  if (i >= total) {
    return;
  }
  let nu = norms[params.normOffset + (i / params.length) * params.normStride];
  var inverse = 0.0;
  if (nu > 0.0) {
    inverse = 1.0 / sqrt(nu);
  }
  let value = w[i] * inverse;
  next[i] = value;
  if (params.writeSlot == 1u) {
    basis[params.slot * total + i] = value;
  }
}
