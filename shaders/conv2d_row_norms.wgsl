// Row norms of a convolution in one pass (method.md, "Computation at scale"):
// r² = conv2d(mask, W ⊙ W) with the layer's stride, padding, dilation and groups, no bias.
// Same implicit GEMM as conv2d.wgsl with each weight squared as it is staged (one mask per image).
#include "common/conv2d_geometry.wgsl"

@group(0) @binding(1) var<storage, read> mask: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> rowNormsSquared: array<f32>;

fn mmShape() -> vec3u {
  return vec3u(groupOutChannels(), conv.batch * outPixels(), groupInChannels() * kernelArea());
}

fn mmReadA(g: u32, row: u32, k: u32) -> f32 {
  let w = weight[(g * groupOutChannels() + row) * groupInChannels() * kernelArea() + k];
  return w * w;
}

fn mmReadB(g: u32, k: u32, col: u32) -> f32 {
  let image = col / outPixels();
  let i = im2colIndex(g, k, col % outPixels());
  if (i < 0) {
    return 0.0;
  }
  return mask[image * inputSize() + u32(i)];
}

fn mmWrite(g: u32, row: u32, col: u32, value: f32) {
  let channel = g * groupOutChannels() + row;
  rowNormsSquared[(col / outPixels()) * outputSize() + channel * outPixels() + col % outPixels()] = value;
}

#include "common/matmul_tiled.wgsl"
