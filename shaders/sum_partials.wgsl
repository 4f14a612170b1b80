// Second level of the dot products: workgroup s adds the partialsPerDot (≤ 256) partial sums of
// slot s pairwise and writes them to results[outOffset + (s / slotsPerRun)·outStride + s % slotsPerRun]:
// slot s is dot product s % slotsPerRun of run s / slotsPerRun. Plain dot products pass
// slotsPerRun = slots and outStride = outOffset = 0 (results[s]); device-resident Lanczos places
// each run's coefficients in its own record (BasisOps.orthonormalise). One read-back returns every
// dot product of every run. Workgroups are laid out in 2D when there are more slots than one
// dimension holds.
#include "common/workgroup_sum4.wgsl"

struct SumParams {
  partialsPerDot: u32,
  slots: u32,
  slotsPerRun: u32,
  outStride: u32,
  outOffset: u32,
}

@group(0) @binding(0) var<uniform> params: SumParams;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> results: array<f32>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) workgroup: vec3u,
  @builtin(num_workgroups) count: vec3u,
  @builtin(local_invocation_index) lane: u32,
) {
  let slot = workgroup.x + workgroup.y * count.x;
  if (slot >= params.slots) {
    return; // uniform across the workgroup
  }
  var value = 0.0;
  if (lane < params.partialsPerDot) {
    value = partials[slot * params.partialsPerDot + lane];
  }
  let total = workgroupSum4(lane, vec4f(value, 0.0, 0.0, 0.0)).x;
  if (lane == 0u) {
    results[params.outOffset + (slot / params.slotsPerRun) * params.outStride + slot % params.slotsPerRun] = total;
  }
}
