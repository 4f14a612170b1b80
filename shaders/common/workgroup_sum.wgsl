// The sum of one f32 per invocation over a 256-invocation workgroup, added pairwise (a tree, for
// accuracy); every invocation receives the total. It holds barriers: call it from uniform control
// flow. (common/workgroup_sum4.wgsl sums vec4s the same way.)

const SUM_LANES: u32 = 256u;
var<workgroup> sumLanes: array<f32, 256>;

fn workgroupSum(lane: u32, value: f32) -> f32 {
  sumLanes[lane] = value;
  workgroupBarrier();
  for (var width = SUM_LANES / 2u; width > 0u; width /= 2u) {
    if (lane < width) {
      sumLanes[lane] += sumLanes[lane + width];
    }
    workgroupBarrier();
  }
  return sumLanes[0];
}
