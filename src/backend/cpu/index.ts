/**
 * The CPU backend. Convolutions and large dense layers run through onnxruntime-node's kernels
 * (about 100 GFLOP/s on two threads, against 0.5 for plain JS loops); pooling, diagonal scaling and
 * small dense layers run as JS loops, where a session call would cost more than the arithmetic.
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
  maxPoolForward,
  maxPoolMask,
  scaleApply,
  scaleRowNormsSquared,
} from './js-kernels.js';
import { createLayerSession, type OrtLayer, type OrtOperation, ortVersion, runSingle, tensor } from './onnx-kernels.js';

/** Dense layers with fewer weights than this run as JS loops (an onnxruntime call costs ~0.1 ms). */
const SMALL_DENSE_WEIGHTS = 1 << 16;

/** The layer if onnxruntime runs it (convolutions, large dense layers), else null. */
function ortLayer(layer: AffineLayer): OrtLayer | null {
  return layer.kind === 'conv' || (layer.kind === 'dense' && layer.weight.length >= SMALL_DENSE_WEIGHTS) ? layer : null;
}

function ones(n: number): Float32Array {
  return new Float32Array(n).fill(1);
}

export class CpuBackend implements Backend {
  readonly name = 'cpu';
  readonly adapter: string;
  readonly vectors = cpuVectors;
  private readonly sessions = new Map<OrtLayer, Map<OrtOperation, Promise<ort.InferenceSession>>>();
  private readonly divisors = new Map<AffineLayer, Float32Array>();

  constructor() {
    const cpus = os.cpus();
    this.adapter = `${cpus[0]?.model?.trim() ?? 'CPU'}, ${os.availableParallelism()} threads (onnxruntime-node ${ortVersion})`;
  }

  async prepare(_network: Network): Promise<void> {
    // Sessions are built lazily, per layer and operation, on first use.
  }

  private session(layer: OrtLayer, op: OrtOperation): Promise<ort.InferenceSession> {
    let perLayer = this.sessions.get(layer);
    if (!perLayer) this.sessions.set(layer, (perLayer = new Map()));
    let s = perLayer.get(op);
    if (!s) perLayer.set(op, (s = createLayerSession(layer, op)));
    return s;
  }

  private avgDivisors(layer: AffineLayer & { kind: 'avgpool' }): Float32Array {
    let d = this.divisors.get(layer);
    if (!d) this.divisors.set(layer, (d = avgPoolDivisors(layer)));
    return d;
  }

  async applyA(layer: AffineLayer, v: Float32Array): Promise<Float32Array> {
    const big = ortLayer(layer);
    if (big) return runSingle(await this.session(big, 'linear'), { x: tensor(v, layer.inputShape) });
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
    if (big) return runSingle(await this.session(big, 'transpose'), { u: tensor(u, layer.outputShape) });
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
    const big = ortLayer(layer);
    if (big) return runSingle(await this.session(big, 'rowNormsSquared'), { mask: tensor(mask, layer.inputShape) });
    switch (layer.kind) {
      case 'dense':
        return denseMatVec(layer.weight.map((w) => w * w), layer.outputShape[0], layer.inputShape[0], mask);
      case 'avgpool':
        return avgPoolRowNormsSquared(layer, mask, this.avgDivisors(layer));
      case 'scale':
        return scaleRowNormsSquared(layer, mask);
    }
    invariant(false, `rowNormsSquared: unexpected layer kind ${layer.kind}`);
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
      const s = await this.session(big, 'gram');
      const feeds = { x: tensor(x32, layer.inputShape), d: tensor(d, layer.inputShape), l2: tensor(l2, layer.outputShape) };
      return {
        dim: n,
        async apply(x, out) {
          load(x);
          (out as Float64Array).set(await runSingle(s, feeds));
        },
        dispose() {},
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
    const all = [...this.sessions.values()].flatMap((m) => [...m.values()]);
    this.sessions.clear();
    await Promise.all(all.map(async (s) => (await s).release()));
  }
}

export function createCpuBackend(): Backend {
  return new CpuBackend();
}
