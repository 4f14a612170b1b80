// First level of the dot products of every run's x_r with the basis slots first … first+count−1
// (BasisOps.orthonormalise; the basis V is one buffer, slot-major: run r of slot s at
// (s·runs + r)·length). Workgroup (w, r, g) of the [partialsPerDot, runs, ⌈count/4⌉] grid takes
// slots first + 4g … first + 4g + 3 (one pass over x for four), sums elements w·256 + lane of run r
// striding by 256·partialsPerDot, adds its lanes pairwise and writes
// partials[(r·positions + positionOffset + 4g + k)·partialsPerDot + w]: a pass against several
// ranges of slots gives each range its positionOffset, and sum_partials.wgsl finishes them all.
#include "common/workgroup_sum4.wgsl"

struct BasisDotsParams {
  length: u32,
  runs: u32,
  partialsPerDot: u32,
  first: u32,
  count: u32,
  positionOffset: u32,
  positions: u32,
}

@group(0) @binding(0) var<uniform> params: BasisDotsParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> basis: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;

const WORKGROUP_SIZE: u32 = 256u;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) workgroup: vec3u, @builtin(local_invocation_index) lane: u32) {
  let stride = WORKGROUP_SIZE * params.partialsPerDot;
  let run = workgroup.y;
  let firstOfGroup = workgroup.z * 4u;
  let count = min(4u, params.count - firstOfGroup);
  let base = run * params.length;
  // Offsets of the (up to) four slots' run r; unused ones repeat the first and are not summed.
  let slotStride = params.runs * params.length;
  let s0 = (params.first + firstOfGroup) * slotStride + base;
  let s1 = select(s0, s0 + slotStride, count > 1u);
  let s2 = select(s0, s0 + 2u * slotStride, count > 2u);
  let s3 = select(s0, s0 + 3u * slotStride, count > 3u);
  var sum = vec4f(0.0);
  for (var i = workgroup.x * WORKGROUP_SIZE + lane; i < params.length; i += stride) {
    let xi = x[base + i];
    sum.x = fma(xi, basis[s0 + i], sum.x);
    if (count > 1u) { sum.y = fma(xi, basis[s1 + i], sum.y); }
    if (count > 2u) { sum.z = fma(xi, basis[s2 + i], sum.z); }
    if (count > 3u) { sum.w = fma(xi, basis[s3 + i], sum.w); }
  }
  let total = workgroupSum4(lane, sum);
  if (lane < count) {
    partials[(run * params.positions + params.positionOffset + firstOfGroup + lane) * params.partialsPerDot + workgroup.x] = total[lane];
  }
}
