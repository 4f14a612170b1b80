// The one tiled matrix product C = A·B (one product per workgroup_id.z, the "batch") behind every
// implicit-GEMM kernel: convolution, its transpose and its row-norm pass. The including kernel
// supplies the operands through four functions, so A and B are never formed in memory:
//   fn mmShape() -> vec3u                                    // (M, N, K)
//   fn mmReadA(batch: u32, row: u32, k: u32) -> f32          // called only with row < M, k < K
//   fn mmReadB(batch: u32, k: u32, col: u32) -> f32          // called only with k < K, col < N
//   fn mmWrite(batch: u32, row: u32, col: u32, value: f32)   // called only with row < M, col < N
// A 16×16 workgroup computes a 64×64 block of C (4×4 per invocation, strided by 16 so that
// neighbouring invocations touch neighbouring columns), stepping K by 16 through workgroup memory.

const TILE_M: u32 = 64u;
const TILE_N: u32 = 64u;
const TILE_K: u32 = 16u;
const WORKGROUP_SIDE: u32 = 16u;
const INVOCATIONS: u32 = 256u;

var<workgroup> tileA: array<f32, 1024>; // TILE_M × TILE_K, row-major
var<workgroup> tileB: array<f32, 1024>; // TILE_K × TILE_N, row-major

@compute @workgroup_size(16, 16, 1)
fn main(
  @builtin(workgroup_id) workgroup: vec3u,
  @builtin(local_invocation_id) local: vec3u,
  @builtin(local_invocation_index) localIndex: u32,
) {
  let shape = mmShape();
  let rows = shape.x;
  let cols = shape.y;
  let depth = shape.z;
  let batch = workgroup.z;
  let rowBase = workgroup.y * TILE_M;
  let colBase = workgroup.x * TILE_N;

  var acc: array<array<f32, 4>, 4>;
  for (var k0 = 0u; k0 < depth; k0 += TILE_K) {
    // Each invocation stages 4 entries of each tile (1024 entries / 256 invocations).
    for (var i = 0u; i < 4u; i++) {
      let e = localIndex + i * INVOCATIONS;
      let aRow = rowBase + e / TILE_K;
      let aK = k0 + e % TILE_K;
      var a = 0.0;
      if (aRow < rows && aK < depth) {
        a = mmReadA(batch, aRow, aK);
      }
      tileA[e] = a;
      let bK = k0 + e / TILE_N;
      let bCol = colBase + e % TILE_N;
      var b = 0.0;
      if (bK < depth && bCol < cols) {
        b = mmReadB(batch, bK, bCol);
      }
      tileB[e] = b;
    }
    workgroupBarrier();
    for (var k = 0u; k < TILE_K; k++) {
      var bValues: array<f32, 4>;
      for (var j = 0u; j < 4u; j++) {
        bValues[j] = tileB[k * TILE_N + local.x + j * WORKGROUP_SIDE];
      }
      for (var i = 0u; i < 4u; i++) {
        let a = tileA[(local.y + i * WORKGROUP_SIDE) * TILE_K + k];
        for (var j = 0u; j < 4u; j++) {
          acc[i][j] = fma(a, bValues[j], acc[i][j]);
        }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let row = rowBase + local.y + i * WORKGROUP_SIDE;
    for (var j = 0u; j < 4u; j++) {
      let col = colBase + local.x + j * WORKGROUP_SIDE;
      if (row < rows && col < cols) {
        mmWrite(batch, row, col, acc[i][j]);
      }
    }
  }
}
