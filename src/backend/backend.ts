/**
 * The compute backend: the few linear-algebra operations the bounds need, one layer at a time
 * (docs/method.md, "What the bounds ask of a compute backend"). A backend knows nothing of Lipschitz
 * constants; bounds/ knows nothing of devices. Implementations: cpu/ (onnxruntime-node) and
 * webgpu/ (WGSL kernels through Dawn).
 *
 * Host data is Float32Array in the layer's own layout (C, H, W), no batch dimension. The block
 * operations (`…Block`) take B vectors at once as ONE Float32Array of B·n entries, vector b at
 * [b·n, (b+1)·n) — the [B, C, H, W] layout that onnxruntime and the GPU kernels read without a
 * copy. Each of the B vectors has its own data, masks and slopes (B images, or B eps values of one
 * image); the single-vector methods are the case B = 1.
 *
 * Iterative solvers keep their vectors on the device as opaque `DeviceVector`s and read back only
 * scalars (dot products), through `VectorOps`; lock-step solvers (B independent Lanczos runs
 * advanced together) keep one `DeviceBlock` per basis index and use `BlockVectorOps`, whose
 * per-run coefficients and dot products travel as one array for all runs, so one step of B runs
 * costs one read-back. Device-resident solvers keep their basis in one `DeviceBasis` and use
 * `BasisOps`, whose Gram–Schmidt step sums its coefficients into, and reads them from, device
 * memory (`DeviceScalars`): several steps of B runs are recorded per read-back.
 */
import type { AffineLayer, MaxPoolLayer, Network } from '../model/ir.js';

/** A vector that lives where the backend computes (a Float64Array on the CPU, a buffer on a GPU). */
export interface DeviceVector {
  readonly length: number;
}

/** BLAS-1 style operations on device vectors, for Lanczos and power iteration. */
export interface VectorOps {
  alloc(length: number): DeviceVector;
  upload(data: Float32Array | Float64Array): DeviceVector;
  download(v: DeviceVector): Promise<Float64Array>;
  free(v: DeviceVector): void;
  /** out ← x */
  copy(x: DeviceVector, out: DeviceVector): void;
  /** x ← alpha·x */
  scale(alpha: number, x: DeviceVector): void;
  /** y ← y + alpha·x */
  axpy(alpha: number, x: DeviceVector, y: DeviceVector): void;
  /** out ← Σ_i coefficients[i]·basis[i] */
  combine(coefficients: ArrayLike<number>, basis: DeviceVector[], out: DeviceVector): void;
  /** [x·b for b in basis]: one read-back for all of them. */
  dots(x: DeviceVector, basis: DeviceVector[]): Promise<Float64Array>;
  dot(x: DeviceVector, y: DeviceVector): Promise<number>;
  /**
   * out[i] ← x[indices[i]] (out has indices.length entries). Optional: a backend offering gather and
   * scatter lets KW Lanczos keep its basis on the operator's support (certificates.ts).
   */
  gather?(x: DeviceVector, indices: Int32Array, out: DeviceVector): void;
  /** out ← 0, then out[indices[i]] ← x[i]. */
  scatter?(x: DeviceVector, indices: Int32Array, out: DeviceVector): void;
}

/**
 * B vectors of length `dim` on the device, one after another: run b's vector occupies
 * [b·dim, (b+1)·dim) of one buffer (a Float64Array of B·dim on the CPU, one storage buffer on a GPU).
 */
export interface DeviceBlock {
  /** B: the number of runs (vectors). */
  readonly count: number;
  /** Length of each vector. */
  readonly dim: number;
}

/**
 * BLAS-1 style operations on blocks, run by run: run b of the result depends only on run b of the
 * operands, with its own coefficient. Coefficient arrays are run-major: entry b·k + i belongs to
 * run b and basis block i (k = basis.length), the layout `dotsRuns` returns. On a GPU the dot
 * products are summed into, and the coefficients read from, storage buffers of this layout, so
 * device-resident Lanczos can feed one into the other without a read-back. The GPU keeps vectors
 * and coefficients in float32, the CPU in float64.
 */
export interface BlockVectorOps {
  /** A zero-filled block of `count` vectors of length `dim`. */
  allocBlock(count: number, dim: number): DeviceBlock;
  /** `count` vectors from `data` (length count·dim). */
  uploadBlock(data: Float32Array | Float64Array, count: number): DeviceBlock;
  /** All count·dim values. */
  downloadBlock(x: DeviceBlock): Promise<Float64Array>;
  freeBlock(x: DeviceBlock): void;
  /** out ← x (same count and dim). */
  copyBlock(x: DeviceBlock, out: DeviceBlock): void;
  /** Run `run` of `block` ← v (v.length = block.dim): a warm start or a fresh random start. */
  setRun(block: DeviceBlock, run: number, v: DeviceVector): void;
  /** out ← run `run` of `block` (a Ritz vector kept as a warm start). */
  getRun(block: DeviceBlock, run: number, out: DeviceVector): void;
  /** A new block holding the given runs of x, in that order (drops finished runs). */
  gatherRuns(x: DeviceBlock, runs: readonly number[]): DeviceBlock;
  /**
   * The given runs of x (increasing), in x's own memory where the backend can (the CPU: a fresh
   * block of tens of MB costs more in page faults than the copy); x is consumed — use only the
   * result. A GPU gathers into a new buffer and frees x.
   */
  keepRuns(x: DeviceBlock, runs: readonly number[]): DeviceBlock;
  /** x_b ← alphas[b]·x_b */
  scaleRuns(alphas: ArrayLike<number>, x: DeviceBlock): void;
  /** y_b ← y_b + alphas[b]·x_b (x and y distinct) */
  axpyRuns(alphas: ArrayLike<number>, x: DeviceBlock, y: DeviceBlock): void;
  /**
   * out_b ← Σ_i coefficients[b·k + i]·basis[i]_b, k = basis.length (out is none of the basis
   * blocks; k = 0 zeroes out).
   */
  combineRuns(coefficients: ArrayLike<number>, basis: DeviceBlock[], out: DeviceBlock): void;
  /** [x_b · basis[i]_b] at b·k + i, for every run and basis block: one read-back for all. */
  dotsRuns(x: DeviceBlock, basis: DeviceBlock[]): Promise<Float64Array>;
  /**
   * Whether reading scalars back waits for a device round trip (a GPU: about 0.5 ms on an H200
   * whatever the size). Iterative solvers then record several steps per read-back (BasisOps);
   * where it is false (the CPU) a read-back costs nothing and they may read back every step.
   */
  readonly roundTripReadBack: boolean;
}

/**
 * `slots` blocks of `count` runs × `dim` values in one device buffer, slot-major: run b of slot s
 * at [(s·count + b)·dim, (s·count + b + 1)·dim). The basis of device-resident Lanczos.
 */
export interface DeviceBasis {
  readonly count: number;
  readonly dim: number;
  readonly slots: number;
}

/** Scalars (dot products, norms) kept on the device until read back, all in one transfer. */
export interface DeviceScalars {
  readonly length: number;
}

/**
 * Basis operations for solvers that keep their coefficients on the device: Gram–Schmidt of a block
 * against any slots of a DeviceBasis is recorded without a read-back (one dispatch per pass and
 * range of slots on a GPU), its coefficients and norms go to DeviceScalars, read back once for
 * many steps. Run b of every result depends only on run b of the operands.
 */
export interface BasisOps {
  /** A zero-filled basis, or null when it exceeds one device binding (use separate blocks then). */
  allocBasis(count: number, dim: number, slots: number): DeviceBasis | null;
  freeBasis(basis: DeviceBasis): void;
  /** Slot `slot` of every run ← x (x.count = basis.count, x.dim = basis.dim). */
  storeSlot(basis: DeviceBasis, slot: number, x: DeviceBlock): void;
  /**
   * The given runs (increasing) of every slot, in the basis's own memory where the backend can;
   * `basis` is consumed (as BlockVectorOps.keepRuns).
   */
  keepBasisRuns(basis: DeviceBasis, runs: readonly number[]): DeviceBasis;
  /**
   * out_b ← Σ_i coefficients[b·k + i]·V[slots[i]]_b, k = slots.length ≥ 1, host coefficients
   * (Ritz vectors).
   */
  combineSlots(basis: DeviceBasis, slots: readonly number[], coefficients: ArrayLike<number>, out: DeviceBlock): void;
  /**
   * Classical Gram–Schmidt twice (CGS2, "twice is enough") of w against the slots `against`
   * (k of them, distinct), then normalisation, recorded without a read-back:
   *   c¹_b = V_bᵀ w_b,  w_b ← w_b − V_b c¹_b,  c²_b = V_bᵀ w_b,  w_b ← w_b − V_b c²_b,
   *   ν_b = ||w_b||²,  next_b ← w_b / √ν_b (zero where ν_b = 0), also into slot `into` unless null.
   * Writes run b's c¹ (k values), c² (k values) and ν to record[offset + b·stride + (0…2k)];
   * stride ≥ 2k + 1. `next` is neither w nor a slot of the basis.
   */
  orthonormalise(
    basis: DeviceBasis,
    w: DeviceBlock,
    against: readonly number[],
    next: DeviceBlock,
    into: number | null,
    record: DeviceScalars,
    offset: number,
    stride: number,
  ): void;
  /** `length` scalars on the device (zero-filled). */
  allocScalars(length: number): DeviceScalars;
  /** The first `length` scalars (all by default): one read-back. */
  readScalars(scalars: DeviceScalars, length?: number): Promise<Float64Array>;
  freeScalars(scalars: DeviceScalars): void;
}

/**
 * v ↦ D Aᵀ Λ² A D v for one affine layer with input mask D and output slopes Λ
 * (docs/method.md, "Computation at scale"); its largest eigenvalue is ||Λ A D||².
 */
export interface GramOperator {
  readonly dim: number;
  /** out ← D Aᵀ Λ² A D x (out and x distinct). */
  apply(x: DeviceVector, out: DeviceVector): Promise<void>;
  dispose(): void;
}

/**
 * The Gram operators of one layer for B runs at once: run b applies D_b Aᵀ Λ_b² A D_b with its
 * own input mask D_b and output slopes Λ_b (one batched operator call for all runs).
 */
export interface BlockGramOperator {
  /** Length of each run's vector (the layer's input size). */
  readonly dim: number;
  /** B: the runs this operator was built for; blocks passed to `apply` hold exactly this many. */
  readonly count: number;
  /** out_b ← D_b Aᵀ Λ_b² A D_b x_b for every run b (out and x distinct). */
  apply(x: DeviceBlock, out: DeviceBlock): Promise<void>;
  /**
   * The operator of the given runs of this one, in that order (a new operator with its own
   * lifetime; this one stays usable): lock-step solvers drop finished runs with it.
   */
  gatherRuns(runs: readonly number[]): Promise<BlockGramOperator>;
  dispose(): void;
}

export interface Backend {
  /** 'cpu' or 'webgpu'. */
  readonly name: string;
  /** Human-readable description of the device (CPU model and threads, or the GPU adapter). */
  readonly adapter: string;
  readonly vectors: VectorOps;
  readonly blocks: BlockVectorOps;
  readonly basis: BasisOps;

  /** Upload weights, build kernels or sessions for every layer. Called once per network. */
  prepare(network: Network): Promise<void>;
  /** The layer's output with bias (ReLU not applied: the caller applies it where `relu` is set). */
  forward(layer: AffineLayer, x: Float32Array): Promise<Float32Array>;
  /** A v: the bias-free linear map. */
  applyA(layer: AffineLayer, v: Float32Array): Promise<Float32Array>;
  /** Aᵀ u: the transpose (transposed convolution, transposed GEMV, ...). */
  applyAT(layer: AffineLayer, u: Float32Array): Promise<Float32Array>;
  /** r_i² = Σ_j A_ij² mask_j, as conv2d(mask, W⊙W) or (W⊙W)·mask, in one pass. */
  rowNormsSquared(layer: AffineLayer, mask: Float32Array): Promise<Float32Array>;
  /** Max pool forward (padding acts as −∞). */
  maxPool(layer: MaxPoolLayer, x: Float32Array): Promise<Float32Array>;
  /** Output mask of a max pool: 1 where any input of the window has mask 1. */
  poolMask(layer: MaxPoolLayer, mask: Float32Array): Promise<Float32Array>;
  /**
   * The operator D Aᵀ Λ² A D. `domainMask` (0/1, length = layer input size) is D; `slopeSquared`
   * (length = output size) is Λ², or null for Λ = I.
   */
  gramOperator(layer: AffineLayer, domainMask: Float32Array | null, slopeSquared: Float32Array | null): Promise<GramOperator>;

  // ---- B vectors per call: host blocks of count·n entries, vector b at [b·n, (b+1)·n) ----

  /** forward for each of `count` inputs. */
  forwardBlock(layer: AffineLayer, x: Float32Array, count: number): Promise<Float32Array>;
  /** A v_b for each of `count` vectors. */
  applyABlock(layer: AffineLayer, v: Float32Array, count: number): Promise<Float32Array>;
  /**
   * Aᵀ u_b for each of `count` vectors: a new array. `u` is read before the promise resolves and not
   * kept (the tight method's backward passes reuse it: tight/sweep.ts, RowScratch).
   */
  applyATBlock(layer: AffineLayer, u: Float32Array, count: number): Promise<Float32Array>;
  /** Row norms for each of `count` masks. */
  rowNormsSquaredBlock(layer: AffineLayer, masks: Float32Array, count: number): Promise<Float32Array>;
  /** Max pool forward for each of `count` inputs. */
  maxPoolBlock(layer: MaxPoolLayer, x: Float32Array, count: number): Promise<Float32Array>;
  /** Max pool mask propagation for each of `count` masks. */
  poolMaskBlock(layer: MaxPoolLayer, masks: Float32Array, count: number): Promise<Float32Array>;
  /**
   * The Gram operators of `count` runs: `domainMasks` (count·n, 0/1) holds D_b, `slopeSquared`
   * (count·m) holds Λ_b²; null stands for identities in every run.
   */
  gramBlockOperator(layer: AffineLayer, domainMasks: Float32Array | null, slopeSquared: Float32Array | null, count: number): Promise<BlockGramOperator>;

  /** Release every device resource. */
  dispose(): Promise<void>;
}

export type BackendName = 'cpu' | 'webgpu' | 'auto';
