/**
 * The CPU backend. Convolutions and large dense layers run through onnxruntime-node's kernels
 * (about 100 GFLOP/s on two threads, against 0.5 for plain JS loops); pooling, diagonal scaling and
 * small dense layers run as JS loops, where a session call would cost more than the arithmetic.
 * Dense row norms always run as one JS pass ((W⊙W)·mask squared on the fly): a session would need
 * its own copy of W⊙W, and the pass runs once per ε.
 *
 * Sessions live in a cache bounded in bytes (weights plus arena, `sessionFootprint`): at ImageNet
 * scale (VGG-16: 553 MB of weights, 3.2 M-entry activations) keeping every (layer, operation)
 * session would hold several copies of the weights and one arena per session. The least recently
 * used session that no Gram operator holds is released first.
 */
import os from 'node:os';
import type ort from 'onnxruntime-node';
import { size, type AffineLayer, type MaxPoolLayer, type Network } from '../../model/ir.js';
import { invariant } from '../../errors.js';
import type { Backend, BlockGramOperator, DeviceBlock, GramOperator } from '../backend.js';
import { BlocksOfOneBackend } from '../blocks-of-one.js';
import { asCpuBlock, CpuBlock, cpuBlockVectors, cpuVectors } from './vectors.js';
import { cpuBasisOps } from './basis.js';
import {
  avgPoolDivisors,
  avgPoolForward,
  avgPoolRowNormsSquared,
  avgPoolTranspose,
  denseMatTVec,
  denseMatVec,
  denseRowNormsSquared,
  maxPoolForward,
  maxPoolMask,
  scaleApply,
  scaleRowNormsSquared,
} from './js-kernels.js';
import { type BatchDim, callChunks, createLayerSession, type OrtLayer, type OrtOperation, ortVersion, runSingle, sessionFootprint, tensor } from './onnx-kernels.js';

/**
 * Dense layers whose call (weights × vectors) has fewer multiply-adds than this run as JS loops:
 * below it a session call (~0.03 ms with idle pool threads asleep) costs more than the arithmetic
 * (MNIST's fc1, 30 k weights, is faster through onnxruntime; its fc2, 10 k, in JS). A block of
 * vectors moves small layers onto onnxruntime, whose GEMM reuses each weight across the block.
 */
const SMALL_DENSE_MACS = 1 << 14;

/** The layer if onnxruntime runs it for `count` vectors (convolutions, large dense calls), else null. */
function ortLayer(layer: AffineLayer, count: number): OrtLayer | null {
  return layer.kind === 'conv' || (layer.kind === 'dense' && layer.weight.length * count >= SMALL_DENSE_MACS) ? layer : null;
}

function ones(n: number): Float32Array {
  return new Float32Array(n).fill(1);
}

function checkBlock(what: string, data: ArrayLike<number>, count: number, n: number): void {
  invariant(Number.isInteger(count) && count >= 1, `${what}: ${count} vectors`);
  invariant(data.length === count * n, `${what}: ${data.length} values for ${count} vectors of ${n}`);
}

/** Default bound on the bytes held by cached sessions. */
export const DEFAULT_SESSION_BUDGET = 2 ** 30;

export interface CpuBackendOptions {
  /** Most bytes (weights plus arenas, estimated) held by cached onnxruntime sessions. */
  sessionBudgetBytes?: number;
  /**
   * Most onnxruntime threads one call may use (default: every core). Dataset lanes (dataset/lanes.ts)
   * share the cores out, so that K lanes do not run K × cores threads.
   */
  threads?: number;
}

interface CachedSession {
  session: Promise<ort.InferenceSession>;
  bytes: number;
  /** Holders (live Gram operators, runs in flight): never released while > 0. */
  pins: number;
  lastUse: number;
}

/**
 * Sessions by (layer, operation, batch dimension), bounded in bytes, least recently used released
 * first. Blocks run on a session with a symbolic batch dimension, one vector on a session with
 * batch 1 unless the symbolic one is already there: a symbolic batch costs MNIST's first
 * convolution about 20 µs a call (10%), nothing measurable elsewhere, and one session per layer
 * keeps one copy of the weights.
 */
class SessionCache {
  private readonly entries = new Map<OrtLayer, Map<`${OrtOperation}/${BatchDim}`, CachedSession>>();
  private bytes = 0;
  private clock = 0;

  constructor(
    private readonly budget: number,
    private readonly threads: number,
  ) {}

  /**
   * The session, pinned: call `unpin` when done with it. `count`, the vectors per call, sizes the
   * arena this session will hold.
   */
  acquire(layer: OrtLayer, op: OrtOperation, count: number): CachedSession {
    let perLayer = this.entries.get(layer);
    if (!perLayer) this.entries.set(layer, (perLayer = new Map()));
    const batch: BatchDim = count === 1 && !perLayer.has(`${op}/B`) ? 1 : 'B';
    let entry = perLayer.get(`${op}/${batch}`);
    const bytes = sessionFootprint(layer, op, count);
    if (!entry) {
      this.evict(bytes);
      entry = { session: createLayerSession(layer, op, batch, this.threads), bytes, pins: 0, lastUse: 0 };
      perLayer.set(`${op}/${batch}`, entry);
      this.bytes += bytes;
    }
    entry.pins++;
    entry.lastUse = ++this.clock;
    if (bytes > entry.bytes) {
      // A larger block than before: the session's arena grows (pinned, so not evicted itself).
      this.evict(bytes - entry.bytes);
      this.bytes += bytes - entry.bytes;
      entry.bytes = bytes;
    }
    return entry;
  }

  unpin(entry: CachedSession) {
    entry.pins--;
  }

  /** Release unpinned sessions, oldest first, until `incoming` more bytes fit the budget. */
  private evict(incoming: number) {
    if (this.bytes + incoming <= this.budget) return;
    const candidates: [OrtLayer, `${OrtOperation}/${BatchDim}`, CachedSession][] = [];
    for (const [layer, perLayer] of this.entries) for (const [key, e] of perLayer) if (e.pins === 0) candidates.push([layer, key, e]);
    candidates.sort((a, b) => a[2].lastUse - b[2].lastUse);
    for (const [layer, key, e] of candidates) {
      if (this.bytes + incoming <= this.budget) break;
      this.entries.get(layer)!.delete(key);
      this.bytes -= e.bytes;
      void e.session.then((s) => s.release()).catch(() => {});
    }
  }

  async clear() {
    const all = [...this.entries.values()].flatMap((m) => [...m.values()]);
    this.entries.clear();
    this.bytes = 0;
    await Promise.all(all.map(async (e) => (await e.session).release()));
  }
}

export class CpuBackend extends BlocksOfOneBackend {
  readonly name = 'cpu';
  readonly adapter: string;
  readonly vectors = cpuVectors;
  readonly blocks = cpuBlockVectors;
  readonly basis = cpuBasisOps;
  private readonly sessions: SessionCache;
  private readonly divisors = new Map<AffineLayer, Float32Array>();

  constructor(options: CpuBackendOptions = {}) {
    super();
    const cpus = os.cpus();
    const threads = Math.max(1, Math.floor(options.threads ?? os.availableParallelism()));
    // The threads its onnxruntime calls may use (a dataset lane's or compute thread's share of the cores).
    this.adapter = `${cpus[0]?.model?.trim() ?? 'CPU'}, ${threads} thread${threads === 1 ? '' : 's'} (onnxruntime-node ${ortVersion})`;
    this.sessions = new SessionCache(options.sessionBudgetBytes ?? DEFAULT_SESSION_BUDGET, threads);
  }

  async prepare(_network: Network): Promise<void> {
    // Sessions are built lazily, per layer and operation, on first use.
  }

  /**
   * Run one operation's session on `count` vectors of `input` (shape `inShape` each), whose results
   * have `outSize` values each: one call per chunk of the block (callChunks).
   */
  private async run(layer: OrtLayer, op: Exclude<OrtOperation, 'gram'>, input: Float32Array, count: number): Promise<Float32Array> {
    const [inShape, outShape] = op === 'transpose' ? [layer.outputShape, layer.inputShape] : [layer.inputShape, layer.outputShape];
    const [inSize, outSize] = [size(inShape), size(outShape)];
    const name = { linear: 'x', transpose: 'u', rowNormsSquared: 'mask' }[op];
    const chunks = callChunks(layer, op, count);
    const entry = this.sessions.acquire(layer, op, chunks[0][1]);
    try {
      const session = await entry.session;
      if (chunks.length === 1) return await runSingle(session, { [name]: tensor(input, inShape, count) });
      const out = new Float32Array(count * outSize);
      for (const [first, n] of chunks) {
        out.set(await runSingle(session, { [name]: tensor(input.subarray(first * inSize, (first + n) * inSize), inShape, n) }), first * outSize);
      }
      return out;
    } finally {
      this.sessions.unpin(entry);
    }
  }

  private avgDivisors(layer: AffineLayer & { kind: 'avgpool' }): Float32Array {
    let d = this.divisors.get(layer);
    if (!d) this.divisors.set(layer, (d = avgPoolDivisors(layer)));
    return d;
  }

  /** The Gram operator of one vector: a block of one run, whose block is that vector's array. */
  gramOperator(layer: AffineLayer, domainMask: Float32Array | null, slopeSquared: Float32Array | null): Promise<GramOperator> {
    return this.gramBlockOperator(layer, domainMask, slopeSquared, 1).then(singleRunGram);
  }

  async applyABlock(layer: AffineLayer, v: Float32Array, count: number): Promise<Float32Array> {
    checkBlock('applyA', v, count, size(layer.inputShape));
    const big = ortLayer(layer, count);
    if (big) return this.run(big, 'linear', v, count);
    switch (layer.kind) {
      case 'dense':
        return denseMatVec(layer.weight, layer.outputShape[0], layer.inputShape[0], v, count);
      case 'avgpool':
        return avgPoolForward(layer, v, this.avgDivisors(layer), count);
      case 'scale':
        return scaleApply(layer, v, false);
    }
    invariant(false, `applyA: unexpected layer kind ${layer.kind}`);
  }

  async forwardBlock(layer: AffineLayer, x: Float32Array, count: number): Promise<Float32Array> {
    if (layer.kind === 'scale') {
      checkBlock('forward', x, count, size(layer.inputShape));
      return scaleApply(layer, x, true);
    }
    const y = await this.applyABlock(layer, x, count);
    if (layer.kind === 'avgpool') return y;
    const out = Float32Array.from(y);
    const channels = layer.bias.length;
    const perChannel = size(layer.outputShape) / channels;
    for (let start = 0, c = 0; start < out.length; start += perChannel, c = (c + 1) % channels) {
      const b = layer.bias[c];
      for (let i = start; i < start + perChannel; i++) out[i] += b;
    }
    return out;
  }

  async applyATBlock(layer: AffineLayer, u: Float32Array, count: number): Promise<Float32Array> {
    checkBlock('applyAT', u, count, size(layer.outputShape));
    const big = ortLayer(layer, count);
    if (big) return this.run(big, 'transpose', u, count);
    switch (layer.kind) {
      case 'dense':
        return denseMatTVec(layer.weight, layer.outputShape[0], layer.inputShape[0], u, count);
      case 'avgpool':
        return avgPoolTranspose(layer, u, this.avgDivisors(layer), count);
      case 'scale':
        return scaleApply(layer, u, false); // diagonal: Aᵀ = A
    }
    invariant(false, `applyAT: unexpected layer kind ${layer.kind}`);
  }

  async rowNormsSquaredBlock(layer: AffineLayer, masks: Float32Array, count: number): Promise<Float32Array> {
    checkBlock('rowNormsSquared', masks, count, size(layer.inputShape));
    if (layer.kind === 'conv') return this.run(layer, 'rowNormsSquared', masks, count);
    switch (layer.kind) {
      case 'dense':
        return denseRowNormsSquared(layer.weight, layer.outputShape[0], layer.inputShape[0], masks, count);
      case 'avgpool':
        return avgPoolRowNormsSquared(layer, masks, this.avgDivisors(layer), count);
      case 'scale':
        return scaleRowNormsSquared(layer, masks);
    }
    invariant(false, `rowNormsSquared: unexpected layer kind ${(layer as AffineLayer).kind}`);
  }

  async maxPoolBlock(layer: MaxPoolLayer, x: Float32Array, count: number): Promise<Float32Array> {
    checkBlock('maxPool', x, count, size(layer.inputShape));
    return maxPoolForward(layer, x, count);
  }

  async poolMaskBlock(layer: MaxPoolLayer, masks: Float32Array, count: number): Promise<Float32Array> {
    checkBlock('poolMask', masks, count, size(layer.inputShape));
    return maxPoolMask(layer, masks, count);
  }

  async gramBlockOperator(layer: AffineLayer, domainMasks: Float32Array | null, slopeSquared: Float32Array | null, count: number): Promise<BlockGramOperator> {
    const n = size(layer.inputShape);
    const m = size(layer.outputShape);
    if (domainMasks) checkBlock('gram domain masks', domainMasks, count, n);
    if (slopeSquared) checkBlock('gram slopes', slopeSquared, count, m);
    const d = domainMasks ?? ones(count * n);
    const l2 = slopeSquared ?? ones(count * m);
    const x32 = new Float32Array(count * n);
    // The operator of some of these runs: the same layer with their masks and slopes.
    const gatherRuns = (runs: readonly number[]) =>
      this.gramBlockOperator(layer, domainMasks && gatherRunsOf(domainMasks, n, count, runs), slopeSquared && gatherRunsOf(slopeSquared, m, count, runs), runs.length);
    const check = (x: DeviceBlock, out: DeviceBlock) => {
      invariant(x.count === count && out.count === count && x.dim === n && out.dim === n, `Gram operator of ${count}×${n} applied to ${x.count}×${x.dim} → ${out.count}×${out.dim}`);
      return [asCpuBlock(x).data, asCpuBlock(out).data];
    };
    const big = ortLayer(layer, count);
    if (big) {
      const chunks = callChunks(big, 'gram', count);
      const entry = this.sessions.acquire(big, 'gram', chunks[0][1]);
      const cache = this.sessions;
      let s: ort.InferenceSession;
      try {
        s = await entry.session;
      } catch (e) {
        cache.unpin(entry);
        throw e;
      }
      // One call per chunk of runs, on views of the block (no copies).
      const feeds = chunks.map(([first, runs]) => {
        const view = (a: Float32Array, per: number) => a.subarray(first * per, (first + runs) * per);
        return { x: tensor(view(x32, n), layer.inputShape, runs), d: tensor(view(d, n), layer.inputShape, runs), l2: tensor(view(l2, m), layer.outputShape, runs) };
      });
      let disposed = false;
      return {
        dim: n,
        count,
        async apply(x, out) {
          const [src, dst] = check(x, out);
          for (let i = 0; i < src.length; i++) x32[i] = src[i];
          for (const [i, [first]] of chunks.entries()) dst.set(await runSingle(s, feeds[i]), first * n);
        },
        gatherRuns,
        dispose() {
          if (!disposed) cache.unpin(entry);
          disposed = true;
        },
      };
    }
    // Small layers: D Aᵀ Λ² A D with the JS kernels.
    const backend = this;
    return {
      dim: n,
      count,
      async apply(x, out) {
        const [src, dst] = check(x, out);
        for (let i = 0; i < src.length; i++) x32[i] = src[i] * d[i];
        const y = await backend.applyABlock(layer, x32, count);
        for (let i = 0; i < y.length; i++) y[i] *= l2[i];
        const z = await backend.applyATBlock(layer, y, count);
        for (let i = 0; i < z.length; i++) dst[i] = z[i] * d[i];
      },
      gatherRuns,
      dispose() {},
    };
  }

  async dispose(): Promise<void> {
    await this.sessions.clear();
  }
}

/** The given runs of `count` runs of `per` values each, in that order. */
function gatherRunsOf(data: Float32Array, per: number, count: number, runs: readonly number[]): Float32Array {
  const out = new Float32Array(runs.length * per);
  runs.forEach((run, i) => {
    invariant(Number.isInteger(run) && run >= 0 && run < count, `run ${run} of ${count}`);
    out.set(data.subarray(run * per, (run + 1) * per), i * per);
  });
  return out;
}

/** The single-run view of a Gram operator of one run (a vector is that run's whole block). */
function singleRunGram(op: BlockGramOperator): GramOperator {
  return {
    dim: op.dim,
    apply: (x, out) => op.apply(new CpuBlock(1, op.dim, x as Float64Array), new CpuBlock(1, op.dim, out as Float64Array)),
    dispose: () => op.dispose(),
  };
}

export function createCpuBackend(options: CpuBackendOptions = {}): Backend {
  return new CpuBackend(options);
}
