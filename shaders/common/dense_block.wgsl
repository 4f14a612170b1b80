// Parameters of one row block of a dense layer's weight matrix W[rows, cols] (row-major). A matrix
// larger than one storage binding is split into row blocks; block b holds rows
// rowOffset .. rowOffset + rows − 1 of the full matrix and is dispatched on its own.
// Vectors come as a block of `batch` vectors one after another (inputs of cols values, outputs of
// totalRows values); workgroup_id.z picks a group of up to four of them, so each weight read from
// memory serves four vectors.

struct DenseBlockParams {
  rows: u32,
  cols: u32,
  rowOffset: u32,
  // gemv: add the bias; gemv_transpose: add to the output instead of overwriting it.
  flag: u32,
  // Rows of the whole matrix (the output size of gemv, the input size of gemv_transpose).
  totalRows: u32,
  batch: u32,
}

@group(0) @binding(0) var<uniform> block: DenseBlockParams;

const VECTORS_PER_WORKGROUP: u32 = 4u;

// Workgroups laid out in 2D when one dimension would exceed the per-dimension limit.
fn workgroupLinearIndex(workgroup: vec3u, count: vec3u) -> u32 {
  return workgroup.x + workgroup.y * count.x;
}

// The first vector of this workgroup's group of vectors, and how many (1…4) the group holds.
fn vectorGroup(workgroup: vec3u) -> vec2u {
  let first = workgroup.z * VECTORS_PER_WORKGROUP;
  return vec2u(first, min(VECTORS_PER_WORKGROUP, block.batch - first));
}
