// Diagonal scale layer (an unfolded batch normalisation): y = s_c·x (+ shift_c when addShift = 1);
// power = 2 applies s_c² instead (A ⊙ A, for the row norms). A is diagonal, so it is its own
// transpose. c = (index / channelSize) mod channels (channelSize = H·W for images, 1 for vectors;
// the modulus walks a block of several inputs one after another).
#include "common/elementwise.wgsl"

struct ChannelScaleParams {
  length: u32,
  channelSize: u32,
  power: u32,
  addShift: u32,
  channels: u32,
}

@group(0) @binding(0) var<uniform> params: ChannelScaleParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> scale: array<f32>;
@group(0) @binding(3) var<storage, read> shift: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) count: vec3u) {
  let i = invocationIndex(id, count);
  if (i >= params.length) {
    return;
  }
  let c = (i / params.channelSize) % params.channels;
  var s = scale[c];
  if (params.power == 2u) {
    s *= s;
  }
  var y = s * input[i];
  if (params.addShift != 0u) {
    y += shift[c];
  }
  output[i] = y;
}
