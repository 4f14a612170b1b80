// Transposed convolution v = Aᵀ u with the layer's own weights and geometry (the adjoint of
// conv2d.wgsl): an implicit GEMM over the shared tiled matmul, gathering for each input pixel the
// output pixels that read it, so no scatter or atomics are needed. The images of the block stand
// side by side in the columns (column = image·H·W + pixel).
#include "common/conv2d_geometry.wgsl"

@group(0) @binding(1) var<storage, read> upstream: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> output: array<f32>;

fn mmShape() -> vec3u {
  return vec3u(groupInChannels(), conv.batch * inPixels(), groupOutChannels() * kernelArea());
}

// Wᵀ_g[c, (m, tap)] = W[g·Mg + m, c, tap]
fn mmReadA(g: u32, row: u32, k: u32) -> f32 {
  let m = k / kernelArea();
  let tap = k % kernelArea();
  return weight[((g * groupOutChannels() + m) * groupInChannels() + row) * kernelArea() + tap];
}

fn mmReadB(g: u32, k: u32, col: u32) -> f32 {
  let image = col / inPixels();
  let i = col2imIndex(g, k, col % inPixels());
  if (i < 0) {
    return 0.0;
  }
  return upstream[image * outputSize() + u32(i)];
}

fn mmWrite(g: u32, row: u32, col: u32, value: f32) {
  let channel = g * groupInChannels() + row;
  output[(col / inPixels()) * inputSize() + channel * inPixels() + col % inPixels()] = value;
}

#include "common/matmul_tiled.wgsl"
