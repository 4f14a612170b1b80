// Row norms of a dense layer in one pass: r²_b = (W ⊙ W)·mask_b for one row block and up to four
// masks of the block (the layout of gemv.wgsl, each weight squared as it is read).
#include "common/dense_rows.wgsl"

@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> rowNormsSquared: array<f32>;

fn rowWeight(index: u32) -> f32 {
  let w = weight[index];
  return w * w;
}

fn rowInput(index: u32) -> f32 {
  return mask[index];
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
    rowNormsSquared[(vectors.x + lane) * block.totalRows + block.rowOffset + row] = total[lane];
  }
}
