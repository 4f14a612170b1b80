/**
 * The 'tight' local bound: Algorithm 1 of Avant & Morgansen with sound refinements, each argued in
 * docs/tightness.md:
 * 1. pre-activation bounds ŷ = min(paper's y0 + ε_l·r, interval bound from the input box), matching
 *    lower bounds y̌, and per-unit linear bounds for units that may still switch (§1, §4), so more
 *    neurons get λ = 0 and more of D is zero (forward.ts);
 * 2. a decomposition around the network's linearisation N at x0: f(x) − f(x0) = (Π N + Σ_k N_{>k} E_k
 *    Π_{<k} G) Δ, where only neurons that may switch contribute an error term E_k (§2, decomposition.ts);
 * 3. margin-specific bounds of each logit difference y_c − y_j for the certified radius (§3).
 * The result is min(product of the sharpened layer bounds, decomposition bound).
 */
import type { Backend } from '../../backend/backend.js';
import { inputsOf, isAffine, type Network, size } from '../../model/ir.js';
import { combineRadii } from '../graph-recursion.js';
import { RELU } from '../../model/activations.js';
import type { NominalPass } from '../layer-bounds.js';
import { type NormSolver, worstQuality } from '../norms.js';
import type { NetworkBound } from '../types.js';
import { type CorrectionTerm, decompose, MAX_DECOMPOSITION_OUTPUTS } from './decomposition.js';
import { activationStep, addStep, affineStep, combinedPosition, maxPoolStep, passStep, type Position } from './forward.js';
import { LOWER_SLOPES, relaxedChangeSplit } from './relaxation.js';
import { nodeOf, type Refinement, type Sweep } from './sweep.js';

export { slopeInterval, linearisationError } from './slopes.js';
export { type CorrectionTerm, MAX_DECOMPOSITION_OUTPUTS } from './decomposition.js';
export { LINEARISED_WORK_BUDGET, MAX_LINEARISED_UNITS } from './forward.js';
export { relaxedChangeBounds } from './relaxation.js';
export type { Refinement, Sweep } from './sweep.js';

export interface TightOptions {
  /** 'fast' (default) or 'full' per-unit work (sweep.ts). */
  refinement?: Refinement;
  /** With 'full': performance.now() time after which the sweep stops with BudgetExhausted. */
  deadline?: number;
}

export interface MarginFallScaling {
  /** The radius the sweep was run at. */
  eps: number;
  floor: number[];
  offset: number[][];
  slope: number[][];
}

export interface TightBound extends NetworkBound {
  /** Π_l L_l with the sharpened slopes and masks. */
  productBound: number;
  /**
   * min over split layers t of ||N_{≥t} D_t||·Π_{l<t} L_l + Σ_{k≥t} sensitivity·spread·before
   * (refinement 2; t = 0 linearises the whole network); absent for networks with many outputs.
   */
  decompositionBound?: number;
  corrections: CorrectionTerm[];
  /** Per class j: an upper bound of |Δ(y_c − y_j)| / ||Δ|| over the ball (0 for j = c). */
  marginBounds: number[];
  /**
   * Per class j: an upper bound of |Δ(y_c − y_j)| over the ball of radius ε itself (not a ratio),
   * from the absolute linearisation errors (§3); for the radius only.
   */
  marginChange?: number[];
  /**
   * Per class j: an upper bound of how far y_c − y_j can fall over the ball of radius ε (the
   * backward relaxation of §5); for the radius only, and absent for networks with many outputs.
   */
  marginDecrease?: number[];
  /**
   * marginDecrease on the balls of radius ε' ≤ eps (§8): per class j, the fall is at most
   * max(0, min(floor_j, min_g offset_g,j + (ε'/eps)·slope_g,j)) over the lower-slope choices g.
   */
  marginFallScaling?: MarginFallScaling;
  /** The class c that marginBounds refer to. */
  marginClass: number;
  /** Units the sweep's work limits left without per-unit bounds (0: a 'full' sweep would give this same bound). */
  unitsLeft: number;
}

/**
 * The forward sweep of the tight method at radius ε (§1, §4, §5): every layer's bound, state and
 * box, ready for the backward passes.
 */
export async function tightSweep(
  network: Network,
  backend: Backend,
  nominal: NominalPass,
  eps: number,
  solver: NormSolver,
  onLayer?: (index: number) => void,
  options: TightOptions = {},
): Promise<Sweep> {
  const sweep: Sweep = { network, backend, eps, refinement: options.refinement ?? 'fast', deadline: options.deadline, layers: [], states: [], spreads: new Map(), deviation: [], gainIn: [], nodes: [], reports: [], unitsLeft: 0, scratch: { block: null } };
  // The network input's interval: the box x0 ± ε (it contains the ℓ2 ball). Layer 0 reads only it.
  const x0 = nominal.inputs[0].subarray(0, size(network.inputShape));
  const input: Position = { lo: Float32Array.from(x0, (v) => v - eps), hi: Float32Array.from(x0, (v) => v + eps), mask: null, epsIn: eps };
  const halfWidths = (position: Position, nominalValue: ArrayLike<number>) => {
    const widths = new Float32Array(nominalValue.length);
    for (let i = 0; i < widths.length; i++) widths[i] = Math.max(position.hi[i] - nominalValue[i], nominalValue[i] - position.lo[i], 0);
    return widths;
  };
  sweep.nodes.push({ deviation: halfWidths(input, x0), gain: 1, mask: null });
  const outputs: Position[] = []; // each layer's output interval, mask and radius
  for (const [index, layer] of network.layers.entries()) {
    onLayer?.(index);
    const from = inputsOf(network, index);
    const reads = from.map((j) => (j < 0 ? input : outputs[j]));
    // What the layer reads, its box around the nominal value and its gain (docs/graphs.md §1, §7).
    const position = reads.length === 1 ? reads[0] : combinedPosition(layer, reads);
    sweep.gainIn.push(combineRadii(layer, from.map((j) => nodeOf(sweep, j).gain)));
    sweep.deviation.push(reads.length === 1 ? nodeOf(sweep, from[0]).deviation : halfWidths(position, layer.kind === 'add' ? nominal.preActivations[index]! : nominal.inputs[index]));
    let next: Position;
    if (isAffine(layer)) next = await affineStep(sweep, solver, nominal, index, layer, position);
    else if (layer.kind === 'maxpool') next = await maxPoolStep(sweep, solver, nominal, index, layer, position);
    else if (layer.kind === 'relu') next = activationStep(sweep, nominal, index, layer, position, RELU);
    else if (layer.kind === 'activation') next = activationStep(sweep, nominal, index, layer, position, layer.activation);
    else if (layer.kind === 'add') next = await addStep(sweep, nominal, index, layer, position, reads);
    else next = passStep(sweep, index, layer, position); // flatten, concat
    outputs.push(next);
    sweep.nodes.push({ deviation: halfWidths(next, nominal.outputs[index]), gain: sweep.layers[index].bound * sweep.gainIn[index], mask: next.mask });
  }
  const last = nodeOf(sweep, network.layers.length - 1);
  sweep.deviation.push(last.deviation);
  sweep.gainIn.push(last.gain);
  return sweep;
}

/**
 * The tight local bound at radius ε for class `cls` (the margins refer to it).
 * `solver` gives ||Λ A D|| (estimates or certificates); its keys are 'tight:<layer>'.
 */
export async function tightLocalBound(...args: Parameters<typeof tightBoundAndSweep>): Promise<TightBound> {
  return (await tightBoundAndSweep(...args)).bound;
}

/** The tight local bound (tightLocalBound) with the sweep it rests on (branching.ts splits it). */
export async function tightBoundAndSweep(
  network: Network,
  backend: Backend,
  nominal: NominalPass,
  eps: number,
  solver: NormSolver,
  cls: number,
  onLayer?: (index: number) => void,
  options: TightOptions = {},
): Promise<{ bound: TightBound; sweep: Sweep }> {
  const start = performance.now();
  const sweep = await tightSweep(network, backend, nominal, eps, solver, onLayer, options);
  const layers = sweep.layers;
  // Π_l L_l on a chain; on a DAG the recursion of docs/graphs.md §1 (the last layer's gain).
  const productBound = sweep.gainIn[layers.length];

  const outputs = size(network.outputShape);
  const marginBounds = new Array<number>(outputs).fill(Infinity);
  marginBounds[cls] = 0;
  // Refinement 3, simple form: |Δ(y_c − y_j)| ≤ ||(a_c − a_j)ᵀ D_L||·T_L for a last affine layer,
  // T_L = Π_{l<L} L_l the bound of its input's change (before[L − 1]; the last layer's own norm is
  // not part of it: the row a_c − a_j already is that layer; docs/soundness.md §2). On a DAG, T_L
  // is the gain of what the last layer reads (docs/graphs.md §7).
  const lastIndex = network.layers.length - 1;
  const last = network.layers[lastIndex];
  if (isAffine(last) && !last.relu && !last.activation) {
    const lastMask = sweep.states[lastIndex].mask;
    const differences = new Float32Array((outputs - 1) * outputs);
    const others = Array.from({ length: outputs }, (_, j) => j).filter((j) => j !== cls);
    others.forEach((j, b) => {
      differences[b * outputs + cls] = 1;
      differences[b * outputs + j] = -1;
    });
    const rows = await backend.applyATBlock(last, differences, others.length);
    const width = size(last.inputShape);
    others.forEach((j, b) => {
      let s = 0;
      for (let i = 0; i < width; i++) if (!lastMask || lastMask[i] !== 0) s += rows[b * width + i] ** 2;
      marginBounds[j] = Math.sqrt(s) * sweep.gainIn[lastIndex];
    });
  }

  // §5: how far each y_c − y_j can fall over the ball, by the backward relaxation from the output:
  // one row per other class through the whole network, so only for networks with few outputs (as
  // the decomposition); with many, the radius rests on the simple form above.
  let marginDecrease: number[] | undefined;
  let marginFallScaling: MarginFallScaling | undefined;
  if (outputs <= MAX_DECOMPOSITION_OUTPUTS) {
    ({ falls: marginDecrease, scaling: marginFallScaling } = await marginFallsSplit(sweep, cls));
  }

  let decompositionBound: number | undefined;
  let marginChange: number[] | undefined;
  let corrections: CorrectionTerm[] = [];
  if (outputs <= MAX_DECOMPOSITION_OUTPUTS) {
    const decomposition = await decompose(sweep, cls);
    decompositionBound = decomposition.bound;
    corrections = decomposition.corrections;
    marginChange = decomposition.marginChange;
    for (let j = 0; j < outputs; j++) {
      marginBounds[j] = Math.min(marginBounds[j], decomposition.marginBounds[j]);
      marginChange[j] = Math.min(marginChange[j], eps * marginBounds[j]);
    }
  }

  const quality = worstQuality([...layers.map((l) => l.quality), ...sweep.reports.map((r) => r.quality)]);
  const failureProbability = quality === 'estimate' ? undefined : sweep.reports.reduce((a, r) => a + (r.failureProbability ?? 0), 0);
  const bound: TightBound = {
    bound: Math.min(productBound, decompositionBound ?? Infinity),
    quality,
    layers,
    seconds: (performance.now() - start) / 1000,
    method: 'tight',
    failureProbability,
    productBound,
    decompositionBound,
    corrections,
    marginBounds,
    marginChange,
    marginDecrease,
    marginFallScaling,
    marginClass: cls,
    unitsLeft: sweep.unitsLeft,
  };
  return { bound, sweep };
}

/**
 * §5: for each class j, an upper bound of how far y_c − y_j can fall over the sweep's set (0 at j = c):
 * the backward relaxation from the output, one row per other class, every lower-slope choice in one
 * pass (each gives a valid bound: the smallest per class is kept).
 */
export async function marginFalls(sweep: Sweep, cls: number): Promise<number[]> {
  return (await marginFallsSplit(sweep, cls)).falls;
}

/** marginFalls with what of them holds on smaller balls (§8). */
async function marginFallsSplit(sweep: Sweep, cls: number): Promise<{ falls: number[]; scaling: MarginFallScaling }> {
  const outputs = size(sweep.network.outputShape);
  const others = Array.from({ length: outputs }, (_, j) => j).filter((j) => j !== cls);
  const decreases = new Float32Array(others.length * outputs);
  others.forEach((j, b) => {
    decreases[b * outputs + cls] = -1;
    decreases[b * outputs + j] = 1;
  });
  const falls = new Array<number>(outputs).fill(Infinity);
  falls[cls] = 0;
  const scaling: MarginFallScaling = { eps: sweep.eps, floor: new Array<number>(outputs).fill(Infinity), offset: [], slope: [] };
  for (let j = 0; j < outputs; j++) {
    scaling.offset.push([]);
    scaling.slope.push([]);
  }
  scaling.floor[cls] = 0;
  const fall = await relaxedChangeSplit(sweep, sweep.network.layers.length, decreases, others.length, null, LOWER_SLOPES);
  LOWER_SLOPES.forEach((_, g) =>
    others.forEach((j, b) => {
      const row = g * others.length + b;
      falls[j] = Math.min(falls[j], Math.max(0, fall.best[row]));
      scaling.floor[j] = Math.min(scaling.floor[j], fall.floor[row]);
      if (!Number.isNaN(fall.inputOffset[row])) {
        scaling.offset[j].push(fall.inputOffset[row]);
        scaling.slope[j].push(fall.inputClosure[row]);
      }
    }),
  );
  return { falls, scaling };
}

/**
 * max_j (bound on how far y_c − y_j can fall over the ε-ball)/δ_j: below 1 iff ε is certified
 * (§3, §5). `gaps[j]` is a lower bound of the exact δ_j = y_c − y_j at x0 (rounding.ts).
 */
export function marginRatio(bound: TightBound, gaps: ArrayLike<number>, eps: number): number {
  return Math.max(0, ...marginRatios(bound, gaps, eps));
}

/** Each class's ratio of marginRatio (0 at the class c itself). */
export function marginRatios(bound: TightBound, gaps: ArrayLike<number>, eps: number): number[] {
  return ratiosToGaps(bound, marginChangesWithin(bound, eps, eps), gaps);
}

/** Each class's bounded change over its gap (0 at the class c itself). */
function ratiosToGaps(bound: TightBound, changes: number[], gaps: ArrayLike<number>): number[] {
  return Array.from(gaps, (gap, j) => (j === bound.marginClass ? 0 : gap > 0 ? changes[j] / gap : Infinity));
}

/**
 * Per class j, an upper bound of how far y_c − y_j can fall over the ball of radius ε' ≤ ε, from a
 * bound computed on the ε-ball (§8): every bound of the ε-ball holds on the smaller one; the
 * Lipschitz form ε'·marginBounds and the §5 falls' input closure shrink with it, the rest stands.
 */
export function marginChangesWithin(bound: TightBound, eps: number, within: number): number[] {
  if (!(within <= eps)) throw new Error(`marginChangesWithin: radius ${within} beyond the bound's ${eps}`);
  const scaling = bound.marginFallScaling;
  const scale = within / eps;
  return bound.marginBounds.map((lipschitz, j) => {
    if (j === bound.marginClass) return 0;
    let fall = Math.min(bound.marginChange?.[j] ?? Infinity, bound.marginDecrease?.[j] ?? Infinity);
    if (scaling) {
      let line = scaling.floor[j];
      scaling.offset[j].forEach((o, g) => (line = Math.min(line, o + scale * scaling.slope[j][g])));
      fall = Math.min(fall, Math.max(0, line));
    }
    return Math.min(Number.isFinite(lipschitz) ? within * lipschitz : Infinity, fall);
  });
}

/** marginRatio on the ball of radius ε' ≤ ε from a bound computed on the ε-ball (§8). */
export function marginRatioWithin(bound: TightBound, gaps: ArrayLike<number>, eps: number, within: number): number {
  return Math.max(0, ...ratiosToGaps(bound, marginChangesWithin(bound, eps, within), gaps));
}

/**
 * The largest ε' ≤ ε that a bound computed on the ε-ball certifies (marginRatioWithin below 1;
 * 0 if none, ε itself where marginRatio passes at ε). Per class the ratio is a minimum of terms
 * non-decreasing in ε', so ε' passes iff one term is below the gap: the class's limit is the
 * largest of the terms' own limits.
 */
export function certifiedWithin(bound: TightBound, gaps: ArrayLike<number>, eps: number): number {
  if (marginRatio(bound, gaps, eps) < 1) return eps;
  const scaling = bound.marginFallScaling;
  let limit = eps;
  for (let j = 0; j < gaps.length && limit > 0; j++) {
    if (j === bound.marginClass) continue;
    const gap = gaps[j];
    if (!(gap > 0)) return 0;
    const constant = Math.min(bound.marginChange?.[j] ?? Infinity, bound.marginDecrease?.[j] ?? Infinity, scaling ? Math.max(0, scaling.floor[j]) : Infinity);
    if (constant < gap) continue; // holds on every smaller ball
    let own = bound.marginBounds[j] > 0 ? gap / bound.marginBounds[j] : Infinity;
    if (scaling) {
      scaling.offset[j].forEach((o, g) => {
        const slope = scaling.slope[j][g];
        if (o < gap) own = Math.max(own, slope > 0 ? (eps * (gap - o)) / slope : Infinity);
      });
    }
    limit = Math.min(limit, own);
  }
  // The limits are where a term reaches the gap (strict inequality needed): step inside, and check.
  for (let candidate = limit * (1 - 1e-6), tries = 0; candidate > 0 && tries < 8; candidate *= 1 - 1e-4, tries++) {
    if (marginRatioWithin(bound, gaps, eps, candidate) < 1) return candidate;
  }
  return 0;
}
