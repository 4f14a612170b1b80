// Geometry shared by the pooling kernels (binding 0): windows of kernelH × kernelW taps with the
// given strides, dilations and pads over each channel of a [C, H, W] tensor. One invocation per
// element of the tensor being written, workgroups laid out in 2D for large tensors.

struct PoolParams {
  channels: u32,
  inHeight: u32,
  inWidth: u32,
  outHeight: u32,
  outWidth: u32,
  kernelH: u32,
  kernelW: u32,
  strideH: u32,
  strideW: u32,
  padTop: u32,
  padLeft: u32,
  padBottom: u32,
  padRight: u32,
  dilationH: u32,
  dilationW: u32,
  // avgpool: 1 = count_include_pad; maxpool: unused.
  countIncludePad: u32,
  // avgpool: 1 applies A (entries 1/divisor), 2 applies A ⊙ A (entries 1/divisor², row norms).
  divisorPower: u32,
}

@group(0) @binding(0) var<uniform> pool: PoolParams;

const WORKGROUP_SIZE: u32 = 256u;

fn invocationIndex(id: vec3u, count: vec3u) -> u32 {
  return id.x + id.y * count.x * WORKGROUP_SIZE;
}

// Channel, row and column (c, oy, ox) of output element `index` of the [C, Ho, Wo] output.
fn outputPosition(index: u32) -> vec3u {
  let plane = pool.outHeight * pool.outWidth;
  return vec3u(index / plane, (index % plane) / pool.outWidth, index % pool.outWidth);
}

// Top-left corner (in unpadded input coordinates) of the window of output pixel (oy, ox).
fn windowOrigin(oy: u32, ox: u32) -> vec2i {
  return vec2i(i32(oy * pool.strideH) - i32(pool.padTop), i32(ox * pool.strideW) - i32(pool.padLeft));
}

// Average pool divisor of output pixel (oy, ox) (dilation 1): the window's taps inside the padded
// input when count_include_pad is set, else its taps inside the input.
fn averageDivisor(oy: u32, ox: u32) -> f32 {
  let origin = windowOrigin(oy, ox);
  var lowY = origin.x;
  var lowX = origin.y;
  var highY = min(origin.x + i32(pool.kernelH), i32(pool.inHeight + pool.padBottom));
  var highX = min(origin.y + i32(pool.kernelW), i32(pool.inWidth + pool.padRight));
  if (pool.countIncludePad == 0u) {
    lowY = max(lowY, 0);
    lowX = max(lowX, 0);
    highY = min(highY, i32(pool.inHeight));
    highX = min(highX, i32(pool.inWidth));
  }
  return f32(max(highY - lowY, 0) * max(highX - lowX, 0));
}
