/**
 * Shader program descriptors, one per WGSL kernel in shaders/ (in the style of
 * tfjs-backend-webgpu's programs): the file, the workgroup size it is compiled with, the layout
 * of its uniform parameter struct (binding 0, in declaration order) and its storage bindings
 * (bindings 1…, in order). The runtime checks each workgroup size against its shader.
 */

export type StorageAccess = 'read' | 'write';
export type UniformType = 'u32' | 'f32';

export interface ProgramInfo {
  /** Pipeline cache key; also the shader file's base name. */
  readonly key: string;
  readonly workgroupSize: readonly [number, number, number];
  /** Fields of the uniform struct, in the order the shader declares them. */
  readonly uniforms: ReadonlyArray<readonly [name: string, type: UniformType]>;
  /** Storage buffers at bindings 1, 2, …: 'read' (read-only) or 'write' (read_write). */
  readonly storage: readonly StorageAccess[];
}

const u32 = (...names: string[]) => names.map((n) => [n, 'u32'] as const);

const CONV2D_UNIFORMS = u32(
  'inChannels', 'inHeight', 'inWidth', 'outChannels', 'outHeight', 'outWidth', 'kernelH', 'kernelW',
  'strideH', 'strideW', 'padTop', 'padLeft', 'dilationH', 'dilationW', 'groups', 'addBias', 'batch',
);
const POOL_UNIFORMS = u32(
  'channels', 'inHeight', 'inWidth', 'outHeight', 'outWidth', 'kernelH', 'kernelW', 'strideH', 'strideW',
  'padTop', 'padLeft', 'padBottom', 'padRight', 'dilationH', 'dilationW', 'countIncludePad', 'divisorPower',
);
const DENSE_BLOCK_UNIFORMS = u32('rows', 'cols', 'rowOffset', 'flag', 'totalRows', 'batch');

/** Output block of one matmul workgroup (shaders/common/matmul_tiled.wgsl): 64 rows × 64 columns. */
export const MATMUL_TILE = { rows: 64, cols: 64 } as const;
/** Columns of W one gemv_transpose workgroup owns. */
export const GEMV_TRANSPOSE_COLUMNS = 64;
/** Vectors of a block one dense-layer workgroup serves (workgroup_id.z; common/dense_block.wgsl). */
export const DENSE_VECTORS_PER_WORKGROUP = 4;
/** Invocations of a 1D workgroup (elementwise, pooling, reductions, one gemv row). */
export const LINEAR_WORKGROUP = 256;
/** Most partial sums per dot product (sum_partials adds at most one workgroup's worth). */
export const MAX_PARTIALS_PER_DOT = 256;
/**
 * Workgroups a dot-product pass aims at over all runs: a block of many runs takes fewer partial
 * sums per dot product (each run already brings its own workgroups).
 */
export const DOT_WORKGROUPS_TARGET = 4096;

function program(
  key: string,
  workgroupSize: readonly [number, number, number],
  uniforms: ProgramInfo['uniforms'],
  storage: StorageAccess[],
): ProgramInfo {
  return { key, workgroupSize, uniforms, storage };
}

const linear = [LINEAR_WORKGROUP, 1, 1] as const;

export const PROGRAMS = {
  // Layer kernels take a block of `batch` vectors one after another (a single vector is a block of one).
  /** y = conv2d(x, W) (+ bias): implicit GEMM on the tiled matmul. Storage: x, W, bias, y. */
  conv2d: program('conv2d', [16, 16, 1], CONV2D_UNIFORMS, ['read', 'read', 'read', 'write']),
  /** v = Aᵀ u (transposed convolution). Storage: u, W, v. */
  conv2dTranspose: program('conv2d_transpose', [16, 16, 1], CONV2D_UNIFORMS, ['read', 'read', 'write']),
  /** r² = conv2d(mask, W ⊙ W). Storage: mask, W, r². */
  conv2dRowNorms: program('conv2d_row_norms', [16, 16, 1], CONV2D_UNIFORMS, ['read', 'read', 'write']),
  /** y = W x (+ bias) for one row block. Storage: W block, x, bias, y. */
  gemv: program('gemv', linear, DENSE_BLOCK_UNIFORMS, ['read', 'read', 'read', 'write']),
  /** v (+)= W_blockᵀ u_block. Storage: W block, u, v. */
  gemvTranspose: program('gemv_transpose', [GEMV_TRANSPOSE_COLUMNS, 4, 1], DENSE_BLOCK_UNIFORMS, ['read', 'read', 'write']),
  /** r² = (W ⊙ W)·mask for one row block. Storage: W block, mask, r². */
  gemvRowNorms: program('gemv_row_norms', linear, DENSE_BLOCK_UNIFORMS, ['read', 'read', 'write']),
  // Pooling kernels serve a block as one tensor of batch·C channels.
  /** Average pool A x, or (A ⊙ A) x. Storage: x, y. */
  avgpool: program('avgpool', linear, POOL_UNIFORMS, ['read', 'write']),
  /** Aᵀ u of the average pool. Storage: u, v. */
  avgpoolTranspose: program('avgpool_transpose', linear, POOL_UNIFORMS, ['read', 'write']),
  /** Max pool forward. Storage: x, y. */
  maxpool: program('maxpool', linear, POOL_UNIFORMS, ['read', 'write']),
  /** Max pool of a 0/1 mask. Storage: mask, output mask. */
  maxpoolMask: program('maxpool_mask', linear, POOL_UNIFORMS, ['read', 'write']),
  /** y = s_c^power x (+ shift_c). Storage: x, scale, shift, y. */
  channelScale: program('channel_scale', linear, u32('length', 'channelSize', 'power', 'addShift', 'channels'), ['read', 'read', 'read', 'write']),
  /** x ← d ⊙ x (a block: d holds one diagonal per vector). Storage: d, x. */
  multiply: program('multiply', linear, u32('length'), ['read', 'write']),
  // Vector kernels work run by run on a block of `runs` vectors of `length` (a vector is one run);
  // coefficients and results are run-major, slotsPerRun per run.
  /** x_r ← alpha_r·x_r. Storage: alphas, x. */
  scale: program('scale', linear, u32('length', 'runs'), ['read', 'write']),
  /** Partial sums of x_r·y_k,r for up to four y_k into slots slot…slot+count−1 of each run. Storage: x, y0…y3, partials. */
  dot4Partials: program('dot4_partials', linear, u32('length', 'partialsPerDot', 'slot', 'count', 'slotsPerRun'), ['read', 'read', 'read', 'read', 'read', 'write']),
  /** out_r ← beta·out_r + Σ c_r,k b_k,r for up to four b_k. Storage: b0…b3, coefficients, out. */
  combine4: program(
    'combine4',
    linear,
    [...u32('length', 'runs', 'slotsPerRun', 'slot', 'count'), ['beta', 'f32']],
    ['read', 'read', 'read', 'read', 'read', 'write'],
  ),
  /** One sum per slot, into results[outOffset + (s / slotsPerRun)·outStride + s % slotsPerRun]. Storage: partials, results. */
  sumPartials: program('sum_partials', linear, u32('partialsPerDot', 'slots', 'slotsPerRun', 'outStride', 'outOffset'), ['read', 'write']),
  // Basis kernels (BasisOps): a basis of slots × runs × length in one buffer, slot-major.
  /** Partial sums of x_r·V[first + p]_r, four slots per workgroup. Storage: x, basis, partials. */
  basisDots: program('basis_dots', linear, u32('length', 'runs', 'partialsPerDot', 'first', 'count', 'positionOffset', 'positions'), ['read', 'read', 'write']),
  /** out_r ← beta·out_r + sign·Σ_p c_r,p V[first + p]_r. Storage: basis, coefficients, out. */
  basisCombine: program(
    'basis_combine',
    linear,
    [...u32('length', 'runs', 'first', 'count', 'coefficientOffset', 'coefficientStride'), ['beta', 'f32'], ['sign', 'f32']],
    ['read', 'read', 'write'],
  ),
  /** next_r ← w_r/√ν_r (and into a basis slot). Storage: w, norms, next, basis. */
  normaliseRuns: program('normalise_runs', linear, u32('length', 'runs', 'normOffset', 'normStride', 'slot', 'writeSlot'), ['read', 'read', 'write', 'write']),
} satisfies Record<string, ProgramInfo>;

export type ProgramName = keyof typeof PROGRAMS;
