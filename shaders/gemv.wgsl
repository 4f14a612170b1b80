// GEMV y = W x (+ bias when block.flag = 1) for one row block of a dense layer: one workgroup per
// row, its 256 invocations striding over the columns, then a pairwise (tree) sum.
#include "common/dense_block.wgsl"
#include "common/workgroup_sum.wgsl"

@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> input: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;

const WORKGROUP_SIZE: u32 = 256u;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) workgroup: vec3u,
  @builtin(num_workgroups) count: vec3u,
  @builtin(local_invocation_index) lane: u32,
) {
  let row = workgroupLinearIndex(workgroup, count);
  if (row >= block.rows) {
    return; // uniform across the workgroup
  }
  var sum = 0.0;
  for (var j = lane; j < block.cols; j += WORKGROUP_SIZE) {
    sum = fma(weight[row * block.cols + j], input[j], sum);
  }
  let total = workgroupSum(lane, sum);
  if (lane == 0u) {
    let i = block.rowOffset + row;
    var y = total;
    if (block.flag != 0u) {
      y += bias[i];
    }
    output[i] = y;
  }
}
