// One row of a dense row block against up to four vectors of the block: Σ_j w(row, j)·x_k[j] for
// k < vectors.y, vector k starting at (vectors.x + k)·cols, its columns strided over the 256
// invocations of a workgroup with each weight read once for every vector, then added pairwise.
// The including kernel supplies the operands (like common/matmul_tiled.wgsl):
//   fn rowWeight(index: u32) -> f32   // entry `index` of the row block (W, or W ⊙ W)
//   fn rowInput(index: u32) -> f32    // entry `index` of the block of vectors
// It holds barriers: call it from uniform control flow.
#include "common/dense_block.wgsl"
#include "common/workgroup_sum4.wgsl"

fn rowSums4(row: u32, lane: u32, vectors: vec2u) -> vec4f {
  let cols = block.cols;
  let x0 = vectors.x * cols;
  var sum = vec4f(0.0);
  for (var j = lane; j < cols; j += SUM4_LANES) {
    let w = rowWeight(row * cols + j);
    sum.x = fma(w, rowInput(x0 + j), sum.x);
    if (vectors.y > 1u) { sum.y = fma(w, rowInput(x0 + cols + j), sum.y); }
    if (vectors.y > 2u) { sum.z = fma(w, rowInput(x0 + 2u * cols + j), sum.z); }
    if (vectors.y > 3u) { sum.w = fma(w, rowInput(x0 + 3u * cols + j), sum.w); }
  }
  return workgroupSum4(lane, sum);
}
