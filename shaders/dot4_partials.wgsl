// First level of up to four dot products per run, x_r·y_k,r, for every run r of a block at once
// (one pass over x for all four): runs are vectors of `length` values one after another, and
// workgroup (w, r) of the [partialsPerDot, runs] grid sums elements w·256 + lane of run r,
// striding by 256·partialsPerDot, adds its lanes pairwise (a tree) and writes
// partials[(r·slotsPerRun + slot + k)·partialsPerDot + w] for k < count; sum_partials.wgsl
// finishes every slot at once. A single vector is the block of one run. Unused y bindings
// (k ≥ count) hold any buffer and are not read.
#include "common/workgroup_sum4.wgsl"

struct Dot4Params {
  length: u32,
  partialsPerDot: u32,
  slot: u32,
  count: u32,
  slotsPerRun: u32,
}

@group(0) @binding(0) var<uniform> params: Dot4Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y0: array<f32>;
@group(0) @binding(3) var<storage, read> y1: array<f32>;
@group(0) @binding(4) var<storage, read> y2: array<f32>;
@group(0) @binding(5) var<storage, read> y3: array<f32>;
@group(0) @binding(6) var<storage, read_write> partials: array<f32>;

const WORKGROUP_SIZE: u32 = 256u;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) workgroup: vec3u, @builtin(local_invocation_index) lane: u32) {
  let stride = WORKGROUP_SIZE * params.partialsPerDot;
  let count = params.count;
  let run = workgroup.y;
  let base = run * params.length;
  var sum = vec4f(0.0);
  for (var i = workgroup.x * WORKGROUP_SIZE + lane; i < params.length; i += stride) {
    let xi = x[base + i];
    sum.x = fma(xi, y0[base + i], sum.x);
    if (count > 1u) { sum.y = fma(xi, y1[base + i], sum.y); }
    if (count > 2u) { sum.z = fma(xi, y2[base + i], sum.z); }
    if (count > 3u) { sum.w = fma(xi, y3[base + i], sum.w); }
  }
  let total = workgroupSum4(lane, sum);
  if (lane < count) {
    partials[(run * params.slotsPerRun + params.slot + lane) * params.partialsPerDot + workgroup.x] = total[lane];
  }
}
