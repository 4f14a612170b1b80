/**
 * What the tight method knows about each layer after its forward sweep (docs/tightness.md §1–§2),
 * shared by the backward passes (per-unit bounds, decomposition) that read it: the input masks, the
 * linearisation's slopes, the units that may switch and their errors, the correction terms' spreads,
 * and the half-widths of the box around each layer's nominal input.
 */
import type { Backend } from '../../backend/backend.js';
import type { Network } from '../../model/ir.js';
import type { LayerBound, SpectralNormReport } from '../types.js';
import type { LowerSlope, Relaxation } from './relaxation.js';

/** What the backward pass needs of one layer: its input mask and the linearisation's slopes. */
export interface LayerState {
  mask: Float32Array | null;
  /** Midpoint slopes (affine+ReLU and lone ReLU). */
  mid?: Float32Array;
  /** Units whose slope is uncertain (μ > 0), or unstable pooling windows. */
  unstable?: Int32Array;
  /** Affine+ReLU: λ². */
  slopeSquared?: Float32Array;
  /** Absolute error bound of each unstable unit over the ball, aligned with `unstable` (§3). */
  errors?: Float64Array;
  /** Max pool: the nominal winner of each window. */
  winner?: Int32Array;
  /** Max pool: the backward relaxation of each output (§5). */
  poolRelaxation?: PoolRelaxation;
  /** Affine layers: bounds [y̌, ŷ] of each pre-activation over the set (§1, §4, §5). */
  preActivationLower?: Float32Array;
  preActivationUpper?: Float32Array;
  /** A ReLU (after an affine map, a sum, or alone): its input's nominal value and interval over the set (§5). */
  reluInterval?: { y0: ArrayLike<number>; lower: ArrayLike<number>; upper: ArrayLike<number> };
  /** ... and its linear relaxations, by lower-slope choice (filled on first use). */
  relaxations?: Partial<Record<LowerSlope, Relaxation>>;
  /**
   * Another activation (docs/graphs.md §7): its one relaxation, the midpoint slope ± the unit's
   * linearisation error (every lower-slope choice uses it).
   */
  relaxation?: Relaxation;
}

/** What the sweep knows of one node's output (the network input is node −1). */
export interface NodeBox {
  /** Half-widths of the box around the node's nominal output. */
  deviation: Float32Array;
  /** ε·gain bounds the node's output deviation over the ball (docs/graphs.md §1; T on a chain). */
  gain: number;
  /** 0 where the output is known constant over the set (null: nothing known). */
  mask: Float32Array | null;
}

/**
 * A max pool's linear relaxation per output, in change coordinates (§5, as CROWN's): above, the
 * winner's change for a stable window, else the constant max_j û_j − u0_{i*}; below, the change of
 * the input k with the largest lower bound plus u0_k − u0_{i*} (≤ 0).
 */
export interface PoolRelaxation {
  /** NaN for a stable window (upper relaxation: the winner's change), else the constant. */
  upperConstant: Float32Array;
  lowerInput: Int32Array;
  lowerOffset: Float32Array;
}

/** m_k of §2: ||E_k (x_k − x0_k)|| ≤ spread·||x_from − x0_from||. */
export interface Spread {
  spread: number;
  /** Units (or pooling windows) that may switch. */
  unstable: number;
  /** The layer whose input difference the spread multiplies. */
  from: number;
  spectral?: SpectralNormReport;
}

/**
 * How much per-unit work the sweep does (§4, §5): 'fast' within fixed limits per layer (the bounds at
 * the user's ε), 'radius' the same without §4's decomposition bounds (the radius search and its
 * certification: at the radius's scale §5 settles what §4 would, docs/tightness.md §4), 'full' for
 * every unit that may switch or settle a max pool (the refinement stage, within a time budget).
 */
export type Refinement = 'radius' | 'fast' | 'full';

/** The forward sweep's record, filled layer by layer. */
export interface Sweep {
  network: Network;
  backend: Backend;
  eps: number;
  refinement: Refinement;
  /** performance.now() time after which per-unit work stops (BudgetExhausted); none for 'fast'. */
  deadline?: number;
  /** Each layer's report (its bound L_l among them). */
  layers: LayerBound[];
  states: LayerState[];
  /** Each correction term's spread, or how to compute it on first use (`spreadAt`). */
  spreads: Map<number, SpreadSource>;
  /**
   * Half-widths of the box around each layer's nominal combined input — what its factor multiplies:
   * the input itself, the sum of an Add's inputs, a Concat's inputs stacked — and, last, around the
   * logits.
   */
  deviation: Float32Array[];
  /**
   * ε·gainIn[t] bounds the deviation of layer t's combined input (docs/graphs.md §1; on a chain the
   * product T_t = Π_{l<t} L_l); last, the network's bound from its input to its output.
   */
  gainIn: number[];
  /** Each node's output, at index j + 1 (0: the network input): see `nodeOf`. */
  nodes: NodeBox[];
  /** ‖deviation[t]‖, filled on first use. */
  boxNorms?: number[];
  /** Every norm the bound used (for its quality and failure probability). */
  reports: SpectralNormReport[];
  /**
   * The buffer the backward passes write the rows they hand to the backend's Aᵀ into (relaxation.ts,
   * backward.ts), shared by the sweeps cut or branched from this one (their passes run one at a time).
   */
  scratch: RowScratch;
  /**
   * Units that may switch (or settle a max pool) the sweep's work limits left without per-unit
   * bounds (§4, §5): 0 when a 'full' sweep would bound nothing more.
   */
  unitsLeft: number;
}

/**
 * A reusable block of rows. A fresh typed array of megabytes costs a page fault per 4 KiB on first
 * touch (2-core AMD EPYC VM: a new 10 MB Float32Array written once, 17 ns per entry against 1.5 ns
 * for a reused one), and the scaled rows (the relaxation's, §5, and the linearisation's, §2 and §4)
 * were one fresh block per layer of every pass:
 * reusing one buffer for them makes CIFAR-10's full sweep about 4% faster and MNIST's default path
 * about 5% (alternating runs, 2026-12-03), every bound the same to the bit. Safe because a block
 * written here goes straight into one backend call, which reads it before its promise resolves
 * (Backend.applyATBlock), and a sweep's passes run one after another.
 */
export interface RowScratch {
  block: Float32Array | null;
}

/** The first `length` entries of the sweep's scratch block (grown as needed), to be overwritten entirely. */
export function scratchRows(scratch: RowScratch, length: number): Float32Array {
  if (!scratch.block || scratch.block.length < length) scratch.block = new Float32Array(length);
  return scratch.block.subarray(0, length);
}

/**
 * A spread, or a function computing it: a spread that needs a norm is computed only when a bound
 * uses it (on networks with many outputs, only the per-unit bounds of §4 do), so only norms that
 * enter a reported number are computed, and only they count toward its failure probability.
 */
export type SpreadSource = Spread | (() => Promise<Spread>);

/** The spread of layer k's correction term (computed now if it was deferred), or undefined. */
export async function spreadAt(sweep: Sweep, k: number): Promise<Spread | undefined> {
  const source = sweep.spreads.get(k);
  if (typeof source !== 'function') return source;
  const spread = await source();
  if (spread.spectral) sweep.reports.push(spread.spectral);
  sweep.spreads.set(k, spread);
  return spread;
}

/** What the sweep knows of node j's output (j = −1: the network input). */
export function nodeOf(sweep: Sweep, j: number): NodeBox {
  return sweep.nodes[j + 1];
}

export function euclidean(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

/** ‖deviation[t]‖: the norm of layer t's combined input box (computed once per sweep and layer). */
export function boxNorm(sweep: Sweep, t: number): number {
  sweep.boxNorms ??= [];
  return (sweep.boxNorms[t] ??= euclidean(sweep.deviation[t]));
}

/**
 * For each of `count` rows g (row-major block), the smaller of two bounds of |gᵀw| over the
 * deviations w at a layer's input (§4): the ball, ‖g‖·ballRadius, and the box, Σ|g_i|·dev_i.
 */
export function ballOrBox(block: Float32Array, count: number, ballRadius: number, dev: Float32Array): Float64Array {
  const width = block.length / count;
  const out = new Float64Array(count);
  for (let b = 0; b < count; b++) {
    let n2 = 0;
    let boxed = 0;
    const base = b * width;
    for (let i = 0; i < width; i++) {
      const v = block[base + i];
      n2 += v * v;
      boxed += (v < 0 ? -v : v) * dev[i]; // not Math.abs: under Jest's module sandbox it is not inlined (7x slower suites)
    }
    out[b] = Math.min(Math.sqrt(n2) * ballRadius, boxed);
  }
  return out;
}
