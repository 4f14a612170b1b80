/**
 * The tight method's forward sweep (docs/tightness.md §1, §2, §4): layer by layer, the interval of
 * the activations (the input box x0 ± ε, propagated; it contains the ℓ2 ball) intersected with the
 * paper's ball bound y0 ± ε_l·r, sharpened for units that may still switch by per-unit linear
 * bounds (§4, one block backward pass for all of a layer's units); then the slope intervals, the
 * layer bound ||Λ A D|| (Theorem 2 with the sharper λ and D), the spread of the correction term, and
 * the state the backward passes need.
 */
import type { NominalPass } from '../layer-bounds.js';
import { maxPoolLipschitz, maxPoolOverlap } from '../layer-bounds.js';
import { absoluteLayer } from '../certificates.js';
import { affineNorm, type NormSolver } from '../norms.js';
import { invariant } from '../../errors.js';
import { type AffineLayer, isAffine, type Layer, type MaxPoolLayer, size } from '../../model/ir.js';
import { poolWindows } from '../../model/pool-geometry.js';
import { prefixChangeBounds } from './backward.js';
import { linearisationError, slopeInterval } from './slopes.js';
import { relaxedChangeBounds } from './relaxation.js';
import { checkBudget } from '../budget.js';
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
    for (const i of members) if (best < 0 || y0[i] > y0[best]) best = i;
    if (best < 0) continue;
    const floor = Math.max(0, yCheck[best]);
    if (members.some((i) => i !== best && Math.max(0, yHat[i]) > floor)) for (const i of members) if (yHat[i] > 0) units.add(i);
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

function baseReport(layer: Layer, index: number, position: Position) {
  const activeInputs = position.mask ? position.mask.reduce((a, v) => a + (v !== 0 ? 1 : 0), 0) : size(layer.inputShape);
  return { index, kind: layer.kind, relu: isAffine(layer) ? layer.relu : layer.kind === 'relu', name: layer.name, inputShape: layer.inputShape, outputShape: layer.outputShape, epsIn: position.epsIn, activeInputs };
}

/** Pre-activation bounds [y̌, ŷ] ∋ y0 of an affine layer over the set (§1, sharpened by §4). */
async function preActivationBounds(sweep: Sweep, index: number, layer: AffineLayer, y0: Float32Array, r2: Float32Array, position: Position) {
  const { backend } = sweep;
  const { lo, hi, mask, epsIn } = position;
  // Interval bound propagation: centre c, half-width h → A c + b ± (|A| h + margin·|A|(|c| + h)).
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
  const yHat = new Float32Array(r2.length);
  const yCheck = new Float32Array(r2.length);
  for (let i = 0; i < r2.length; i++) {
    const r = Math.sqrt(r2[i]);
    const width = yr[i] + ROUNDING_MARGIN * ym[i];
    yHat[i] = Math.max(y0[i], Math.min(y0[i] + epsIn * r, yc[i] + width));
    yCheck[i] = Math.min(y0[i], Math.max(y0[i] - epsIn * r, yc[i] - width));
    if (r === 0) yHat[i] = yCheck[i] = y0[i]; // constant over the set
  }
  // §4, §5: linear bounds from x0 for each unit that may still switch — and, before a max pool,
  // for the units of windows whose winner is not settled (their bounds set the pool's relaxation).
  const switching = layer.relu && index > 0 ? Array.from(yHat.keys()).filter((i) => yHat[i] > 0 && yCheck[i] < 0) : [];
  const next = sweep.network.layers[index + 1];
  const poolCritical = layer.relu && index > 0 && next?.kind === 'maxpool' ? unsettledPoolUnits(next, y0, yCheck, yHat) : [];
  const widest = Math.max(...sweep.network.layers.slice(0, index + 1).map((l) => size(l.inputShape)));
  const before = sweep.network.layers.slice(0, index).reduce((a, l) => a + size(l.inputShape), 0);
  const m = r2.length;
  const perBlock = Math.max(1, Math.floor(BLOCK_ENTRIES / Math.max(widest, m)));
  const refine = async (units: number[], withNorms: boolean) => {
    for (let start = 0; start < units.length; start += perBlock) {
      checkBudget(sweep.deadline);
      const chunk = units.slice(start, start + perBlock);
      const unit = new Float32Array(chunk.length * m);
      chunk.forEach((i, b) => (unit[b * m + i] = 1));
      const rows = await backend.applyATBlock(layer, unit, chunk.length);
      const rho = withNorms ? await prefixChangeBounds(sweep, index, rows, chunk.length, mask) : null;
      // §5: the relaxation's upper bounds of +Δy_i and −Δy_i, in one block.
      const both = new Float32Array(2 * rows.length);
      both.set(rows);
      for (let i = 0; i < rows.length; i++) both[rows.length + i] = -rows[i];
      const relaxed = await relaxedChangeBounds(sweep, index, both, 2 * chunk.length, mask);
      chunk.forEach((i, b) => {
        const up = Math.min(rho ? rho[b] : Infinity, relaxed[b]);
        const down = Math.min(rho ? rho[b] : Infinity, relaxed[chunk.length + b]);
        yHat[i] = Math.max(y0[i], Math.min(yHat[i], y0[i] + up));
        yCheck[i] = Math.min(y0[i], Math.max(yCheck[i], y0[i] - down));
      });
    }
  };
  const full = sweep.refinement === 'full';
  const affordable = (units: number) => full || (units <= MAX_LINEARISED_UNITS && units * before <= LINEARISED_WORK_BUDGET);
  if (switching.length > 0 && affordable(switching.length)) await refine(switching, !full);
  const switchingSet = new Set(switching);
  const settle = poolCritical.filter((i) => !switchingSet.has(i));
  if (settle.length > 0 && (full || settle.length * before <= SETTLE_WORK_BUDGET)) await refine(settle, false);
  return { yHat, yCheck };
}

/** One affine layer (with or without its ReLU); returns its bound L_l and the next position. */
export async function affineStep(sweep: Sweep, solver: NormSolver, nominal: NominalPass, index: number, layer: AffineLayer, position: Position): Promise<Position> {
  const { backend } = sweep;
  const { mask } = position;
  const base = baseReport(layer, index, position);
  const state: LayerState = { mask };
  const r2 = await backend.rowNormsSquared(layer, mask ?? new Float32Array(size(layer.inputShape)).fill(1));
  const y0 = nominal.preActivations[index];
  invariant(y0 && y0.length === r2.length, 'pre-activation and row norms disagree in size');
  const { yHat, yCheck } = await preActivationBounds(sweep, index, layer, y0, r2, position);
  state.preActivationLower = yCheck;
  state.preActivationUpper = yHat;
  let bound: number;
  let next: Position;
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
      const [sLo, sHi] = r2[i] === 0 ? [0, 0] : slopeInterval(y0[i], yCheck[i], yHat[i]);
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
    if (unstable.length > 0) {
      const spreadNorm = await affineNorm(solver, `tight-spread:${index}`, index, layer, mask, spreadSquared, 'coarse');
      sweep.reports.push(spreadNorm);
      sweep.spreads.set(index, { spread: spreadNorm.value, unstable: unstable.length, from: index, spectral: spreadNorm });
    }
    state.mid = mid;
    state.unstable = Int32Array.from(unstable);
    state.errors = Float64Array.from(errors);
    state.slopeSquared = slopeSquared;
    state.reluInterval = { y0, lower: yCheck, upper: yHat };
    next = { mask: nextMask, lo: yCheck.map((v) => (v > 0 ? v : 0)), hi: yHat.map((v) => (v > 0 ? v : 0)), epsIn: 0 };
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

/** A max pool: sqrt(n_max) (Theorem 3), its unstable windows and their spread (§2). */
export async function maxPoolStep(sweep: Sweep, solver: NormSolver, nominal: NominalPass, index: number, layer: MaxPoolLayer, position: Position): Promise<Position> {
  const { backend, network } = sweep;
  const { lo, hi, mask } = position;
  const bound = maxPoolLipschitz(layer);
  sweep.layers.push({ ...baseReport(layer, index, position), bound, quality: 'exact' });
  // A window is stable when no other input can exceed the nominal winner's lower bound (§2).
  const xNominal = nominal.inputs[index];
  const windows = poolWindows(layer);
  const winner = new Int32Array(windows.length).fill(-1);
  const unstable: number[] = [];
  const errors: number[] = [];
  const candidate = new Uint8Array(lo.length);
  const poolRelaxation: PoolRelaxation = { upperConstant: new Float32Array(windows.length).fill(NaN), lowerInput: new Int32Array(windows.length).fill(-1), lowerOffset: new Float32Array(windows.length) };
  windows.forEach((members, o) => {
    let best = -1;
    for (const i of members) if (best < 0 || xNominal[i] > xNominal[best]) best = i;
    winner[o] = best;
    if (best >= 0 && members.some((i) => i !== best && hi[i] > lo[best])) {
      unstable.push(o);
      // 0 ≤ max(u) − u_{i*} ≤ max over other candidates of û_j − ǔ_{i*}.
      let top = -Infinity;
      for (const i of members) {
        if (i === best || hi[i] > lo[best]) candidate[i] = 1;
        if (i !== best) top = Math.max(top, hi[i]);
      }
      errors.push(top - lo[best]);
      // §5: above, max(u) ≤ max_j û_j; below, max(u) ≥ u_k for the k with the largest lower bound.
      let highest = -Infinity;
      let k = best;
      for (const i of members) {
        highest = Math.max(highest, hi[i]);
        if (lo[i] > lo[k]) k = i;
      }
      poolRelaxation.upperConstant[o] = Math.max(0, highest - xNominal[best]);
      poolRelaxation.lowerInput[o] = k;
      poolRelaxation.lowerOffset[o] = Math.min(0, xNominal[k] - xNominal[best]);
    } else if (best >= 0) {
      poolRelaxation.lowerInput[o] = best;
    }
  });
  if (unstable.length > 0) {
    // ||E w|| ≤ sqrt(2·n_max)·||P_C w|| (§2); when an affine+ReLU layer feeds the pool,
    // ||P_C w|| ≤ ||P_C Λ A D||·||its input difference||, else ≤ ||w||.
    const spread = Math.sqrt(2 * maxPoolOverlap(layer));
    const previous = index > 0 ? network.layers[index - 1] : null;
    const feeding = sweep.states[index - 1];
    if (previous && isAffine(previous) && previous.relu && feeding?.slopeSquared) {
      const restricted = feeding.slopeSquared.map((v, i) => (candidate[i] ? v : 0));
      const norm = await affineNorm(solver, `tight-pool:${index}`, index - 1, previous, feeding.mask, restricted, 'coarse');
      sweep.reports.push(norm);
      sweep.spreads.set(index, { spread: spread * norm.value, unstable: unstable.length, from: index - 1, spectral: norm });
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

/** A ReLU that does not follow an affine layer: ||Λ D|| of a diagonal map, its unstable units. */
export function reluStep(sweep: Sweep, nominal: NominalPass, index: number, layer: Layer, position: Position): Position {
  const { lo, hi, mask } = position;
  const xNominal = nominal.inputs[index];
  const mid = new Float32Array(xNominal.length);
  const unstable: number[] = [];
  const errors: number[] = [];
  const nextMask = new Float32Array(xNominal.length);
  let lambdaMax = 0;
  let spreadMax = 0;
  for (let i = 0; i < xNominal.length; i++) {
    if (mask && mask[i] === 0) continue;
    const [sLo, sHi] = slopeInterval(xNominal[i], Math.min(lo[i], xNominal[i]), Math.max(hi[i], xNominal[i]));
    lambdaMax = Math.max(lambdaMax, sHi);
    spreadMax = Math.max(spreadMax, (sHi - sLo) / 2);
    mid[i] = (sHi + sLo) / 2;
    if (sHi > sLo) {
      unstable.push(i);
      errors.push(linearisationError(xNominal[i], Math.min(lo[i], xNominal[i]), Math.max(hi[i], xNominal[i]), mid[i]));
    }
    nextMask[i] = hi[i] > 0 ? 1 : 0;
  }
  sweep.layers.push({ ...baseReport(layer, index, position), bound: lambdaMax, quality: 'exact' });
  if (unstable.length > 0) sweep.spreads.set(index, { spread: spreadMax, unstable: unstable.length, from: index });
  const inputLower = Float32Array.from(lo, (v, i) => Math.min(v, xNominal[i]));
  const inputUpper = Float32Array.from(hi, (v, i) => Math.max(v, xNominal[i]));
  sweep.states.push({ mask, mid, unstable: Int32Array.from(unstable), errors: Float64Array.from(errors), reluInterval: { y0: xNominal, lower: inputLower, upper: inputUpper } });
  return { mask: nextMask, lo: lo.map((v) => (v > 0 ? v : 0)), hi: hi.map((v) => (v > 0 ? v : 0)), epsIn: position.epsIn * lambdaMax };
}

/** Flatten: the identity on the data. */
export function flattenStep(sweep: Sweep, index: number, layer: Layer, position: Position): Position {
  sweep.layers.push({ ...baseReport(layer, index, position), bound: 1, quality: 'exact' });
  sweep.states.push({ mask: position.mask });
  return position;
}
