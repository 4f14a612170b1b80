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
import type { AffineLayer, MaxPoolLayer, Network } from '../../model/ir.js';
import { invariant } from '../../errors.js';
import type { Backend, DeviceVector, GramOperator } from '../backend.js';
import { cpuVectors } from './vectors.js';
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
import { createLayerSession, type OrtLayer, type OrtOperation, ortVersion, runSingle, sessionFootprint, tensor } from './onnx-kernels.js';

/**
 * Dense layers with fewer weights than this run as JS loops: below it a session call (~0.03 ms with
 * idle pool threads asleep) costs more than the arithmetic (MNIST's fc1, 30 k weights, is faster
 * through onnxruntime; its fc2, 10 k, in JS).
 */
const SMALL_DENSE_WEIGHTS = 1 << 14;

/** The layer if onnxruntime runs it (convolutions, large dense layers), else null. */
function ortLayer(layer: AffineLayer): OrtLayer | null {
  return layer.kind === 'conv' || (layer.kind === 'dense' && layer.weight.length >= SMALL_DENSE_WEIGHTS) ? layer : null;
}

function ones(n: number): Float32Array {
  return new Float32Array(n).fill(1);
}

/** Default bound on the bytes held by cached sessions. */
export const DEFAULT_SESSION_BUDGET = 2 ** 30;

export interface CpuBackendOptions {
  /** Most bytes (weights plus arenas, estimated) held by cached onnxruntime sessions. */
  sessionBudgetBytes?: number;
}

interface CachedSession {
  session: Promise<ort.InferenceSession>;
  bytes: number;
  /** Holders (live Gram operators, runs in flight): never released while > 0. */
  pins: number;
  lastUse: number;
}

/** Sessions by (layer, operation), bounded in bytes, least recently used released first. */
class SessionCache {
  private readonly entries = new Map<OrtLayer, Map<OrtOperation, CachedSession>>();
  private bytes = 0;
  private clock = 0;

  constructor(private readonly budget: number) {}

  /** The session, pinned: call `unpin` when done with it. */
  acquire(layer: OrtLayer, op: OrtOperation): CachedSession {
    let perLayer = this.entries.get(layer);
    if (!perLayer) this.entries.set(layer, (perLayer = new Map()));
    let entry = perLayer.get(op);
    if (!entry) {
      const bytes = sessionFootprint(layer, op);
      this.evict(bytes);
      entry = { session: createLayerSession(layer, op), bytes, pins: 0, lastUse: 0 };
      perLayer.set(op, entry);
      this.bytes += bytes;
    }
    entry.pins++;
    entry.lastUse = ++this.clock;
    return entry;
  }

  unpin(entry: CachedSession) {
    entry.pins--;
  }

  /** Release unpinned sessions, oldest first, until `incoming` more bytes fit the budget. */
  private evict(incoming: number) {
    if (this.bytes + incoming <= this.budget) return;
    const candidates: [OrtLayer, OrtOperation, CachedSession][] = [];
    for (const [layer, perLayer] of this.entries) for (const [op, e] of perLayer) if (e.pins === 0) candidates.push([layer, op, e]);
    candidates.sort((a, b) => a[2].lastUse - b[2].lastUse);
    for (const [layer, op, e] of candidates) {
      if (this.bytes + incoming <= this.budget) break;
      this.entries.get(layer)!.delete(op);
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

export class CpuBackend implements Backend {
  readonly name = 'cpu';
  readonly adapter: string;
  readonly vectors = cpuVectors;
  private readonly sessions: SessionCache;
  private readonly divisors = new Map<AffineLayer, Float32Array>();

  constructor(options: CpuBackendOptions = {}) {
    const cpus = os.cpus();
    this.adapter = `${cpus[0]?.model?.trim() ?? 'CPU'}, ${os.availableParallelism()} threads (onnxruntime-node ${ortVersion})`;
    this.sessions = new SessionCache(options.sessionBudgetBytes ?? DEFAULT_SESSION_BUDGET);
  }

  async prepare(_network: Network): Promise<void> {
    // Sessions are built lazily, per layer and operation, on first use.
  }

  /** Run one operation's session on `feeds`. */
  private async run(layer: OrtLayer, op: OrtOperation, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
    const entry = this.sessions.acquire(layer, op);
    try {
      return await runSingle(await entry.session, feeds);
    } finally {
      this.sessions.unpin(entry);
    }
  }

  private avgDivisors(layer: AffineLayer & { kind: 'avgpool' }): Float32Array {
    let d = this.divisors.get(layer);
    if (!d) this.divisors.set(layer, (d = avgPoolDivisors(layer)));
    return d;
  }

  async applyA(layer: AffineLayer, v: Float32Array): Promise<Float32Array> {
    const big = ortLayer(layer);
    if (big) return this.run(big, 'linear', { x: tensor(v, layer.inputShape) });
    switch (layer.kind) {
      case 'dense':
        return denseMatVec(layer.weight, layer.outputShape[0], layer.inputShape[0], v);
      case 'avgpool':
        return avgPoolForward(layer, v, this.avgDivisors(layer));
      case 'scale':
        return scaleApply(layer, v, false);
    }
    invariant(false, `applyA: unexpected layer kind ${layer.kind}`);
  }

  async forward(layer: AffineLayer, x: Float32Array): Promise<Float32Array> {
    if (layer.kind === 'scale') return scaleApply(layer, x, true);
    const y = await this.applyA(layer, x);
    if (layer.kind === 'avgpool') return y;
    const out = Float32Array.from(y);
    const perChannel = out.length / layer.bias.length;
    for (let i = 0; i < out.length; i++) out[i] += layer.bias[Math.floor(i / perChannel)];
    return out;
  }

  async applyAT(layer: AffineLayer, u: Float32Array): Promise<Float32Array> {
    const big = ortLayer(layer);
    if (big) return this.run(big, 'transpose', { u: tensor(u, layer.outputShape) });
    switch (layer.kind) {
      case 'dense':
        return denseMatTVec(layer.weight, layer.outputShape[0], layer.inputShape[0], u);
      case 'avgpool':
        return avgPoolTranspose(layer, u, this.avgDivisors(layer));
      case 'scale':
        return scaleApply(layer, u, false); // diagonal: Aᵀ = A
    }
    invariant(false, `applyAT: unexpected layer kind ${layer.kind}`);
  }

  async rowNormsSquared(layer: AffineLayer, mask: Float32Array): Promise<Float32Array> {
    if (layer.kind === 'conv') return this.run(layer, 'rowNormsSquared', { mask: tensor(mask, layer.inputShape) });
    switch (layer.kind) {
      case 'dense':
        return denseRowNormsSquared(layer.weight, layer.outputShape[0], layer.inputShape[0], mask);
      case 'avgpool':
        return avgPoolRowNormsSquared(layer, mask, this.avgDivisors(layer));
      case 'scale':
        return scaleRowNormsSquared(layer, mask);
    }
    invariant(false, `rowNormsSquared: unexpected layer kind ${(layer as AffineLayer).kind}`);
  }

  async maxPool(layer: MaxPoolLayer, x: Float32Array): Promise<Float32Array> {
    return maxPoolForward(layer, x);
  }

  async poolMask(layer: MaxPoolLayer, mask: Float32Array): Promise<Float32Array> {
    return maxPoolMask(layer, mask);
  }

  async gramOperator(layer: AffineLayer, domainMask: Float32Array | null, slopeSquared: Float32Array | null): Promise<GramOperator> {
    const n = layer.inputShape.reduce((a, b) => a * b, 1);
    const m = layer.outputShape.reduce((a, b) => a * b, 1);
    const d = domainMask ?? ones(n);
    const l2 = slopeSquared ?? ones(m);
    const x32 = new Float32Array(n);
    const load = (x: DeviceVector) => {
      const src = x as Float64Array;
      for (let i = 0; i < n; i++) x32[i] = src[i];
    };
    const big = ortLayer(layer);
    if (big) {
      const entry = this.sessions.acquire(big, 'gram');
      const cache = this.sessions;
      let s: ort.InferenceSession;
      try {
        s = await entry.session;
      } catch (e) {
        cache.unpin(entry);
        throw e;
      }
      const feeds = { x: tensor(x32, layer.inputShape), d: tensor(d, layer.inputShape), l2: tensor(l2, layer.outputShape) };
      let disposed = false;
      return {
        dim: n,
        async apply(x, out) {
          load(x);
          (out as Float64Array).set(await runSingle(s, feeds));
        },
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
      async apply(x, out) {
        const src = x as Float64Array;
        for (let i = 0; i < n; i++) x32[i] = src[i] * d[i];
        const y = await backend.applyA(layer, x32);
        for (let i = 0; i < m; i++) y[i] *= l2[i];
        const z = await backend.applyAT(layer, y);
        const o = out as Float64Array;
        for (let i = 0; i < n; i++) o[i] = z[i] * d[i];
      },
      dispose() {},
    };
  }

  async dispose(): Promise<void> {
    await this.sessions.clear();
  }
}

export function createCpuBackend(options: CpuBackendOptions = {}): Backend {
  return new CpuBackend(options);
}
