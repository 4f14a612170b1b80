// Transposed GEMV v_b = Wᵀ u_b for one row block of a dense layer and up to four vectors u_b of the
// block (workgroup_id.z picks them; v_b += Wᵀ u_b when block.flag = 1, to sum the row blocks). A
// 64×4 workgroup owns 64 columns: each of its 4 rows of invocations walks a quarter of the rows
// (coalesced reads along a row of W, each weight used for every vector), then the 4 partial sums
// are added.
#include "common/dense_block.wgsl"

@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> upstream: array<f32>;
@group(0) @binding(3) var<storage, read_write> output: array<f32>;

const COLUMNS_PER_WORKGROUP: u32 = 64u;
const ROW_SLICES: u32 = 4u;
var<workgroup> partial: array<vec4f, 256>; // ROW_SLICES × COLUMNS_PER_WORKGROUP

@compute @workgroup_size(64, 4)
fn main(
  @builtin(workgroup_id) workgroup: vec3u,
  @builtin(num_workgroups) count: vec3u,
  @builtin(local_invocation_id) local: vec3u,
) {
  let col = workgroupLinearIndex(workgroup, count) * COLUMNS_PER_WORKGROUP + local.x;
  let vectors = vectorGroup(workgroup);
  let stride = block.totalRows;
  let u0 = vectors.x * stride + block.rowOffset;
  var sum = vec4f(0.0);
  if (col < block.cols) {
    for (var i = local.y; i < block.rows; i += ROW_SLICES) {
      let w = weight[i * block.cols + col];
      sum.x = fma(w, upstream[u0 + i], sum.x);
      if (vectors.y > 1u) { sum.y = fma(w, upstream[u0 + stride + i], sum.y); }
      if (vectors.y > 2u) { sum.z = fma(w, upstream[u0 + 2u * stride + i], sum.z); }
      if (vectors.y > 3u) { sum.w = fma(w, upstream[u0 + 3u * stride + i], sum.w); }
    }
  }
  partial[local.y * COLUMNS_PER_WORKGROUP + local.x] = sum;
  workgroupBarrier();
  if (local.y == 0u && col < block.cols) {
    let total = (partial[local.x] + partial[COLUMNS_PER_WORKGROUP + local.x])
      + (partial[2u * COLUMNS_PER_WORKGROUP + local.x] + partial[3u * COLUMNS_PER_WORKGROUP + local.x]);
    for (var q = 0u; q < vectors.y; q++) {
      let o = (vectors.x + q) * block.cols + col;
      var value = total[q];
      if (block.flag != 0u) {
        value += output[o];
      }
      output[o] = value;
    }
  }
}
