/**
 * The 'tight' local bound: Algorithm 1 of Avant & Morgansen with three sound refinements, each
 * argued in docs/tightness.md:
 * 1. pre-activation bounds ŷ = min(paper's y0 + ε_l·r, interval bound from the input box) and the
 *    matching lower bounds y̌, so more neurons get λ = 0 and more of D is zero (§1);
 * 2. a decomposition around the network's linearisation N at x0: f(x) − f(x0) = (Π N + Σ_k N_{>k} E_k
 *    Π_{<k} G) Δ, where only neurons that may switch contribute an error term E_k (§2);
 * 3. margin-specific bounds of each logit difference y_c − y_j for the certified radius (§3).
 * The result is min(product of the sharpened layer bounds, decomposition bound).
 */
import type { Backend } from '../backend/backend.js';
import { invariant } from '../errors.js';
import { type AffineLayer, isAffine, type Layer, type MaxPoolLayer, type Network, size } from '../model/ir.js';
import { absoluteLayer, gramIterationBound } from './certificates.js';
import { maxPoolLipschitz, maxPoolOverlap, type NominalPass, } from './layer-bounds.js';
import type { NormSolver } from './norms.js';
import type { BoundQuality, LayerBound, NetworkBound, SpectralNormReport } from './types.js';

/** The decomposition (refinement 2) is computed when the network has at most this many outputs. */
export const MAX_DECOMPOSITION_OUTPUTS = 64;

/**
 * Per-unit linear bounds (§4) are computed for the units that may switch in a layer when there are
 * at most this many of them (one backward pass each).
 */
export const MAX_LINEARISED_UNITS = 256;
/** ... and while units × (activations before the layer) stays below this: each unit costs a backward pass. */
export const LINEARISED_WORK_BUDGET = 1e7;

/** Relative widening of interval bounds for float32 rounding in the backend's convolutions. */
const ROUNDING_MARGIN = 1e-4;

export interface CorrectionTerm {
  /** Layer k whose possibly switching units give the error term E_k. */
  index: number;
  /** Units (or pooling windows) that may switch over the ball. */
  unstable: number;
  /**
   * m_k: ||E_k (x_k − x0_k)|| ≤ m_k·||x_from − x0_from||. ReLU layers: ||M_k A_k D_k|| (half-widths of the
   * slopes); max pools: sqrt(2·n_max)·||P_C Λ A D|| of the affine+ReLU layer feeding them (or sqrt(2·n_max)).
   */
  spread: number;
  /** ||N_{>k} P_k||: the linearisation after layer k, restricted to the unstable units. */
  sensitivity: number;
  /** Product of the layer bounds before the layer m_k refers to. */
  before: number;
  spectral?: SpectralNormReport;
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
  /** The class c that marginBounds refer to. */
  marginClass: number;
}

/** Slope interval [lo, hi] of the ReLU difference quotient over pre-activations in [y̌, ŷ] (§1). */
export function slopeInterval(y0: number, yCheck: number, yHat: number): [number, number] {
  if (yHat <= 0) return [0, 0];
  if (yCheck >= 0) return [1, 1];
  if (y0 > 0) return [y0 / (y0 - yCheck), 1];
  return [0, yHat / (yHat - y0)];
}

/**
 * max |relu(y) − relu(y0) − m·(y − y0)| over y in [y̌, ŷ]: the largest error of the linearised unit
 * (slope m) over the ball, in absolute terms (§3). Piecewise linear: the maximum is at an end or at 0.
 */
export function linearisationError(y0: number, yCheck: number, yHat: number, m: number): number {
  const phi = (y: number) => Math.abs(Math.max(0, y) - Math.max(0, y0) - m * (y - y0));
  return Math.max(phi(yCheck), phi(yHat), yCheck < 0 && yHat > 0 ? phi(0) : 0);
}

/** For each output of a max pool, the flat indices of its window's inputs (padding left out). */
function poolWindows(layer: MaxPoolLayer): Int32Array[] {
  const [channels, h, w] = layer.inputShape;
  const [, ho, wo] = layer.outputShape;
  const windows: Int32Array[] = [];
  for (let c = 0; c < channels; c++)
    for (let oy = 0; oy < ho; oy++)
      for (let ox = 0; ox < wo; ox++) {
        const members: number[] = [];
        for (let ky = 0; ky < layer.kernel[0]; ky++) {
          const iy = oy * layer.strides[0] - layer.pads[0] + ky * layer.dilations[0];
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < layer.kernel[1]; kx++) {
            const ix = ox * layer.strides[1] - layer.pads[1] + kx * layer.dilations[1];
            if (ix >= 0 && ix < w) members.push((c * h + iy) * w + ix);
          }
        }
        windows.push(Int32Array.from(members));
      }
  return windows;
}

const exact = (value: number): SpectralNormReport => ({ value, quality: 'exact', iterations: 0, relativeChange: 0, relativeResidual: 0, converged: true });

/** ||Λ A D|| through the solver, with the closed forms of the paper's layer-bounds.ts. */
async function affineNorm(solver: NormSolver, key: string, index: number, layer: AffineLayer, mask: Float32Array | null, slopeSquared: Float32Array | null): Promise<SpectralNormReport> {
  if (slopeSquared && slopeSquared.every((v) => v === 0)) return exact(0);
  if (mask && mask.every((v) => v === 0)) return exact(0);
  if (layer.kind === 'scale') {
    const per = size(layer.inputShape) / layer.scale.length;
    let best = 0;
    for (let i = 0; i < size(layer.inputShape); i++) {
      if (mask && mask[i] === 0) continue;
      best = Math.max(best, Math.abs(layer.scale[Math.floor(i / per)]) * (slopeSquared ? Math.sqrt(slopeSquared[i]) : 1));
    }
    return exact(best);
  }
  return solver.norm(key, index, layer, mask, slopeSquared);
}

function worstQuality(qualities: BoundQuality[]): BoundQuality {
  if (qualities.includes('estimate')) return 'estimate';
  if (qualities.includes('upper')) return 'upper';
  return 'exact';
}

/** What the backward pass needs of each layer: its input mask and the linearisation's slopes. */
interface LayerState {
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
}

/**
 * The tight local bound at radius ε for class `cls` (the margins refer to it).
 * `solver` gives ||Λ A D|| (estimates or certificates); warm-start keys are 'tight:<layer>'.
 */
export async function tightLocalBound(
  network: Network,
  backend: Backend,
  nominal: NominalPass,
  eps: number,
  solver: NormSolver,
  cls: number,
  onLayer?: (index: number) => void,
): Promise<TightBound> {
  const start = performance.now();
  const layers: LayerBound[] = [];
  const states: LayerState[] = [];
  // Layer k → m_k, the number of unstable units, and the layer whose input ball it multiplies.
  const spreads = new Map<number, { spread: number; unstable: number; from: number; spectral?: SpectralNormReport }>();
  const reports: SpectralNormReport[] = [];
  // Interval of the current activations: the input box x0 ± ε (it contains the ℓ2 ball).
  const x0 = nominal.inputs[0];
  let lo: Float32Array<ArrayBufferLike> = Float32Array.from(x0, (v) => v - eps);
  let hi: Float32Array<ArrayBufferLike> = Float32Array.from(x0, (v) => v + eps);
  let mask: Float32Array | null = null;
  let epsIn = eps;
  // Half-widths of the box around each layer's nominal input (and, last, the output): §3.
  const deviation: Float32Array[] = [];
  const pushDeviation = (nominalValue: Float32Array) => deviation.push(nominalValue.map((v, i) => Math.max(hi[i] - v, v - lo[i], 0)));
  for (const [index, layer] of network.layers.entries()) {
    onLayer?.(index);
    pushDeviation(nominal.inputs[index]);
    const activeInputs = mask ? mask.reduce((a, v) => a + (v !== 0 ? 1 : 0), 0) : size(layer.inputShape);
    const base = { index, kind: layer.kind, relu: isAffine(layer) ? layer.relu : layer.kind === 'relu', name: layer.name, inputShape: layer.inputShape, outputShape: layer.outputShape, epsIn, activeInputs };
    const state: LayerState = { mask };
    let bound: number;
    if (isAffine(layer)) {
      const r2 = await backend.rowNormsSquared(layer, mask ?? new Float32Array(size(layer.inputShape)).fill(1));
      const y0 = nominal.preActivations[index];
      invariant(y0 && y0.length === r2.length, 'pre-activation and row norms disagree in size');
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
      const switching = layer.relu && index > 0 ? Array.from(yHat.keys()).filter((i) => yHat[i] > 0 && yCheck[i] < 0) : [];
      const work = switching.length * network.layers.slice(0, index).reduce((a, l) => a + size(l.inputShape), 0);
      if (switching.length > 0 && switching.length <= MAX_LINEARISED_UNITS && work <= LINEARISED_WORK_BUDGET) {
        // Refinement 2 applied to each unit that may still switch: a linear bound from x0 (§2, §4).
        const context: PrefixContext = { network, backend, states, spreads, deviation, layers, eps };
        for (const i of switching) {
          const e = new Float32Array(r2.length);
          e[i] = 1;
          const rho = await prefixChangeBound(context, index, await backend.applyAT(layer, e), mask);
          yHat[i] = Math.max(y0[i], Math.min(yHat[i], y0[i] + rho));
          yCheck[i] = Math.min(y0[i], Math.max(yCheck[i], y0[i] - rho));
        }
      }
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
        reports.push(spectral);
        layers.push({ ...base, bound: spectral.value, quality: spectral.quality, certificate: spectral.certificate, lambdaZero: zero, lambdaPartial: partial, lambdaOne: one, spectral });
        bound = spectral.value;
        if (unstable.length > 0) {
          const spreadNorm = await affineNorm(solver, `tight-spread:${index}`, index, layer, mask, spreadSquared);
          reports.push(spreadNorm);
          spreads.set(index, { spread: spreadNorm.value, unstable: unstable.length, from: index, spectral: spreadNorm });
        }
        state.mid = mid;
        state.unstable = Int32Array.from(unstable);
        state.errors = Float64Array.from(errors);
        state.slopeSquared = slopeSquared;
        mask = nextMask;
        lo = yCheck.map((v) => (v > 0 ? v : 0));
        hi = yHat.map((v) => (v > 0 ? v : 0));
      } else {
        const spectral = await affineNorm(solver, `tight:${index}`, index, layer, mask, null);
        reports.push(spectral);
        layers.push({ ...base, bound: spectral.value, quality: spectral.quality, certificate: spectral.certificate, spectral });
        bound = spectral.value;
        mask = layer.kind === 'avgpool' ? r2.map((v) => (v > 0 ? 1 : 0)) : null;
        lo = yCheck;
        hi = yHat;
      }
    } else if (layer.kind === 'maxpool') {
      bound = maxPoolLipschitz(layer);
      layers.push({ ...base, bound, quality: 'exact' });
      // A window is stable when no other input can exceed the nominal winner's lower bound (§2).
      const xNominal = nominal.inputs[index];
      const windows = poolWindows(layer);
      const winner = new Int32Array(windows.length).fill(-1);
      const unstable: number[] = [];
      const errors: number[] = [];
      const candidate = new Uint8Array(lo.length);
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
        }
      });
      if (unstable.length > 0) {
        // ||E w|| ≤ sqrt(2·n_max)·||P_C w|| (§2); when an affine+ReLU layer feeds the pool,
        // ||P_C w|| ≤ ||P_C Λ A D||·||its input difference||, else ≤ ||w||.
        const spread = Math.sqrt(2 * maxPoolOverlap(layer));
        const previous = index > 0 ? network.layers[index - 1] : null;
        const feeding = states[index - 1];
        if (previous && isAffine(previous) && previous.relu && feeding?.slopeSquared) {
          const restricted = feeding.slopeSquared.map((v, i) => (candidate[i] ? v : 0));
          const norm = await affineNorm(solver, `tight-pool:${index}`, index - 1, previous, feeding.mask, restricted);
          reports.push(norm);
          spreads.set(index, { spread: spread * norm.value, unstable: unstable.length, from: index - 1, spectral: norm });
        } else {
          spreads.set(index, { spread, unstable: unstable.length, from: index });
        }
      }
      state.winner = winner;
      state.unstable = Int32Array.from(unstable);
      state.errors = Float64Array.from(errors);
      lo = await backend.maxPool(layer, lo);
      hi = await backend.maxPool(layer, hi);
      mask = mask ? await backend.poolMask(layer, mask) : null;
    } else if (layer.kind === 'relu') {
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
      bound = lambdaMax; // ||Λ D|| of a diagonal map
      layers.push({ ...base, bound, quality: 'exact' });
      if (unstable.length > 0) spreads.set(index, { spread: spreadMax, unstable: unstable.length, from: index });
      state.mid = mid;
      state.unstable = Int32Array.from(unstable);
      state.errors = Float64Array.from(errors);
      mask = nextMask;
      lo = lo.map((v) => (v > 0 ? v : 0));
      hi = hi.map((v) => (v > 0 ? v : 0));
    } else {
      bound = 1; // flatten
      layers.push({ ...base, bound, quality: 'exact' });
    }
    states.push(state);
    epsIn *= bound;
  }
  pushDeviation(nominal.logits);
  const productBound = layers.reduce((p, l) => p * l.bound, 1);
  // before[t] = Π_{l<t} L_l, t = 0..L (before[L] is the whole product).
  const before = [...layers.map((_, k) => layers.slice(0, k).reduce((p, l) => p * l.bound, 1)), productBound];

  const outputs = size(network.outputShape);
  const corrections: CorrectionTerm[] = [];
  let decompositionBound: number | undefined;
  let marginChange: number[] | undefined;
  const marginBounds = new Array<number>(outputs).fill(Infinity);
  marginBounds[cls] = 0;

  // Refinement 3, simple form: |Δ(y_c − y_j)| ≤ ||(a_c − a_j)ᵀ D_L||·T_L for a last affine layer,
  // T_L = Π_{l<L} L_l the bound of its input's change (before[L − 1]; the last layer's own norm is
  // not part of it: the row a_c − a_j already is that layer).
  const lastIndex = network.layers.length - 1;
  const last = network.layers[network.layers.length - 1];
  if (isAffine(last) && !last.relu) {
    const lastMask = states[states.length - 1].mask;
    for (let j = 0; j < outputs; j++) {
      if (j === cls) continue;
      const e = new Float32Array(outputs);
      e[cls] = 1;
      e[j] = -1;
      const row = await backend.applyAT(last, e);
      let s = 0;
      for (let i = 0; i < row.length; i++) if (!lastMask || lastMask[i] !== 0) s += row[i] * row[i];
      marginBounds[j] = Math.sqrt(s) * before[lastIndex];
    }
  }

  if (outputs <= MAX_DECOMPOSITION_OUTPUTS) {
    // Refinement 2: rows of N (the linearisation with midpoint slopes) by one backward pass per
    // output. rowsAt[t][out] is row `out` of N_{≥t} D_t (at the input of layer t); rowsAt[L] = I.
    const L = network.layers.length;
    const rowsAt: Float32Array[][] = Array.from({ length: L + 1 }, () => []);
    const restricted = new Map<number, Float32Array[]>(); // layer k → rows of N_{>k} P_k
    for (let out = 0; out < outputs; out++) {
      let g: Float32Array<ArrayBufferLike> = new Float32Array(outputs);
      g[out] = 1;
      rowsAt[L].push(g);
      for (let index = L - 1; index >= 0; index--) {
        const state = states[index];
        if (state.unstable && state.unstable.length > 0 && spreads.has(index)) {
          const list = restricted.get(index) ?? [];
          list.push(Float32Array.from(state.unstable, (i) => g[i]));
          restricted.set(index, list);
        }
        g = await backwardStep(backend, network.layers[index], state, g);
        rowsAt[index].push(g);
      }
    }
    const topEigen = (rows: Float32Array[]) => {
      const p = rows.length;
      const gram = new Float64Array(p * p);
      for (let a = 0; a < p; a++)
        for (let b = a; b < p; b++) {
          let s = 0;
          for (let i = 0; i < rows[a].length; i++) s += rows[a][i] * rows[b][i];
          gram[a * p + b] = gram[b * p + a] = s;
        }
      return Math.sqrt(gramIterationBound(gram, p, 40));
    };
    const differenceNorm = (rows: Float32Array[], j: number) => {
      let s = 0;
      for (let i = 0; i < rows[cls].length; i++) s += (rows[cls][i] - rows[j][i]) ** 2;
      return Math.sqrt(s);
    };
    // Correction terms, per layer k: for the whole output, and per class j (ratio and absolute forms).
    const boxNorm = deviation.map((d) => Math.sqrt(d.reduce((a, v) => a + v * v, 0)));
    const termRatio = new Map<number, number[]>();
    const termChange = new Map<number, number[]>();
    for (const [index, rows] of restricted) {
      const s = spreads.get(index)!;
      const term: CorrectionTerm = { index, unstable: s.unstable, spread: s.spread, sensitivity: topEigen(rows), before: before[s.from], spectral: s.spectral };
      corrections.push(term);
      const errors = states[index].errors!;
      const ratios = new Array<number>(outputs).fill(0);
      const changes = new Array<number>(outputs).fill(0);
      for (let j = 0; j < outputs; j++) {
        if (j === cls) continue;
        const sensitivity = differenceNorm(rows, j) * term.spread;
        ratios[j] = sensitivity * term.before;
        // |rᵀ e| ≤ Σ_i |r_i|·e_max,i for errors e_i ∈ [−e_max,i, e_max,i]; and the input difference
        // of layer from(k) is at most the norm of its box's half-widths as well as T·ε (§3).
        let absolute = 0;
        for (let i = 0; i < errors.length; i++) absolute += Math.abs(rows[cls][i] - rows[j][i]) * errors[i];
        changes[j] = Math.min(eps * ratios[j], sensitivity * boxNorm[s.from], absolute);
      }
      termRatio.set(index, ratios);
      termChange.set(index, changes);
    }
    // Split at layer t: layers < t by the product of their bounds, layers ≥ t linearised (§2).
    const margin = new Array<number>(outputs).fill(Infinity);
    marginChange = new Array<number>(outputs).fill(Infinity);
    margin[cls] = marginChange[cls] = 0;
    for (let t = 0; t <= L; t++) {
      let whole = topEigen(rowsAt[t]) * before[t];
      const ratio = Array.from({ length: outputs }, (_, j) => (j === cls ? 0 : differenceNorm(rowsAt[t], j) * before[t]));
      // The input of layer t also lies in its box: |rᵀ w| ≤ Σ_i |r_i|·dev_i.
      const change = ratio.map((v, j) => {
        if (j === cls) return 0;
        let boxed = 0;
        const rc = rowsAt[t][cls];
        const rj = rowsAt[t][j];
        for (let i = 0; i < rc.length; i++) boxed += Math.abs(rc[i] - rj[i]) * deviation[t][i];
        return Math.min(v * eps, boxed);
      });
      for (const term of corrections) {
        if (term.index < t) continue;
        whole += term.sensitivity * term.spread * term.before;
        const r = termRatio.get(term.index)!;
        const c = termChange.get(term.index)!;
        for (let j = 0; j < outputs; j++) {
          ratio[j] += r[j];
          change[j] += c[j];
        }
      }
      decompositionBound = Math.min(decompositionBound ?? Infinity, whole);
      for (let j = 0; j < outputs; j++) {
        margin[j] = Math.min(margin[j], ratio[j]);
        marginChange[j] = Math.min(marginChange[j], change[j]);
      }
    }
    for (let j = 0; j < outputs; j++) {
      marginBounds[j] = Math.min(marginBounds[j], margin[j]);
      marginChange[j] = Math.min(marginChange[j], eps * marginBounds[j]);
    }
  }

  const quality = worstQuality([...layers.map((l) => l.quality), ...reports.map((r) => r.quality)]);
  const failureProbability = quality === 'estimate' ? undefined : reports.reduce((a, r) => a + (r.failureProbability ?? 0), 0);
  return {
    bound: Math.min(productBound, decompositionBound ?? Infinity),
    quality,
    layers,
    seconds: (performance.now() - start) / 1000,
    method: 'tight',
    failureProbability,
    productBound,
    decompositionBound,
    corrections: corrections.sort((a, b) => a.index - b.index),
    marginBounds,
    marginChange,
    marginClass: cls,
  };
}

/** What prefixChangeBound needs of the layers before the one it bounds. */
interface PrefixContext {
  network: Network;
  backend: Backend;
  states: LayerState[];
  spreads: Map<number, { spread: number; unstable: number; from: number }>;
  deviation: Float32Array[];
  layers: LayerBound[];
  eps: number;
}

/**
 * An upper bound of |gᵀ (x_l − x0_l)| over the ball, for a vector g at the input of layer l: the
 * decomposition of §2 on the layers before l, split at every t ≤ l, each term in its smallest form
 * (ratio with the layer product, the box of layer t, or the absolute linearisation errors).
 */
async function prefixChangeBound(context: PrefixContext, l: number, row: Float32Array, mask: Float32Array | null): Promise<number> {
  const { network, backend, states, spreads, deviation, layers, eps } = context;
  const product = (t: number) => layers.slice(0, t).reduce((p, x) => p * x.bound, 1);
  const boxNorm = (t: number) => Math.sqrt(deviation[t].reduce((a, v) => a + v * v, 0));
  const main = (g: ArrayLike<number>, t: number) => {
    let n2 = 0;
    let boxed = 0;
    for (let i = 0; i < g.length; i++) {
      n2 += g[i] * g[i];
      boxed += Math.abs(g[i]) * deviation[t][i];
    }
    return Math.min(Math.sqrt(n2) * product(t) * eps, boxed);
  };
  let g: Float32Array<ArrayBufferLike> = row;
  if (mask) g = g.map((v, i) => (mask[i] === 0 ? 0 : v));
  let best = main(g, l);
  let corrections = 0;
  for (let k = l - 1; k >= 0; k--) {
    const state = states[k];
    const s = spreads.get(k);
    if (s && state.unstable && state.errors) {
      let n2 = 0;
      let absolute = 0;
      state.unstable.forEach((u, idx) => {
        n2 += g[u] * g[u];
        absolute += Math.abs(g[u]) * state.errors![idx];
      });
      const sensitivity = Math.sqrt(n2) * s.spread;
      corrections += Math.min(sensitivity * product(s.from) * eps, sensitivity * boxNorm(s.from), absolute);
    }
    g = await backwardStep(backend, network.layers[k], state, g);
    best = Math.min(best, main(g, k) + corrections);
  }
  return best;
}

/** g ↦ gᵀ N_l: one layer of the backward pass through the linearisation (with the input mask). */
async function backwardStep(backend: Backend, layer: Layer, state: LayerState, g: Float32Array): Promise<Float32Array> {
  let out: Float32Array;
  if (isAffine(layer)) {
    const scaled = state.mid ? g.map((v, i) => v * state.mid![i]) : g;
    out = await backend.applyAT(layer, scaled);
  } else if (layer.kind === 'maxpool') {
    out = new Float32Array(size(layer.inputShape));
    state.winner!.forEach((i, o) => {
      if (i >= 0) out[i] += g[o];
    });
  } else if (layer.kind === 'relu') {
    out = g.map((v, i) => v * state.mid![i]);
  } else {
    out = g;
  }
  if (state.mask) for (let i = 0; i < out.length; i++) if (state.mask[i] === 0) out[i] = 0;
  return out;
}

/**
 * max_j (bound on |Δ(y_c − y_j)| over the ε-ball)/δ_j: below 1 iff ε is certified (§3). `gaps[j]`
 * is a lower bound of the exact δ_j = y_c − y_j at x0 (rounding.ts).
 */
export function marginRatio(bound: TightBound, gaps: ArrayLike<number>, eps: number): number {
  let worst = 0;
  for (let j = 0; j < gaps.length; j++) {
    if (j === bound.marginClass) continue;
    const gap = gaps[j];
    const change = Math.min(eps * bound.marginBounds[j], bound.marginChange?.[j] ?? Infinity);
    worst = Math.max(worst, gap > 0 ? change / gap : Infinity);
  }
  return worst;
}
