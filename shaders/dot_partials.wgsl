// First level of a dot product x·y: workgroup w sums elements w·256 + lane, striding by
// 256·partialsPerDot, then adds its 256 lanes pairwise (a tree), and writes
// partials[slot·partialsPerDot + w]. sum_partials.wgsl finishes every slot at once.
struct DotParams {
  length: u32,
  partialsPerDot: u32,
  slot: u32,
}

@group(0) @binding(0) var<uniform> params: DotParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;

const WORKGROUP_SIZE: u32 = 256u;
var<workgroup> lanes: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) workgroup: vec3u, @builtin(local_invocation_index) lane: u32) {
  let stride = WORKGROUP_SIZE * params.partialsPerDot;
  var sum = 0.0;
  for (var i = workgroup.x * WORKGROUP_SIZE + lane; i < params.length; i += stride) {
    sum = fma(x[i], y[i], sum);
  }
  lanes[lane] = sum;
  workgroupBarrier();
  for (var width = WORKGROUP_SIZE / 2u; width > 0u; width /= 2u) {
    if (lane < width) {
      lanes[lane] += lanes[lane + width];
    }
    workgroupBarrier();
  }
  if (lane == 0u) {
    partials[params.slot * params.partialsPerDot + workgroup.x] = lanes[0];
  }
}
