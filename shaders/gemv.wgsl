// GEMV y_b = W x_b (+ bias when block.flag = 1) for one row block of a dense layer and up to four
// vectors x_b of the block (workgroup_id.z picks them): one workgroup per row, its 256 invocations
// striding over the columns with each weight used for every vector, then a pairwise (tree) sum.
#include "common/dense_block.wgsl"
#include "common/workgroup_sum4.wgsl"

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
  let vectors = vectorGroup(workgroup);
  let cols = block.cols;
  let x0 = vectors.x * cols;
  var sum = vec4f(0.0);
  for (var j = lane; j < cols; j += WORKGROUP_SIZE) {
    let w = weight[row * cols + j];
    sum.x = fma(w, input[x0 + j], sum.x);
    if (vectors.y > 1u) { sum.y = fma(w, input[x0 + cols + j], sum.y); }
    if (vectors.y > 2u) { sum.z = fma(w, input[x0 + 2u * cols + j], sum.z); }
    if (vectors.y > 3u) { sum.w = fma(w, input[x0 + 3u * cols + j], sum.w); }
  }
  let total = workgroupSum4(lane, sum);
  if (lane < vectors.y) {
    let i = block.rowOffset + row;
    var y = total[lane];
    if (block.flag != 0u) {
      y += bias[i];
    }
    output[(vectors.x + lane) * block.totalRows + i] = y;
  }
}
