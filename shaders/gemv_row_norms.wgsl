// Row norms of a dense layer in one pass: r²_b = (W ⊙ W)·mask_b for one row block and up to four
// masks of the block (same layout as gemv.wgsl: a workgroup per row and a pairwise sum).
#include "common/dense_block.wgsl"
#include "common/workgroup_sum4.wgsl"

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
  let vectors = vectorGroup(workgroup);
  let cols = block.cols;
  let m0 = vectors.x * cols;
  var sum = vec4f(0.0);
  for (var j = lane; j < cols; j += WORKGROUP_SIZE) {
    let w = weight[row * cols + j];
    let w2 = w * w;
    sum.x = fma(w2, mask[m0 + j], sum.x);
    if (vectors.y > 1u) { sum.y = fma(w2, mask[m0 + cols + j], sum.y); }
    if (vectors.y > 2u) { sum.z = fma(w2, mask[m0 + 2u * cols + j], sum.z); }
    if (vectors.y > 3u) { sum.w = fma(w2, mask[m0 + 3u * cols + j], sum.w); }
  }
  let total = workgroupSum4(lane, sum);
  if (lane < vectors.y) {
    rowNormsSquared[(vectors.x + lane) * block.totalRows + block.rowOffset + row] = total[lane];
  }
}
