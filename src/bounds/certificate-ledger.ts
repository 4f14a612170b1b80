/**
 * Certified layer norms kept for reuse on operators they cover (docs/tightness.md §0, "Reuse"):
 * ||Λ' A D'|| ≤ ||Λ A D|| whenever |Λ'| ≤ |Λ| and |D'| ≤ |D| entrywise (Λ' = SΛ and D' = DT with
 * diagonal contractions S, T), so a certificate of the covering operator certifies the covered one,
 * failing only where it fails itself. The radius certification (methods.ts) tries such norms first:
 * the masks and slopes of a smaller ball lie inside a larger ball's, so a certified bound at the
 * user's ε (or an earlier certifying attempt) covers most of its norms without a KW run.
 */
import type { AffineLayer } from '../model/ir.js';
import type { NormPrecision, NormSolver } from './norms.js';
import type { SpectralNormReport } from './types.js';

interface Kept {
  mask: Float32Array | null;
  slopeSquared: Float32Array | null;
  report: SpectralNormReport;
  /** The radius ε of the ball whose bound computed it. */
  ball: number;
  /** The view that computed it: a view answers only from certificates of other views (other bounds). */
  view: number;
}

/** |inner| ≤ |outer| entrywise, null standing for all ones (the identity). */
function covered(inner: Float32Array | null, outer: Float32Array | null): boolean {
  if (inner === null && outer === null) return true;
  if (outer === null) return inner!.every((v) => Math.abs(v) <= 1);
  if (inner === null) return outer.every((v) => Math.abs(v) >= 1);
  if (inner.length !== outer.length) return false;
  for (let i = 0; i < inner.length; i++) if (!(Math.abs(inner[i]) <= Math.abs(outer[i]))) return false;
  return true;
}

/** A NormSolver view of the ledger; `reused` counts the norms it answered from kept certificates. */
export interface LedgerView extends NormSolver {
  readonly reused: number;
}

/** What a view is for: the bound at `ball` (ε), answering from certificates of balls at most `range` × ε when `reuse`. */
export interface ViewOptions {
  ball: number;
  reuse: boolean;
  /** Only certificates of balls at most this many times `ball` answer (default: any). */
  range?: number;
}

/**
 * Bytes of masks and slopes a ledger copies at most (CIFAR-10's bounds keep about 3 MB; VGG-16's
 * largest maps hold 3.2 M units, 25 MB a norm). Beyond it certificates are not kept: reuse is lost
 * for them, never soundness.
 */
export const LEDGER_MAX_BYTES = 128 * 2 ** 20;

/** The certified norms of one certify() call, per layer, with the operators they were computed for. */
export class CertificateLedger {
  private readonly kept = new Map<AffineLayer, Kept[]>();
  private bytes = 0;
  private views = 0;

  constructor(private readonly maxBytes = LEDGER_MAX_BYTES) {}

  /** Certificates held (for tests and reports). */
  get size(): number {
    let n = 0;
    for (const list of this.kept.values()) n += list.length;
    return n;
  }

  /**
   * The smallest kept certificate whose operator covers ||Λ A D|| (Λ² = slopeSquared, D = mask),
   * among those of balls at most `maxBall`: a much larger ball's norms cover a small one's operators
   * but sit far above their own norms (what is answered from them would fail and be computed again);
   * none of view `exclude`'s own.
   */
  private covering(layer: AffineLayer, mask: Float32Array | null, slopeSquared: Float32Array | null, maxBall: number, exclude: number): SpectralNormReport | null {
    let best: SpectralNormReport | null = null;
    for (const k of this.kept.get(layer) ?? []) {
      if (k.ball > maxBall || k.view === exclude || (best && k.report.value >= best.value)) continue;
      if (covered(mask, k.mask) && covered(slopeSquared, k.slopeSquared)) best = k.report;
    }
    return best;
  }

  /**
   * Keep a certified norm; the arrays are copied (up to maxBytes in all). Estimates are never kept,
   * nor norms computed without operator applications (a dense layer's Gram iteration): those cost
   * less to compute afresh than to check, and afresh they fit the smaller operator.
   */
  private keep(layer: AffineLayer, mask: Float32Array | null, slopeSquared: Float32Array | null, report: SpectralNormReport, ball: number, view: number): void {
    if (report.quality === 'estimate' || !(report.iterations > 0)) return;
    const bytes = 4 * ((mask?.length ?? 0) + (slopeSquared?.length ?? 0));
    if (this.bytes + bytes > this.maxBytes) return;
    this.bytes += bytes;
    const list = this.kept.get(layer) ?? [];
    list.push({ mask: mask && Float32Array.from(mask), slopeSquared: slopeSquared && Float32Array.from(slopeSquared), report, ball, view });
    this.kept.set(layer, list);
  }

  /**
   * `solver` for the bound at `ball`, with every certified norm it computes kept; with `reuse`, a
   * norm a kept certificate of another view (of a ball at most range × `ball`) covers is answered
   * from it (its certificate string says so) instead of computed. (Within one bound every norm is
   * computed: its own are not reused, so a view that reused nothing computed the bound afresh.)
   */
  view(solver: NormSolver, { ball, reuse, range = Infinity }: ViewOptions): LedgerView {
    let reused = 0;
    const id = this.views++;
    return {
      get tolerance() {
        return solver.tolerance;
      },
      get reused() {
        return reused;
      },
      norm: async (key: string, layerIndex: number, layer: AffineLayer, mask: Float32Array | null, slopeSquared: Float32Array | null, precision?: NormPrecision) => {
        const cover = reuse ? this.covering(layer, mask, slopeSquared, ball * range, id) : null;
        if (cover) {
          reused++;
          return { ...cover, certificate: `${cover.certificate ?? cover.quality} (of a covering operator)` };
        }
        const report = await solver.norm(key, layerIndex, layer, mask, slopeSquared, precision);
        this.keep(layer, mask, slopeSquared, report, ball, id);
        return report;
      },
      dispose() {},
    };
  }
}
