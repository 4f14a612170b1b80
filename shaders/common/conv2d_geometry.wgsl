// Geometry shared by the convolution kernels: the layer's parameters (binding 0) and the index
// maps of the implicit GEMMs. Per group g, with Cg = inChannels/groups, Mg = outChannels/groups:
//   forward:   out_g[Mg, Ho·Wo]  = W_g[Mg, Cg·kH·kW] · im2col_g[Cg·kH·kW, Ho·Wo]
//   transpose: in_g[Cg, H·W]     = W_gᵀ[Cg, Mg·kH·kW] · col2im_g[Mg·kH·kW, H·W]
// Weights are [outChannels, Cg, kH, kW] row-major, activations [batch, C, H, W]: the `batch`
// images stand side by side in the GEMM's columns (column = image·pixels + pixel), so one dispatch
// serves them all and small late-layer images still fill the 64-column tiles.

struct Conv2dParams {
  inChannels: u32,
  inHeight: u32,
  inWidth: u32,
  outChannels: u32,
  outHeight: u32,
  outWidth: u32,
  kernelH: u32,
  kernelW: u32,
  strideH: u32,
  strideW: u32,
  padTop: u32,
  padLeft: u32,
  dilationH: u32,
  dilationW: u32,
  groups: u32,
  addBias: u32,
  batch: u32,
}

@group(0) @binding(0) var<uniform> conv: Conv2dParams;

fn groupInChannels() -> u32 { return conv.inChannels / conv.groups; }
fn groupOutChannels() -> u32 { return conv.outChannels / conv.groups; }
fn kernelArea() -> u32 { return conv.kernelH * conv.kernelW; }
fn inPixels() -> u32 { return conv.inHeight * conv.inWidth; }
fn outPixels() -> u32 { return conv.outHeight * conv.outWidth; }
fn inputSize() -> u32 { return conv.inChannels * inPixels(); }
fn outputSize() -> u32 { return conv.outChannels * outPixels(); }

// Input index read by output pixel `pixel` (y·Wo + x) through tap k = (c, ky, kx) of group g,
// or -1 where the tap falls in the padding.
fn im2colIndex(g: u32, k: u32, pixel: u32) -> i32 {
  let c = k / kernelArea();
  let tap = k % kernelArea();
  let ky = tap / conv.kernelW;
  let kx = tap % conv.kernelW;
  let iy = i32((pixel / conv.outWidth) * conv.strideH + ky * conv.dilationH) - i32(conv.padTop);
  let ix = i32((pixel % conv.outWidth) * conv.strideW + kx * conv.dilationW) - i32(conv.padLeft);
  if (iy < 0 || ix < 0 || iy >= i32(conv.inHeight) || ix >= i32(conv.inWidth)) {
    return -1;
  }
  let channel = g * groupInChannels() + c;
  return i32((channel * conv.inHeight + u32(iy)) * conv.inWidth + u32(ix));
}

// Output index that input pixel `pixel` (y·W + x) reaches through tap k = (m, ky, kx) of group g,
// or -1 where no output pixel uses that tap (padding, stride gaps, beyond the output).
fn col2imIndex(g: u32, k: u32, pixel: u32) -> i32 {
  let m = k / kernelArea();
  let tap = k % kernelArea();
  let ky = tap / conv.kernelW;
  let kx = tap % conv.kernelW;
  let ny = i32(pixel / conv.inWidth + conv.padTop) - i32(ky * conv.dilationH);
  let nx = i32(pixel % conv.inWidth + conv.padLeft) - i32(kx * conv.dilationW);
  if (ny < 0 || nx < 0 || ny % i32(conv.strideH) != 0 || nx % i32(conv.strideW) != 0) {
    return -1;
  }
  let oy = u32(ny) / conv.strideH;
  let ox = u32(nx) / conv.strideW;
  if (oy >= conv.outHeight || ox >= conv.outWidth) {
    return -1;
  }
  let channel = g * groupOutChannels() + m;
  return i32((channel * conv.outHeight + oy) * conv.outWidth + ox);
}
