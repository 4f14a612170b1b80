// The sums of one vec4f per invocation over a 256-invocation workgroup, added pairwise (a tree,
// for accuracy): four independent sums at once (a single sum is the x of vec4f(value, 0, 0, 0));
// every invocation receives the totals. It holds barriers: call it from uniform control flow.

const SUM4_LANES: u32 = 256u;
var<workgroup> sum4Lanes: array<vec4f, 256>;

fn workgroupSum4(lane: u32, value: vec4f) -> vec4f {
  sum4Lanes[lane] = value;
  workgroupBarrier();
  for (var width = SUM4_LANES / 2u; width > 0u; width /= 2u) {
    if (lane < width) {
      sum4Lanes[lane] += sum4Lanes[lane + width];
    }
    workgroupBarrier();
  }
  return sum4Lanes[0];
}
