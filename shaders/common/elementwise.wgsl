// Indexing for the elementwise kernels: one invocation per element, workgroups of 256 laid out
// in 2D when a vector needs more than 65535 of them.

const WORKGROUP_SIZE: u32 = 256u;

fn invocationIndex(id: vec3u, count: vec3u) -> u32 {
  return id.x + id.y * count.x * WORKGROUP_SIZE;
}
