/**
 * The WebGPU backend: the Backend interface on WGSL kernels through Dawn. Host calls upload,
 * record, read back; the Gram operator keeps everything on the device, so an application of
 * D Aᵀ Λ² A D is five or so dispatches and no read-back — for one vector or a block of B runs alike
 * (each kernel dispatch covers the whole block).
 */
import type { BlockGramOperator, GramOperator } from '../backend.js';
import { BlocksOfOneBackend } from '../blocks-of-one.js';
import type { AffineLayer, MaxPoolLayer, Network } from '../../model/ir.js';
import { size } from '../../model/ir.js';
import { invariant, LipcertError } from '../../errors.js';
import type { AffineMap } from './layers.js';
import { GpuLayers, linearGroups } from './layers.js';
import type { GpuRuntime } from './runtime.js';
import { asGpuBlock, asGpuVector, GpuBlockOps, GpuVectorOps } from './vectors.js';
import { GpuBasisOps } from './basis.js';

export class WebGpuBackend extends BlocksOfOneBackend {
  readonly name = 'webgpu';
  readonly vectors: GpuVectorOps;
  readonly blocks: GpuBlockOps;
  readonly basis: GpuBasisOps;
  private readonly layers: GpuLayers;
  private readonly operators = new Set<GpuGramOperator>();

  constructor(
    private readonly runtime: GpuRuntime,
    readonly adapter: string,
  ) {
    super();
    this.vectors = new GpuVectorOps(runtime);
    this.blocks = new GpuBlockOps(runtime);
    this.basis = new GpuBasisOps(runtime);
    this.layers = new GpuLayers(runtime);
  }

  async prepare(network: Network): Promise<void> {
    const device = this.runtime.device;
    this.layers.retainOnly(new Set(network.layers));
    device.pushErrorScope('out-of-memory');
    try {
      for (const layer of network.layers) this.layers.upload(layer);
    } finally {
      const error = await device.popErrorScope();
      if (error) {
        throw new LipcertError('BACKEND_UNAVAILABLE', `the GPU has too little memory for ${network.name}'s weights (${error.message}); use the CPU backend`);
      }
    }
  }

  async gramOperator(layer: AffineLayer, domainMask: Float32Array | null, slopeSquared: Float32Array | null): Promise<GramOperator> {
    const operator = this.createGram(layer, domainMask, slopeSquared, 1);
    return {
      dim: operator.dim,
      apply: async (x, out) => {
        const [input, output] = [asGpuVector(x), asGpuVector(out)];
        invariant(input.length === operator.dim && output.length === operator.dim, 'Gram operator vector length');
        operator.record(input.buffer, output.buffer);
      },
      dispose: () => operator.dispose(),
    };
  }

  forwardBlock(layer: AffineLayer, x: Float32Array, count: number): Promise<Float32Array> {
    return this.runAffine(layer, 'forward', x, count);
  }

  applyABlock(layer: AffineLayer, v: Float32Array, count: number): Promise<Float32Array> {
    return this.runAffine(layer, 'A', v, count);
  }

  applyATBlock(layer: AffineLayer, u: Float32Array, count: number): Promise<Float32Array> {
    return this.runAffine(layer, 'AT', u, count);
  }

  rowNormsSquaredBlock(layer: AffineLayer, masks: Float32Array, count: number): Promise<Float32Array> {
    return this.runAffine(layer, 'rowNormsSquared', masks, count);
  }

  maxPoolBlock(layer: MaxPoolLayer, x: Float32Array, count: number): Promise<Float32Array> {
    return this.run(x, count, size(layer.inputShape), size(layer.outputShape), (input, output) =>
      this.layers.recordMaxPool(layer, 'forward', input, output, count));
  }

  poolMaskBlock(layer: MaxPoolLayer, masks: Float32Array, count: number): Promise<Float32Array> {
    return this.run(masks, count, size(layer.inputShape), size(layer.outputShape), (input, output) =>
      this.layers.recordMaxPool(layer, 'mask', input, output, count));
  }

  async gramBlockOperator(layer: AffineLayer, domainMasks: Float32Array | null, slopeSquared: Float32Array | null, count: number): Promise<BlockGramOperator> {
    return this.blockOperator(this.createGram(layer, domainMasks, slopeSquared, count));
  }

  private blockOperator(operator: GpuGramOperator): BlockGramOperator {
    const count = operator.count;
    return {
      dim: operator.dim,
      count,
      apply: async (x, out) => {
        const [input, output] = [asGpuBlock(x), asGpuBlock(out)];
        invariant(
          input.count === count && output.count === count && input.dim === operator.dim && output.dim === operator.dim,
          `Gram operator of ${count}×${operator.dim} applied to ${input.count}×${input.dim} → ${output.count}×${output.dim}`,
        );
        operator.record(input.buffer, output.buffer);
      },
      gatherRuns: async (runs) => this.blockOperator(this.track(operator.gather(runs))),
      dispose: () => operator.dispose(),
    };
  }

  async dispose(): Promise<void> {
    for (const operator of [...this.operators]) operator.dispose();
    this.layers.dispose();
    await this.runtime.dispose();
  }

  private createGram(layer: AffineLayer, domainMasks: Float32Array | null, slopeSquared: Float32Array | null, count: number): GpuGramOperator {
    invariant(Number.isInteger(count) && count >= 1, `${count} runs`);
    const [n, m] = [size(layer.inputShape), size(layer.outputShape)];
    invariant(!domainMasks || domainMasks.length === count * n, `domain masks: ${domainMasks?.length} values for ${count}×${n}`);
    invariant(!slopeSquared || slopeSquared.length === count * m, `slopes: ${slopeSquared?.length} values for ${count}×${m}`);
    const mask = domainMasks ? this.runtime.createStorage(count * n, domainMasks, 'D') : null;
    const slopes = slopeSquared ? this.runtime.createStorage(count * m, slopeSquared, 'Λ²') : null;
    return this.track(new GpuGramOperator(this.runtime, this.layers, layer, mask, slopes, count, (op) => this.operators.delete(op)));
  }

  private track(operator: GpuGramOperator): GpuGramOperator {
    this.operators.add(operator);
    return operator;
  }

  private runAffine(layer: AffineLayer, map: AffineMap, input: Float32Array, count: number): Promise<Float32Array> {
    const [inSize, outSize] = map === 'AT' ? [size(layer.outputShape), size(layer.inputShape)] : [size(layer.inputShape), size(layer.outputShape)];
    return this.run(input, count, inSize, outSize, (x, y) => this.layers.recordAffine(layer, map, x, y, count));
  }

  /** Upload `count` inputs, record one operation into a fresh output buffer, read it back. */
  private async run(input: Float32Array, count: number, inSize: number, outSize: number, record: (input: GPUBuffer, output: GPUBuffer) => void): Promise<Float32Array> {
    invariant(Number.isInteger(count) && count >= 1, `${count} vectors`);
    invariant(input.length === count * inSize, `input has ${input.length} values, ${count} vectors of the layer take ${count * inSize}`);
    const x = this.runtime.createStorage(count * inSize, input, 'input');
    const y = this.runtime.createStorage(count * outSize, undefined, 'output');
    record(x, y);
    this.runtime.release(x);
    this.runtime.release(y);
    return this.runtime.read(y, count * outSize);
  }
}

/**
 * out_b ← D_b Aᵀ Λ_b² A D_b x_b for the `count` runs of a block (a vector is a block of one),
 * recorded on the device (docs/method.md, "Computation at scale"): five or so dispatches, no read-back.
 */
class GpuGramOperator {
  readonly dim: number;
  /** count·n */
  private readonly length: number;
  private readonly mask: GPUBuffer | null;
  private readonly slopes: GPUBuffer | null;
  /** D x, when there is a D. */
  private readonly masked: GPUBuffer | null;
  /** A D x, then Λ² A D x. */
  private readonly image: GPUBuffer;
  private disposed = false;

  /** `mask` (count·n) and `slopes` (count·m) become this operator's: dispose releases them. */
  constructor(
    private readonly runtime: GpuRuntime,
    private readonly layers: GpuLayers,
    private readonly layer: AffineLayer,
    mask: GPUBuffer | null,
    slopes: GPUBuffer | null,
    readonly count: number,
    private readonly onDispose: (op: GpuGramOperator) => void,
  ) {
    this.dim = size(layer.inputShape);
    this.length = count * this.dim;
    const outLength = count * size(layer.outputShape);
    this.mask = mask;
    this.slopes = slopes;
    this.masked = mask ? runtime.createStorage(this.length, undefined, 'D x') : null;
    this.image = runtime.createStorage(outLength, undefined, 'A D x');
  }

  /** The operator of the given runs: their masks and slopes copied on the device. */
  gather(runs: readonly number[]): GpuGramOperator {
    invariant(!this.disposed, 'Gram operator used after dispose');
    runs.forEach((run) => invariant(Number.isInteger(run) && run >= 0 && run < this.count, `run ${run} of ${this.count}`));
    const pick = (source: GPUBuffer | null, per: number, label: string) => {
      if (!source) return null;
      const target = this.runtime.createStorage(runs.length * per, undefined, label);
      runs.forEach((run, i) => this.runtime.copy(source, target, 4 * per, 4 * per * run, 4 * per * i));
      return target;
    };
    const m = size(this.layer.outputShape);
    return new GpuGramOperator(this.runtime, this.layers, this.layer, pick(this.mask, this.dim, 'D'), pick(this.slopes, m, 'Λ²'), runs.length, this.onDispose);
  }

  /** Records the application from `input` into `output` (distinct buffers of count·dim). */
  record(input: GPUBuffer, output: GPUBuffer): void {
    invariant(!this.disposed, 'Gram operator used after dispose');
    invariant(input !== output, 'Gram operator: x and out must be distinct');
    const rt = this.runtime;
    let source = input;
    if (this.mask && this.masked) {
      rt.copy(input, this.masked, 4 * this.length);
      this.multiply(this.mask, this.masked, this.length);
      source = this.masked;
    }
    this.layers.recordAffine(this.layer, 'A', source, this.image, this.count);
    if (this.slopes) this.multiply(this.slopes, this.image, this.image.size / 4);
    this.layers.recordAffine(this.layer, 'AT', this.image, output, this.count);
    if (this.mask) this.multiply(this.mask, output, this.length);
  }

  private multiply(diagonal: GPUBuffer, x: GPUBuffer, length: number): void {
    this.runtime.dispatch('multiply', { length }, [diagonal, x], linearGroups(length));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const buffer of [this.mask, this.slopes, this.masked, this.image]) if (buffer) this.runtime.release(buffer);
    this.onDispose(this);
  }
}
