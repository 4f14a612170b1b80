// Convolution y = conv2d(x, W) (+ bias when conv.addBias = 1): the layer's A (bias-free) or its
// forward pass, as an implicit GEMM over the shared tiled matmul (one matmul batch per group; the
// images of the block side by side in the columns).
#include "common/conv2d_geometry.wgsl"

@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;

fn mmShape() -> vec3u {
  return vec3u(groupOutChannels(), conv.batch * outPixels(), groupInChannels() * kernelArea());
}

fn mmReadA(g: u32, row: u32, k: u32) -> f32 {
  return weight[(g * groupOutChannels() + row) * groupInChannels() * kernelArea() + k];
}

fn mmReadB(g: u32, k: u32, col: u32) -> f32 {
  let image = col / outPixels();
  let i = im2colIndex(g, k, col % outPixels());
  if (i < 0) {
    return 0.0;
  }
  return input[image * inputSize() + u32(i)];
}

fn mmWrite(g: u32, row: u32, col: u32, value: f32) {
  let channel = g * groupOutChannels() + row;
  var y = value;
  if (conv.addBias != 0u) {
    y += bias[channel];
  }
  output[(col / outPixels()) * outputSize() + channel * outPixels() + col % outPixels()] = y;
}

#include "common/matmul_tiled.wgsl"
