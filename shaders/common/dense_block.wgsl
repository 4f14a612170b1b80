// Parameters of one row block of a dense layer's weight matrix W[rows, cols] (row-major). A matrix
// larger than one storage binding is split into row blocks; block b holds rows
// rowOffset .. rowOffset + rows − 1 of the full matrix and is dispatched on its own.

struct DenseBlockParams {
  rows: u32,
  cols: u32,
  rowOffset: u32,
  // gemv: add the bias; gemv_transpose: add to the output instead of overwriting it.
  flag: u32,
}

@group(0) @binding(0) var<uniform> block: DenseBlockParams;

// Workgroups laid out in 2D when one dimension would exceed the per-dimension limit.
fn workgroupLinearIndex(workgroup: vec3u, count: vec3u) -> u32 {
  return workgroup.x + workgroup.y * count.x;
}
