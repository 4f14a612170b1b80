// Transposed GEMV v = Wᵀ u for one row block of a dense layer (v += Wᵀ u when block.flag = 1, to
// sum the blocks). A 64×4 workgroup owns 64 columns: each of its 4 rows of invocations walks a
// quarter of the rows (coalesced reads along a row of W), then the 4 partial sums are added.
#include "common/dense_block.wgsl"

@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> upstream: array<f32>;
@group(0) @binding(3) var<storage, read_write> output: array<f32>;

const COLUMNS_PER_WORKGROUP: u32 = 64u;
const ROW_SLICES: u32 = 4u;
var<workgroup> partial: array<f32, 256>; // ROW_SLICES × COLUMNS_PER_WORKGROUP

@compute @workgroup_size(64, 4)
fn main(
  @builtin(workgroup_id) workgroup: vec3u,
  @builtin(num_workgroups) count: vec3u,
  @builtin(local_invocation_id) local: vec3u,
) {
  let col = workgroupLinearIndex(workgroup, count) * COLUMNS_PER_WORKGROUP + local.x;
  var sum = 0.0;
  if (col < block.cols) {
    for (var i = local.y; i < block.rows; i += ROW_SLICES) {
      sum = fma(weight[i * block.cols + col], upstream[block.rowOffset + i], sum);
    }
  }
  partial[local.y * COLUMNS_PER_WORKGROUP + local.x] = sum;
  workgroupBarrier();
  if (local.y == 0u && col < block.cols) {
    var total = (partial[local.x] + partial[COLUMNS_PER_WORKGROUP + local.x])
      + (partial[2u * COLUMNS_PER_WORKGROUP + local.x] + partial[3u * COLUMNS_PER_WORKGROUP + local.x]);
    if (block.flag != 0u) {
      total += output[col];
    }
    output[col] = total;
  }
}
