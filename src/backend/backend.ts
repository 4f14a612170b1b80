/**
 * The compute backend: the few linear-algebra operations the bounds need, one layer at a time
 * (method.md, "What the bounds ask of a compute backend"). A backend knows nothing of Lipschitz
 * constants; bounds/ knows nothing of devices. Implementations: cpu/ (onnxruntime-node) and
 * webgpu/ (WGSL kernels through Dawn).
 *
 * Host data is Float32Array in the layer's own layout (C, H, W), no batch dimension.
 * Iterative solvers keep their vectors on the device as opaque `DeviceVector`s and read back only
 * scalars (dot products), through `VectorOps`.
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
}

/**
 * v ↦ D Aᵀ Λ² A D v for one affine layer with input mask D and output slopes Λ
 * (method.md, "Computation at scale"); its largest eigenvalue is ||Λ A D||².
 */
export interface GramOperator {
  readonly dim: number;
  /** out ← D Aᵀ Λ² A D x (out and x distinct). */
  apply(x: DeviceVector, out: DeviceVector): Promise<void>;
  dispose(): void;
}

export interface Backend {
  /** 'cpu' or 'webgpu'. */
  readonly name: string;
  /** Human-readable description of the device (CPU model and threads, or the GPU adapter). */
  readonly adapter: string;
  readonly vectors: VectorOps;

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
  /** Release every device resource. */
  dispose(): Promise<void>;
}

export type BackendName = 'cpu' | 'webgpu' | 'auto';
