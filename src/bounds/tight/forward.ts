/**
 * The tight method's forward sweep (docs/tightness.md §1, §2, §4), one step per layer of the DAG
 * (docs/graphs.md §7): the interval of the activations (the input box x0 ± ε, propagated; it
 * contains the ℓ2 ball) intersected with the paper's ball bound y0 ± ε_l·r, sharpened for units
 * that may still switch by per-unit linear bounds (§4, one block backward pass for all of a layer's
 * units); then the slope intervals, the layer bound ||Λ A D|| (Theorem 2 with the sharper λ and D),
 * the spread of the correction term, and the state the backward passes need. A layer reading
 * several nodes sees their combination (`combinedPosition`): an Add the sum of their boxes and of
 * their radii, a Concat the boxes stacked and the radii's root-sum-of-squares.
 */
import type { NominalPass } from '../layer-bounds.js';
import { maxPoolLipschitz, maxPoolOverlap } from '../layer-bounds.js';
import { absoluteLayer } from '../certificates.js';
import { affineNorm, type NormSolver } from '../norms.js';
import { invariant } from '../../errors.js';
import { type AffineLayer, type AddLayer, inputsOf, isAffine, type Layer, type MaxPoolLayer, size, stack } from '../../model/ir.js';
import { type AnyActivation, RELU, scalarActivations } from '../../model/activations.js';
import { poolWindows } from '../../model/pool-geometry.js';
import { baseReport as layerReport, readMask } from '../layer-bounds.js';
import { combineRadii } from '../graph-recursion.js';
import { prefixChangeBounds } from './backward.js';
import { imageInterval, linearisationError, mayBend, slopeLower, slopeUpper, unitLinearisationError, unitSlopeInterval } from './slopes.js';
import { linearisedRelaxation, relaxedChangeBounds } from './relaxation.js';
import { checkBudget } from '../budget.js';
import { CROPS, cropIndex, cropMap, cropSweep, croppable, tilePlan, uncropRows } from './crop.js';
import type { LayerState, PoolRelaxation, Sweep } from './sweep.js';

/**
 * In 'fast' sweeps, per-unit linear bounds (§4, §5) are computed for the units that may switch in a
 * layer when there are at most this many of them ...
 */
export const MAX_LINEARISED_UNITS = 256;
/** ... and while units × (activations before the layer) stays below this: each unit costs a backward pass. */
export const LINEARISED_WORK_BUDGET = 1e7;
/**
 * ... and for the units of unsettled max-pool windows, while units × (activations before the layer)
 * stays below this. Measured (docs/tightness.md §6): at 1e7 these bounds took 45 of 51 s of the
 * CIFAR-10 fixture's radius search and 10 of 13 s of a Fashion-MNIST image's without changing either
 * radius; MNIST's (under 2e4) move its radius by 3%. The refinement stage ('full') bounds them all.
 */
export const SETTLE_WORK_BUDGET = 1e6;
/** Rows per block backward pass (bounds the block's memory: rows × the widest layer before it). */
const BLOCK_ENTRIES = 1 << 22;

/**
 * The units feeding a max pool through their ReLU whose bounds decide an unsettled window: every
 * unit that can be positive in a window where another input can overtake the nominal winner.
 */
function unsettledPoolUnits(pool: MaxPoolLayer, y0: ArrayLike<number>, yCheck: ArrayLike<number>, yHat: ArrayLike<number>): number[] {
  const units = new Set<number>();
  for (const members of poolWindows(pool)) {
    let best = -1;
    for (let m = 0; m < members.length; m++) if (best < 0 || y0[members[m]] > y0[best]) best = members[m];
    if (best < 0) continue;
    const floor = Math.max(0, yCheck[best]);
    if (members.some((i) => i !== best && Math.max(0, yHat[i]) > floor)) for (let m = 0; m < members.length; m++) if (yHat[members[m]] > 0) units.add(members[m]);
  }
  return [...units].sort((a, b) => a - b);
}

/** Relative widening of interval bounds for float32 rounding in the backend's convolutions. */
const ROUNDING_MARGIN = 1e-4;

/** The interval [lo, hi] of the current activations and the ball's mask and radius at this layer. */
export interface Position {
  lo: Float32Array;
  hi: Float32Array;
  mask: Float32Array | null;
  epsIn: number;
}

function baseReport(sweep: Sweep, layer: Layer, index: number, position: Position) {
  const activeInputs = position.mask ? position.mask.reduce((a, v) => a + (v !== 0 ? 1 : 0), 0) : size(layer.inputShape);
  return { ...layerReport(sweep.network, index, layer), epsIn: position.epsIn, activeInputs };
}

/** Relative widening of a sum of float32 interval ends (each float32 addition rounds by 2^−24). */
const SUM_ROUNDING = 1e-6;

/**
 * What a layer reading several nodes sees (docs/graphs.md §1, §2, §7): for an Add, the sum of the
 * inputs' boxes (widened for float32 rounding), the sum of their radii, and the mask that is 0 only
 * where every input is constant; for a Concat, the boxes and masks stacked and the radii's
 * root-sum-of-squares.
 */
export function combinedPosition(layer: Layer, reads: Position[]): Position {
  const epsIn = combineRadii(layer, reads.map((p) => p.epsIn));
  const mask = readMask(layer, reads.map((p) => p.mask), reads.map((p) => p.lo.length));
  if (layer.kind === 'concat') {
    const make = (n: number) => new Float32Array(n);
    return { lo: stack(reads.map((p) => p.lo), make), hi: stack(reads.map((p) => p.hi), make), mask, epsIn };
  }
  const n = reads[0].lo.length;
  const lo = new Float32Array(n);
  const hi = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let l = 0;
    let h = 0;
    let magnitude = 0;
    for (const p of reads) {
      l += p.lo[i];
      h += p.hi[i];
      magnitude += Math.max(Math.abs(p.lo[i]), Math.abs(p.hi[i]));
    }
    lo[i] = l - SUM_ROUNDING * magnitude;
    hi[i] = h + SUM_ROUNDING * magnitude;
  }
  return { lo, hi, mask, epsIn };
}

/**
 * §5 for the given units of layer `index`'s pre-activation (an affine map's output or an Add's sum),
 * one block backward pass per chunk of units: yields each chunk with its rows at the layer's combined
 * input (`rows()`: Aᵀ of the unit rows for an affine layer `affine`, the unit rows themselves for an
 * Add) and the relaxation's upper bounds of +Δy_i (`relaxed[b]`) and −Δy_i (`relaxed[chunk.length + b]`).
 * The units of a convolution in a spatial chain go a tile of positions at a time through the sweep cut
 * to the tile's receptive field (crop.ts: the same bounds, on a fraction of the entries).
 * checkBudget(sweep.deadline) per chunk. The forward sweep (refineUnits) and a branch of it
 * (branching.ts) use it.
 */
export async function* relaxedUnitBlocks(
  sweep: Sweep,
  index: number,
  units: number[],
  m: number,
  affine: AffineLayer | null,
  mask: Float32Array | null,
): AsyncGenerator<{ chunk: number[]; rows: () => Float32Array; relaxed: Float64Array }> {
  const { backend, network } = sweep;
  const inputShape = network.layers[index].inputShape;
  const outputShape = network.layers[index].outputShape;
  // The sweep the passes run on, with its units, the map from a unit to its row and back to the full
  // input: the whole sweep, or (crops) the sweep cut to each tile's receptive field in turn.
  type Group = { on: Sweep; units: number[]; affine: AffineLayer | null; mask: Float32Array | null; m: number; at: (i: number) => number; full: (rows: Float32Array, count: number) => Float32Array };
  function* groups(): Generator<Group> {
    if (!(affine && CROPS.enabled && backend.name === 'cpu' && croppable(network, index))) {
      yield { on: sweep, units, affine, mask, m, at: (i) => i, full: (rows) => rows };
      return;
    }
    for (const { tile, units: inTile } of tilePlan(network, index, units)) {
      const cut = cropSweep(sweep, index, tile);
      const layer = cut.sweep.network.layers[index] as AffineLayer;
      yield {
        on: cut.sweep,
        units: inTile,
        affine: layer,
        mask: mask ? cropMap(mask, inputShape, cut.inputWindow) : null,
        m: size(layer.outputShape),
        at: (i) => cropIndex(i, outputShape, tile),
        full: (rows, count) => uncropRows(rows, count, inputShape, cut.inputWindow),
      };
    }
  }
  for (const group of groups()) {
    const widest = Math.max(...group.on.network.layers.slice(0, index + 1).map((l) => size(l.inputShape)));
    const perBlock = Math.max(1, Math.floor(BLOCK_ENTRIES / Math.max(widest, group.m)));
    for (let start = 0; start < group.units.length; start += perBlock) {
      checkBudget(sweep.deadline);
      const chunk = group.units.slice(start, start + perBlock);
      const unit = new Float32Array(chunk.length * group.m);
      chunk.forEach((i, b) => (unit[b * group.m + group.at(i)] = 1));
      const rows = group.affine ? await backend.applyATBlock(group.affine, unit, chunk.length) : unit;
      // The upper bounds of +Δy_i and −Δy_i, in one block.
      const both = new Float32Array(2 * rows.length);
      both.set(rows);
      for (let i = 0; i < rows.length; i++) both[rows.length + i] = -rows[i];
      const relaxed = await relaxedChangeBounds(group.on, index, both, 2 * chunk.length, group.mask);
      yield { chunk, rows: () => group.full(rows, chunk.length), relaxed };
    }
  }
}

/**
 * §4, §5: per-unit linear bounds from x0 for the given units of layer `index`'s pre-activation
 * (relaxedUnitBlocks), and the decomposition's bound for those the relaxation leaves bending.
 */
async function refineUnits(
  sweep: Sweep,
  index: number,
  units: number[],
  y0: ArrayLike<number>,
  yHat: Float32Array,
  yCheck: Float32Array,
  affine: AffineLayer | null,
  mask: Float32Array | null,
  /** With the decomposition's bound too (§4), for the units the relaxation leaves bending; null: relaxation only. */
  bends: ((i: number) => boolean) | null,
): Promise<void> {
  for await (const { chunk, rows: rowsOf, relaxed } of relaxedUnitBlocks(sweep, index, units, yHat.length, affine, mask)) {
    chunk.forEach((i, b) => {
      yHat[i] = Math.max(y0[i], Math.min(yHat[i], y0[i] + relaxed[b]));
      yCheck[i] = Math.min(y0[i], Math.max(yCheck[i], y0[i] - relaxed[chunk.length + b]));
    });
    if (!bends) continue;
    // §4: the decomposition's bound |Δy_i| ≤ ρ_i, for the units still bending: a unit the relaxation
    // has settled keeps its slope (0 or 1) and error (0) whatever ρ_i is. Measured: the fixtures'
    // bounds at ε = 0.001, 0.01, 0.1 and radii are the same to the last digit, 6–7% faster; ρ itself
    // matters (CIFAR-10's bound at ε = 0.001 is 2% looser without it).
    const open = chunk.map((i, b) => [i, b]).filter(([i]) => bends(i));
    if (open.length === 0) continue;
    const rows = rowsOf();
    const width = rows.length / chunk.length;
    const subset = new Float32Array(open.length * width);
    open.forEach(([, b], k) => subset.set(rows.subarray(b * width, (b + 1) * width), k * width));
    const rho = await prefixChangeBounds(sweep, index, subset, open.length, mask);
    open.forEach(([i], k) => {
      yHat[i] = Math.max(y0[i], Math.min(yHat[i], y0[i] + rho[k]));
      yCheck[i] = Math.min(y0[i], Math.max(yCheck[i], y0[i] - rho[k]));
    });
  }
}

/** Whether unit i's current range [y̌_i, ŷ_i] has a kink inside (it may switch pieces): ReLU's y̌ < 0 < ŷ. */
function bendsNow(activation: AnyActivation | null, shape: number[], yCheck: Float32Array, yHat: Float32Array): (i: number) => boolean {
  if (!activation) return () => false;
  if (activation.kind === 'relu') return (i) => yHat[i] > 0 && yCheck[i] < 0;
  const unit = scalarActivations(activation, shape);
  return (i) => mayBend(unit(i), yCheck[i], yHat[i]);
}

/**
 * Pre-activation bounds [y̌, ŷ] ∋ y0 over the set (§1, sharpened by §4) of an affine layer or an
 * Add: the box (`box`) meets the ball y0 ± ρ_i (`ballRadius`); then per-unit linear bounds for the
 * units that may switch, and before a max pool for those of unsettled windows, within the sweep's
 * work limits.
 */
async function preActivationBounds(
  sweep: Sweep,
  index: number,
  layer: AffineLayer | AddLayer,
  y0: Float32Array,
  box: { lo: ArrayLike<number>; hi: ArrayLike<number> },
  ballRadius: (i: number) => number,
  position: Position,
  /** The affine map whose output the bounds are of (null: an Add's sum). */
  affine: AffineLayer | null,
) {
  const m = y0.length;
  const yHat = new Float32Array(m);
  const yCheck = new Float32Array(m);
  for (let i = 0; i < m; i++) {
    const r = ballRadius(i);
    yHat[i] = Math.max(y0[i], Math.min(y0[i] + r, box.hi[i]));
    yCheck[i] = Math.min(y0[i], Math.max(y0[i] - r, box.lo[i]));
    if (r === 0) yHat[i] = yCheck[i] = y0[i]; // constant over the set
  }
  const { network } = sweep;
  const activation = layer.relu ? RELU : (layer.activation ?? null);
  const readsComputed = inputsOf(network, index).some((j) => j >= 0);
  const bends = bendsNow(activation, layer.outputShape, yCheck, yHat);
  const switching = readsComputed ? Array.from(yHat.keys()).filter(bends) : [];
  const next = network.layers[index + 1];
  const poolCritical = layer.relu && readsComputed && next?.kind === 'maxpool' && inputsOf(network, index + 1)[0] === index ? unsettledPoolUnits(next, y0, yCheck, yHat) : [];
  const before = network.layers.slice(0, index).reduce((a, l) => a + size(l.inputShape), 0);
  const full = sweep.refinement === 'full';
  const affordable = (units: number) => full || (units <= MAX_LINEARISED_UNITS && units * before <= LINEARISED_WORK_BUDGET);
  if (switching.length > 0 && affordable(switching.length)) await refineUnits(sweep, index, switching, y0, yHat, yCheck, affine, position.mask, sweep.refinement === 'fast' ? bends : null);
  else sweep.unitsLeft += switching.length;
  const switchingSet = new Set(switching);
  const settle = poolCritical.filter((i) => !switchingSet.has(i));
  if (settle.length > 0 && (full || settle.length * before <= SETTLE_WORK_BUDGET)) await refineUnits(sweep, index, settle, y0, yHat, yCheck, affine, position.mask, null);
  else sweep.unitsLeft += settle.length;
  return { yHat, yCheck };
}

/** The interval bound of an affine layer: centre c, half-width h → A c + b ± (|A| h + margin·|A|(|c| + h)). */
async function affineInterval(sweep: Sweep, layer: AffineLayer, position: Position) {
  const { backend } = sweep;
  const { lo, hi } = position;
  const centre = new Float32Array(lo.length);
  const half = new Float32Array(lo.length);
  const magnitude = new Float32Array(lo.length);
  for (let i = 0; i < lo.length; i++) {
    centre[i] = (lo[i] + hi[i]) / 2;
    half[i] = (hi[i] - lo[i]) / 2;
    magnitude[i] = Math.abs(centre[i]) + half[i];
  }
  const abs = absoluteLayer(layer);
  const yc = await backend.forward(layer, centre);
  const yr = await backend.applyA(abs, half);
  const ym = await backend.applyA(abs, magnitude);
  const boxLo = new Float32Array(yc.length);
  const boxHi = new Float32Array(yc.length);
  for (let i = 0; i < yc.length; i++) {
    const width = yr[i] + ROUNDING_MARGIN * ym[i];
    boxLo[i] = yc[i] - width;
    boxHi[i] = yc[i] + width;
  }
  return { lo: boxLo, hi: boxHi };
}

/**
 * An activation over pre-activations [y̌, ŷ] ∋ y0 (after an affine map or a sum, or alone): the
 * slope intervals (Theorem 1 generalised, §1), midpoints, units that may switch with their
 * linearisation errors (§2, §3), λ², the next mask and box, and the state of the backward passes
 * (a ReLU's interval for its relaxation, another activation's one relaxation). `constant(i)`: the
 * unit's input is known constant over the set.
 */
function activationUnits(activation: AnyActivation, shape: number[], y0: ArrayLike<number>, yCheck: ArrayLike<number>, yHat: ArrayLike<number>, constant: (i: number) => boolean) {
  const n = y0.length;
  const slopeSquared = new Float32Array(n);
  const spreadSquared = new Float32Array(n);
  const mid = new Float32Array(n);
  const nextMask = new Float32Array(n);
  const lo = new Float32Array(n);
  const hi = new Float32Array(n);
  const unstable: number[] = [];
  const errors: number[] = [];
  const counts = { zero: 0, partial: 0, one: 0 };
  let lambdaMax = 0;
  let spreadMax = 0;
  const unit = scalarActivations(activation, shape);
  for (let i = 0; i < n; i++) {
    const a = unit(i);
    const fixed = constant(i);
    const slopes: [number, number] = fixed ? [0, 0] : unitSlopeInterval(a, y0[i], yCheck[i], yHat[i]);
    const [sLo, sHi] = slopes;
    const lambda = Math.max(Math.abs(sLo), Math.abs(sHi));
    if (lambda === 0) counts.zero++;
    else if (lambda >= 1) counts.one++;
    else counts.partial++;
    lambdaMax = Math.max(lambdaMax, lambda);
    slopeSquared[i] = lambda * lambda;
    const spread = (sHi - sLo) / 2;
    spreadSquared[i] = spread * spread;
    spreadMax = Math.max(spreadMax, spread);
    mid[i] = (sHi + sLo) / 2;
    if (spread > 0) {
      unstable.push(i);
      errors.push(unitLinearisationError(a, y0[i], yCheck[i], yHat[i], mid[i], slopes));
    }
    [lo[i], hi[i]] = imageInterval(a, yCheck[i], yHat[i]);
    nextMask[i] = fixed || (sLo === 0 && sHi === 0) ? 0 : 1;
  }
  const unstableUnits = Int32Array.from(unstable);
  const unitErrors = Float64Array.from(errors);
  const state: Partial<LayerState> =
    activation.kind === 'relu'
      ? { mid, unstable: unstableUnits, errors: unitErrors, slopeSquared, reluInterval: { y0, lower: yCheck, upper: yHat } }
      : { mid, unstable: unstableUnits, errors: unitErrors, slopeSquared, relaxation: linearisedRelaxation(mid, unstableUnits, unitErrors) };
  return { state, slopeSquared, spreadSquared, nextMask, lo, hi, counts, lambdaMax, spreadMax, unstable: unstable.length };
}

/** One affine layer (with or without its activation); returns its bound L_l and the next position. */
export async function affineStep(sweep: Sweep, solver: NormSolver, nominal: NominalPass, index: number, layer: AffineLayer, position: Position): Promise<Position> {
  const { backend } = sweep;
  const { mask } = position;
  const base = baseReport(sweep, layer, index, position);
  const state: LayerState = { mask };
  const r2 = await backend.rowNormsSquared(layer, mask ?? new Float32Array(size(layer.inputShape)).fill(1));
  const y0 = nominal.preActivations[index];
  invariant(y0 && y0.length === r2.length, 'pre-activation and row norms disagree in size');
  const box = await affineInterval(sweep, layer, position);
  const { yHat, yCheck } = await preActivationBounds(sweep, index, layer, y0, box, (i) => position.epsIn * Math.sqrt(r2[i]), position, layer);
  state.preActivationLower = yCheck;
  state.preActivationUpper = yHat;
  let bound: number;
  let next: Position;
  const activation = layer.relu ? RELU : layer.activation;
  if (layer.relu) {
    const slopeSquared = new Float32Array(r2.length);
    const spreadSquared = new Float32Array(r2.length);
    const mid = new Float32Array(r2.length);
    const nextMask = new Float32Array(r2.length);
    const unstable: number[] = [];
    const errors: number[] = [];
    let zero = 0;
    let partial = 0;
    let one = 0;
    for (let i = 0; i < r2.length; i++) {
      // slopeInterval's ends one by one: a tuple per unit was much of the sweep's garbage.
      const sLo = r2[i] === 0 ? 0 : slopeLower(y0[i], yCheck[i], yHat[i]);
      const sHi = r2[i] === 0 ? 0 : slopeUpper(y0[i], yCheck[i], yHat[i]);
      if (sHi === 0) zero++;
      else if (sHi === 1) one++;
      else partial++;
      slopeSquared[i] = sHi * sHi;
      const spread = (sHi - sLo) / 2;
      spreadSquared[i] = spread * spread;
      mid[i] = (sHi + sLo) / 2;
      if (spread > 0) {
        unstable.push(i);
        errors.push(linearisationError(y0[i], yCheck[i], yHat[i], mid[i]));
      }
      nextMask[i] = yHat[i] > 0 ? 1 : 0;
    }
    const spectral = await affineNorm(solver, `tight:${index}`, index, layer, mask, slopeSquared);
    sweep.reports.push(spectral);
    sweep.layers.push({ ...base, bound: spectral.value, quality: spectral.quality, certificate: spectral.certificate, lambdaZero: zero, lambdaPartial: partial, lambdaOne: one, spectral });
    bound = spectral.value;
    addSpread(sweep, solver, index, layer, mask, spreadSquared, unstable.length);
    state.mid = mid;
    state.unstable = Int32Array.from(unstable);
    state.errors = Float64Array.from(errors);
    state.slopeSquared = slopeSquared;
    state.reluInterval = { y0, lower: yCheck, upper: yHat };
    next = { mask: nextMask, lo: yCheck.map((v) => (v > 0 ? v : 0)), hi: yHat.map((v) => (v > 0 ? v : 0)), epsIn: 0 };
  } else if (activation) {
    // Another activation (docs/graphs.md §3, §7): Theorem 2 with λ from the quotient intervals.
    const units = activationUnits(activation, layer.outputShape, y0, yCheck, yHat, (i) => r2[i] === 0);
    const spectral = await affineNorm(solver, `tight:${index}`, index, layer, mask, units.slopeSquared);
    sweep.reports.push(spectral);
    sweep.layers.push({ ...base, bound: spectral.value, quality: spectral.quality, certificate: spectral.certificate, lambdaZero: units.counts.zero, lambdaPartial: units.counts.partial, lambdaOne: units.counts.one, spectral });
    bound = spectral.value;
    addSpread(sweep, solver, index, layer, mask, units.spreadSquared, units.unstable);
    Object.assign(state, units.state);
    next = { mask: units.nextMask, lo: units.lo, hi: units.hi, epsIn: 0 };
  } else {
    const spectral = await affineNorm(solver, `tight:${index}`, index, layer, mask, null);
    sweep.reports.push(spectral);
    sweep.layers.push({ ...base, bound: spectral.value, quality: spectral.quality, certificate: spectral.certificate, spectral });
    bound = spectral.value;
    // An average pool has no bias: an output is known zero iff its whole window is (r_i = 0).
    next = { mask: layer.kind === 'avgpool' ? r2.map((v) => (v > 0 ? 1 : 0)) : null, lo: yCheck, hi: yHat, epsIn: 0 };
  }
  sweep.states.push(state);
  next.epsIn = position.epsIn * bound;
  return next;
}

/** The correction term's spread m_k = ||M A D|| of an affine layer whose units may switch (§2), computed on first use. */
function addSpread(sweep: Sweep, solver: NormSolver, index: number, layer: AffineLayer, mask: Float32Array | null, spreadSquared: Float32Array, unstable: number) {
  if (unstable === 0) return;
  sweep.spreads.set(index, async () => {
    const spreadNorm = await affineNorm(solver, `tight-spread:${index}`, index, layer, mask, spreadSquared, 'coarse');
    return { spread: spreadNorm.value, unstable, from: index, spectral: spreadNorm };
  });
}

/**
 * A max pool's windows over its input interval [lo, hi] (§2, §5): each window's nominal winner i*;
 * the unstable windows (another input can exceed the winner's lower bound), each with its error bound
 * max_{j≠i*} û_j − ǔ_{i*} and its candidate inputs; and the backward relaxation of every output.
 * Valid for any set on which the inputs lie in [lo, hi] (the ball, or a branch of it: branching.ts).
 */
export function maxPoolWindows(layer: MaxPoolLayer, lo: ArrayLike<number>, hi: ArrayLike<number>, xNominal: ArrayLike<number>) {
  // A window is stable when no other input can exceed the nominal winner's lower bound (§2).
  const windows = poolWindows(layer);
  const winner = new Int32Array(windows.length).fill(-1);
  const unstable: number[] = [];
  const errors: number[] = [];
  const candidate = new Uint8Array(lo.length);
  const poolRelaxation: PoolRelaxation = { upperConstant: new Float32Array(windows.length).fill(NaN), lowerInput: new Int32Array(windows.length).fill(-1), lowerOffset: new Float32Array(windows.length) };
  // Index loops over the windows' members (for…of on a typed array allocates an iterator per window).
  for (let o = 0; o < windows.length; o++) {
    const members = windows[o];
    let best = -1;
    for (let m = 0; m < members.length; m++) if (best < 0 || xNominal[members[m]] > xNominal[best]) best = members[m];
    winner[o] = best;
    let contested = false;
    for (let m = 0; m < members.length && best >= 0 && !contested; m++) contested = members[m] !== best && hi[members[m]] > lo[best];
    if (contested) {
      unstable.push(o);
      // 0 ≤ max(u) − u_{i*} ≤ max over other candidates of û_j − ǔ_{i*}.
      let top = -Infinity;
      for (let m = 0; m < members.length; m++) {
        const i = members[m];
        if (i === best || hi[i] > lo[best]) candidate[i] = 1;
        if (i !== best) top = Math.max(top, hi[i]);
      }
      errors.push(top - lo[best]);
      // §5: above, max(u) ≤ max_j û_j; below, max(u) ≥ u_k for the k with the largest lower bound.
      let highest = -Infinity;
      let k = best;
      for (let m = 0; m < members.length; m++) {
        const i = members[m];
        highest = Math.max(highest, hi[i]);
        if (lo[i] > lo[k]) k = i;
      }
      poolRelaxation.upperConstant[o] = Math.max(0, highest - xNominal[best]);
      poolRelaxation.lowerInput[o] = k;
      poolRelaxation.lowerOffset[o] = Math.min(0, xNominal[k] - xNominal[best]);
    } else if (best >= 0) {
      poolRelaxation.lowerInput[o] = best;
    }
  }
  return { winner, unstable, errors, candidate, poolRelaxation };
}

/** A max pool: sqrt(n_max) (Theorem 3), its unstable windows and their spread (§2). */
export async function maxPoolStep(sweep: Sweep, solver: NormSolver, nominal: NominalPass, index: number, layer: MaxPoolLayer, position: Position): Promise<Position> {
  const { backend, network } = sweep;
  const { lo, hi, mask } = position;
  const bound = maxPoolLipschitz(layer);
  sweep.layers.push({ ...baseReport(sweep, layer, index, position), bound, quality: 'exact' });
  const xNominal = nominal.inputs[index];
  const { winner, unstable, errors, candidate, poolRelaxation } = maxPoolWindows(layer, lo, hi, xNominal);
  if (unstable.length > 0) {
    // ||E w|| ≤ sqrt(2·n_max)·||P_C w|| (§2); when an affine layer with its activation feeds the
    // pool, ||P_C w|| ≤ ||P_C Λ A D||·||its input difference||, else ≤ ||w||.
    const spread = Math.sqrt(2 * maxPoolOverlap(layer));
    const from = inputsOf(network, index)[0];
    const previous = from >= 0 ? network.layers[from] : null;
    const feeding = from >= 0 ? sweep.states[from] : undefined;
    if (previous && isAffine(previous) && feeding?.slopeSquared) {
      const restricted = feeding.slopeSquared.map((v, i) => (candidate[i] ? v : 0));
      sweep.spreads.set(index, async () => {
        const norm = await affineNorm(solver, `tight-pool:${index}`, from, previous, feeding.mask, restricted, 'coarse');
        return { spread: spread * norm.value, unstable: unstable.length, from, spectral: norm };
      });
    } else {
      sweep.spreads.set(index, { spread, unstable: unstable.length, from: index });
    }
  }
  sweep.states.push({ mask, winner, poolRelaxation, unstable: Int32Array.from(unstable), errors: Float64Array.from(errors) });
  return {
    lo: await backend.maxPool(layer, lo),
    hi: await backend.maxPool(layer, hi),
    mask: mask ? await backend.poolMask(layer, mask) : null,
    epsIn: position.epsIn * bound,
  };
}

/**
 * A diagonal activation over pre-activations [y̌, ŷ] (a lone activation, or the
 * activation after an Add): L = max_i λ_i (exact for the diagonal map ΛD), its units that may
 * switch with spread max_i μ_i (§2 for a diagonal map), the next box and mask.
 */
function diagonalActivation(sweep: Sweep, index: number, layer: Layer, position: Position, activation: AnyActivation, y0: ArrayLike<number>, yCheck: Float32Array, yHat: Float32Array, constant: (i: number) => boolean, extra: Partial<LayerState> = {}): Position {
  const units = activationUnits(activation, layer.outputShape, y0, yCheck, yHat, constant);
  sweep.layers.push({ ...baseReport(sweep, layer, index, position), bound: units.lambdaMax, quality: 'exact', lambdaZero: units.counts.zero, lambdaPartial: units.counts.partial, lambdaOne: units.counts.one });
  if (units.unstable > 0) sweep.spreads.set(index, { spread: units.spreadMax, unstable: units.unstable, from: index });
  sweep.states.push({ mask: position.mask, ...units.state, ...extra });
  return { mask: units.nextMask, lo: units.lo, hi: units.hi, epsIn: position.epsIn * units.lambdaMax };
}

/** A lone activation (a ReLU after a max pool, or another activation): its units' ranges are the box of what it reads. */
export function activationStep(sweep: Sweep, nominal: NominalPass, index: number, layer: Layer, position: Position, activation: AnyActivation): Position {
  const { lo, hi, mask } = position;
  const x = nominal.inputs[index];
  const yCheck = Float32Array.from(lo, (v, i) => Math.min(v, x[i]));
  const yHat = Float32Array.from(hi, (v, i) => Math.max(v, x[i]));
  return diagonalActivation(sweep, index, layer, position, activation, x, yCheck, yHat, (i) => !!mask && mask[i] === 0);
}

/**
 * An Add (docs/graphs.md §7): its sum's range is the sum of the inputs' boxes met with the ball
 * |y_i − y0_i| ≤ Σ_j ε_j over the inputs j not constant at i, sharpened per unit (§4) for units that
 * may switch; then its activation as a diagonal map, or without one the sum itself (L = 1).
 */
export async function addStep(sweep: Sweep, nominal: NominalPass, index: number, layer: AddLayer, position: Position, reads: Position[]): Promise<Position> {
  const y0 = nominal.preActivations[index];
  invariant(y0 && y0.length === position.lo.length, 'the sum is missing from the nominal pass');
  const activation = layer.relu ? RELU : layer.activation;
  if (!activation) return passStep(sweep, index, layer, position);
  const ballRadius = (i: number) => reads.reduce((a, p) => a + (p.mask && p.mask[i] === 0 ? 0 : p.epsIn), 0);
  const { yHat, yCheck } = await preActivationBounds(sweep, index, layer, y0, position, ballRadius, position, null);
  return diagonalActivation(sweep, index, layer, position, activation, y0, yCheck, yHat, (i) => ballRadius(i) === 0, { preActivationLower: yCheck, preActivationUpper: yHat });
}

/** Flatten, a Concat, an Add without activation: the combined input passes on unchanged (L = 1). */
export function passStep(sweep: Sweep, index: number, layer: Layer, position: Position): Position {
  sweep.layers.push({ ...baseReport(sweep, layer, index, position), bound: 1, quality: 'exact' });
  sweep.states.push({ mask: position.mask });
  return position;
}
