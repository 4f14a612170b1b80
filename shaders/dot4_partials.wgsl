// First level of up to four dot products x·y_k at once (one pass over x for all of them):
// workgroup w sums elements w·256 + lane, striding by 256·partialsPerDot, adds its lanes pairwise
// (a tree) and writes partials[(slot + k)·partialsPerDot + w] for k < count; sum_partials.wgsl
// finishes every slot at once. Unused y bindings (k ≥ count) hold any buffer and are not read.
struct Dot4Params {
  length: u32,
  partialsPerDot: u32,
  slot: u32,
  count: u32,
}

@group(0) @binding(0) var<uniform> params: Dot4Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y0: array<f32>;
@group(0) @binding(3) var<storage, read> y1: array<f32>;
@group(0) @binding(4) var<storage, read> y2: array<f32>;
@group(0) @binding(5) var<storage, read> y3: array<f32>;
@group(0) @binding(6) var<storage, read_write> partials: array<f32>;

const WORKGROUP_SIZE: u32 = 256u;
var<workgroup> lanes: array<vec4f, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) workgroup: vec3u, @builtin(local_invocation_index) lane: u32) {
  let stride = WORKGROUP_SIZE * params.partialsPerDot;
  let count = params.count;
  var sum = vec4f(0.0);
  for (var i = workgroup.x * WORKGROUP_SIZE + lane; i < params.length; i += stride) {
    let xi = x[i];
    sum.x = fma(xi, y0[i], sum.x);
    if (count > 1u) { sum.y = fma(xi, y1[i], sum.y); }
    if (count > 2u) { sum.z = fma(xi, y2[i], sum.z); }
    if (count > 3u) { sum.w = fma(xi, y3[i], sum.w); }
  }
  lanes[lane] = sum;
  workgroupBarrier();
  for (var width = WORKGROUP_SIZE / 2u; width > 0u; width /= 2u) {
    if (lane < width) {
      lanes[lane] += lanes[lane + width];
    }
    workgroupBarrier();
  }
  if (lane < count) {
    partials[(params.slot + lane) * params.partialsPerDot + workgroup.x] = lanes[0][lane];
  }
}
