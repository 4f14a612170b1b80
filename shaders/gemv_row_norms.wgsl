// Row norms of a dense layer in one pass: r² = (W ⊙ W)·mask for one row block (same layout as
// gemv.wgsl: a workgroup per row and a pairwise sum).
#include "common/dense_block.wgsl"
#include "common/workgroup_sum.wgsl"

@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> rowNormsSquared: array<f32>;

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
    let w = weight[row * block.cols + j];
    sum = fma(w * w, mask[j], sum);
  }
  let total = workgroupSum(lane, sum);
  if (lane == 0u) {
    rowNormsSquared[block.rowOffset + row] = total;
  }
}
