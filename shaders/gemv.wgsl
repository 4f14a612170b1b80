// GEMV y_b = W x_b (+ bias when block.flag = 1) for one row block of a dense layer and up to four
// vectors x_b of the block (workgroup_id.z picks them): one workgroup per row
// (common/dense_rows.wgsl).
#include "common/dense_rows.wgsl"

@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> input: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;

fn rowWeight(index: u32) -> f32 {
  return weight[index];
}

fn rowInput(index: u32) -> f32 {
  return input[index];
}

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
  let vectors = vectorGroup(workgroup);
  let total = rowSums4(row, lane, vectors);
  if (lane < vectors.y) {
    let i = block.rowOffset + row;
    var y = total[lane];
    if (block.flag != 0u) {
      y += bias[i];
    }
    output[(vectors.x + lane) * block.totalRows + i] = y;
  }
}
