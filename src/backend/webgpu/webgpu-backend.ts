/**
 * The WebGPU backend: the Backend interface on WGSL kernels through Dawn. Host calls upload,
 * record, read back; the Gram operator keeps everything on the device, so an application of
 * D Aᵀ Λ² A D is five or so dispatches and no read-back.
 */
import type { Backend, DeviceVector, GramOperator } from '../backend.js';
import type { AffineLayer, MaxPoolLayer, Network } from '../../model/ir.js';
import { size } from '../../model/ir.js';
import { invariant, LipcertError } from '../../errors.js';
import type { AffineMap } from './layers.js';
import { GpuLayers, linearGroups } from './layers.js';
import type { GpuRuntime } from './runtime.js';
import { asGpuVector, GpuVectorOps } from './vectors.js';

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  readonly vectors: GpuVectorOps;
  private readonly layers: GpuLayers;
  private readonly operators = new Set<GpuGramOperator>();

  constructor(
    private readonly runtime: GpuRuntime,
    readonly adapter: string,
  ) {
    this.vectors = new GpuVectorOps(runtime);
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

  forward(layer: AffineLayer, x: Float32Array): Promise<Float32Array> {
    return this.runAffine(layer, 'forward', x);
  }

  applyA(layer: AffineLayer, v: Float32Array): Promise<Float32Array> {
    return this.runAffine(layer, 'A', v);
  }

  applyAT(layer: AffineLayer, u: Float32Array): Promise<Float32Array> {
    return this.runAffine(layer, 'AT', u);
  }

  rowNormsSquared(layer: AffineLayer, mask: Float32Array): Promise<Float32Array> {
    return this.runAffine(layer, 'rowNormsSquared', mask);
  }

  maxPool(layer: MaxPoolLayer, x: Float32Array): Promise<Float32Array> {
    return this.run(x, size(layer.inputShape), size(layer.outputShape), (input, output) =>
      this.layers.recordMaxPool(layer, 'forward', input, output));
  }

  poolMask(layer: MaxPoolLayer, mask: Float32Array): Promise<Float32Array> {
    return this.run(mask, size(layer.inputShape), size(layer.outputShape), (input, output) =>
      this.layers.recordMaxPool(layer, 'mask', input, output));
  }

  async gramOperator(layer: AffineLayer, domainMask: Float32Array | null, slopeSquared: Float32Array | null): Promise<GramOperator> {
    const operator = new GpuGramOperator(this.runtime, this.layers, layer, domainMask, slopeSquared, (op) => this.operators.delete(op));
    this.operators.add(operator);
    return operator;
  }

  async dispose(): Promise<void> {
    for (const operator of [...this.operators]) operator.dispose();
    this.layers.dispose();
    await this.runtime.dispose();
  }

  private runAffine(layer: AffineLayer, map: AffineMap, input: Float32Array): Promise<Float32Array> {
    const [inSize, outSize] = map === 'AT' ? [size(layer.outputShape), size(layer.inputShape)] : [size(layer.inputShape), size(layer.outputShape)];
    return this.run(input, inSize, outSize, (x, y) => this.layers.recordAffine(layer, map, x, y));
  }

  /** Upload `input`, record one operation into a fresh output buffer, read it back. */
  private async run(input: Float32Array, inSize: number, outSize: number, record: (input: GPUBuffer, output: GPUBuffer) => void): Promise<Float32Array> {
    invariant(input.length === inSize, `input has ${input.length} values, the layer takes ${inSize}`);
    const x = this.runtime.createStorage(inSize, input, 'input');
    const y = this.runtime.createStorage(outSize, undefined, 'output');
    record(x, y);
    this.runtime.release(x);
    this.runtime.release(y);
    return this.runtime.read(y, outSize);
  }
}

/** out ← D Aᵀ Λ² A D x, recorded on the device (method.md, "Computation at scale"). */
class GpuGramOperator implements GramOperator {
  readonly dim: number;
  private readonly mask: GPUBuffer | null;
  private readonly slopes: GPUBuffer | null;
  /** D x, when there is a D. */
  private readonly masked: GPUBuffer | null;
  /** A D x, then Λ² A D x. */
  private readonly image: GPUBuffer;
  private disposed = false;

  constructor(
    private readonly runtime: GpuRuntime,
    private readonly layers: GpuLayers,
    private readonly layer: AffineLayer,
    domainMask: Float32Array | null,
    slopeSquared: Float32Array | null,
    private readonly onDispose: (op: GpuGramOperator) => void,
  ) {
    this.dim = size(layer.inputShape);
    const outSize = size(layer.outputShape);
    invariant(!domainMask || domainMask.length === this.dim, 'domain mask length');
    invariant(!slopeSquared || slopeSquared.length === outSize, 'slope length');
    this.mask = domainMask ? runtime.createStorage(this.dim, domainMask, 'D') : null;
    this.slopes = slopeSquared ? runtime.createStorage(outSize, slopeSquared, 'Λ²') : null;
    this.masked = domainMask ? runtime.createStorage(this.dim, undefined, 'D x') : null;
    this.image = runtime.createStorage(outSize, undefined, 'A D x');
  }

  async apply(x: DeviceVector, out: DeviceVector): Promise<void> {
    invariant(!this.disposed, 'Gram operator used after dispose');
    const input = asGpuVector(x);
    const output = asGpuVector(out);
    invariant(input.length === this.dim && output.length === this.dim, 'Gram operator vector length');
    invariant(input.buffer !== output.buffer, 'Gram operator: x and out must be distinct');
    const rt = this.runtime;
    let source = input.buffer;
    if (this.mask && this.masked) {
      rt.copy(input.buffer, this.masked, 4 * this.dim);
      this.multiply(this.mask, this.masked, this.dim);
      source = this.masked;
    }
    this.layers.recordAffine(this.layer, 'A', source, this.image);
    if (this.slopes) this.multiply(this.slopes, this.image, this.image.size / 4);
    this.layers.recordAffine(this.layer, 'AT', this.image, output.buffer);
    if (this.mask) this.multiply(this.mask, output.buffer, this.dim);
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
