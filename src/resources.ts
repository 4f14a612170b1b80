/**
 * Resources an analysis will take, decided from the network's shapes before any work: an upper
 * estimate of the peak resident memory of importing a model and certifying it on the CPU backend
 * (global bound, local bounds, radius, lower bounds and attacks), and the check that refuses a
 * model over the limit (`LIPCERT_MAX_MEMORY_MB`) with RESOURCE_LIMIT.
 *
 * The estimate is the larger of two phases, each the sum of what can be alive in it, with a margin
 * for allocator overhead (bench/memory.ts measures it against the process's peak RSS; it must never
 * be below it). Import: the process, the ONNX bytes, their decoded tensors and the layers' copies.
 * Analysis:
 * - the process itself (Node, onnxruntime, the server's libraries);
 * - the network's weights, and the |W| copies of the certificates (certificates.ts absoluteLayer);
 * - onnxruntime sessions: each holds its weights and an arena (sessionFootprint), the cache keeps
 *   at most its budget plus the session in use;
 * - activations: the nominal pass keeps every layer's input and pre-activation, the tight method
 *   its boxes, masks and slopes, its decomposition one backward row per output (≤ 64 outputs), the
 *   searches their gradients;
 * - Lanczos (spectral.ts): basisSizeFor(n) vectors of n float64 plus the working ones, or, for a
 *   probabilistic certificate, the kwSteps(n) vectors its plain Lanczos keeps (one norm at a time:
 *   the larger of the two), and warm starts per layer;
 * - the Gram operator's float32 staging vectors.
 * Each term is counted at its largest layer (or summed over layers where every layer keeps one).
 */
import os from 'node:os';
import { DEFAULT_SESSION_BUDGET } from './backend/cpu/index.js';
import { sessionFootprint, type OrtLayer, type OrtOperation } from './backend/cpu/onnx-kernels.js';
import { DEFAULT_KW_EPSILON, kwSteps } from './bounds/certificates.js';
import { DEFAULT_DELTA } from './bounds/defaults.js';
import { basisSizeFor } from './bounds/spectral.js';
import { MAX_DECOMPOSITION_OUTPUTS } from './bounds/tight/index.js';
import { LipcertError } from './errors.js';
import { isAffine, parameterCount, type Network, size } from './model/ir.js';

const MiB = 2 ** 20;

/** RSS of a server with its libraries loaded and nothing imported (measured: ~250 MiB). */
export const PROCESS_BYTES = 400 * MiB;
/** Lanczos vectors beyond the basis: w, work, the start, the kept Ritz vectors (≤ 5), a spare. */
const LANCZOS_WORKING_VECTORS = 9;
/** Warm-start vectors per affine layer (global, local and screening solvers). */
const WARM_STARTS_PER_LAYER = 3;
/** Allocator and arena overhead on top of the sum. */
const MARGIN = 1.25;
/** Default limit: this fraction of the machine's memory. */
export const DEFAULT_MEMORY_FRACTION = 0.6;

/** What the analysis computes; the default is the most demanding the server offers. */
export interface AnalysisShape {
  certificate: 'estimate' | 'deterministic' | 'probabilistic';
  /** Failure probability of each KW certificate (more steps for smaller delta). */
  delta: number;
}
export const MOST_DEMANDING: AnalysisShape = { certificate: 'probabilistic', delta: DEFAULT_DELTA };

export interface MemoryEstimate {
  /** Estimated peak resident bytes. */
  bytes: number;
  /** The terms before the margin, in bytes. */
  parts: {
    process: number;
    /** The ONNX bytes, decoded tensors and layer copies at import (a phase of its own). */
    import: number;
    weights: number;
    sessions: number;
    activations: number;
    spectral: number;
  };
}

/** Layers onnxruntime runs on the CPU backend (cpu/index.ts ortLayer): convolutions and dense layers of ≥ 2^14 weights. */
function ortLayers(network: Network): OrtLayer[] {
  return network.layers.filter((l): l is OrtLayer => l.kind === 'conv' || (l.kind === 'dense' && l.weight.length >= 1 << 14));
}

/** Estimated peak resident memory of importing `network` from ONNX and analysing it. */
export function estimatePeakMemory(network: Network, analysis: AnalysisShape = MOST_DEMANDING): MemoryEstimate {
  const certified = analysis.certificate !== 'estimate';
  const weightBytes = 4 * parameterCount(network);
  const importing = 3 * weightBytes;
  const weights = (certified ? 2 : 1) * weightBytes;

  const ops: OrtOperation[] = ['linear', 'transpose', 'rowNormsSquared', 'gram'];
  const footprints = ortLayers(network).flatMap((layer) => ops.map((op) => sessionFootprint(layer, op)));
  const allSessions = footprints.reduce((a, b) => a + b, 0);
  const largest = Math.max(0, ...footprints);
  // The |A| layers of the certificates have sessions of their own in the same cache.
  const sessions = Math.min((certified ? 2 : 1) * allSessions, DEFAULT_SESSION_BUDGET + largest);

  const affine = network.layers.filter(isAffine);
  const inputs = network.layers.map((l) => size(l.inputShape));
  const outputs = network.layers.map((l) => size(l.outputShape));
  const sumIn = inputs.reduce((a, b) => a + b, 0);
  const sumOut = outputs.reduce((a, b) => a + b, 0);
  const classes = size(network.outputShape);
  // float32: nominal inputs and pre-activations; tight boxes (lo, hi, deviation) and per-unit state
  // (mask, slopes, spread, mid, switching); the searches' forward and backward passes.
  const perUnit = 4 * (2 * sumIn + 2 * sumOut) + 4 * (3 * sumIn + 6 * sumOut) + 4 * (2 * sumIn + 2 * sumOut);
  const decomposition = classes <= MAX_DECOMPOSITION_OUTPUTS ? 4 * classes * sumIn : 0;
  const activations = perUnit + decomposition;

  // Spectral norms act on a layer's input space: n = its input size.
  const n = Math.max(0, ...affine.map((l) => size(l.inputShape)));
  const m = Math.max(0, ...affine.map((l) => size(l.outputShape)));
  const lanczos = 8 * n * (basisSizeFor(n) + LANCZOS_WORKING_VECTORS);
  const kw = analysis.certificate === 'probabilistic' ? 8 * n * (kwSteps(n, analysis.delta, DEFAULT_KW_EPSILON) + 4) : 0;
  const warmStarts = 8 * WARM_STARTS_PER_LAYER * affine.reduce((a, l) => a + size(l.inputShape), 0);
  const staging = 4 * (4 * n + 2 * m);
  const spectral = Math.max(lanczos, kw) + warmStarts + staging;

  const parts = { process: PROCESS_BYTES, import: importing, weights, sessions, activations, spectral };
  const analysing = PROCESS_BYTES + weights + sessions + activations + spectral;
  return { bytes: Math.ceil(MARGIN * Math.max(PROCESS_BYTES + importing, analysing)), parts };
}

export interface ResourceLimits {
  /** Largest estimated peak memory of a model's analysis, bytes. */
  maxMemoryBytes: number;
}

/** DEFAULT_MEMORY_FRACTION of the machine's memory. */
export function defaultResourceLimits(totalMemory = os.totalmem()): ResourceLimits {
  return { maxMemoryBytes: Math.floor(DEFAULT_MEMORY_FRACTION * totalMemory) };
}

/** `LIPCERT_MAX_MEMORY_MB` (MiB, positive) or the default; a bad value is a LipcertError. */
export function resourceLimitsFromEnv(env: Record<string, string | undefined> = process.env, totalMemory = os.totalmem()): ResourceLimits {
  const raw = env.LIPCERT_MAX_MEMORY_MB;
  if (raw === undefined || raw.trim() === '') return defaultResourceLimits(totalMemory);
  const mb = Number(raw);
  if (!(Number.isFinite(mb) && mb > 0)) throw new LipcertError('BAD_USER_INPUT', `LIPCERT_MAX_MEMORY_MB=${raw} is not a positive number of MiB`);
  return { maxMemoryBytes: Math.floor(mb * MiB) };
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

/**
 * Refuses a network whose analysis would need more memory than the limit (RESOURCE_LIMIT, with the
 * estimate in the message); returns the estimate otherwise.
 */
export function checkResources(network: Network, limits: ResourceLimits, analysis: AnalysisShape = MOST_DEMANDING): MemoryEstimate {
  const estimate = estimatePeakMemory(network, analysis);
  if (estimate.bytes > limits.maxMemoryBytes) {
    throw new LipcertError(
      'RESOURCE_LIMIT',
      `analysing this model would take about ${gib(estimate.bytes)} of memory (largest layer input ${Math.max(0, ...network.layers.map((l) => size(l.inputShape)))} values); the limit is ${gib(limits.maxMemoryBytes)} (LIPCERT_MAX_MEMORY_MB)`,
    );
  }
  return estimate;
}
