/**
 * The GPU runtime under the WebGPU backend: compiled pipelines, storage buffers, and one pending
 * command encoder that kernels are recorded into. Work is submitted only when something is read
 * back (or the batch grows large), so a Gram operator application or a Lanczos step is one submit.
 * Buffers released while work is pending are destroyed after that work is submitted.
 */
import { invariant, LipcertError } from '../../errors.js';
import { GPUBufferUsageFlags, GPUMapModeFlags, type GpuDevice } from './device.js';
import { PROGRAMS, type ProgramInfo, type ProgramName } from './programs.js';
import { loadShader } from './shader-source.js';

/** GPUShaderStage.COMPUTE */
const COMPUTE_STAGE = 0x4;
const STORAGE_USAGE = GPUBufferUsageFlags.STORAGE | GPUBufferUsageFlags.COPY_SRC | GPUBufferUsageFlags.COPY_DST;
/** Dispatches per submitted batch, so a long chain of vector operations does not grow without bound. */
const MAX_PENDING_DISPATCHES = 512;
/** Bind groups kept at most (a safety valve: releasing a buffer already forgets its own). */
const MAX_CACHED_BIND_GROUPS = 50_000;

interface CompiledProgram {
  info: ProgramInfo;
  pipeline: GPUComputePipeline;
  bindGroupLayout: GPUBindGroupLayout;
}

export type UniformValues = Record<string, number>;

export class GpuRuntime {
  readonly device: GPUDevice;
  readonly maxBindingBytes: number;
  private readonly maxWorkgroupsPerDimension: number;
  private readonly programs = new Map<ProgramName, CompiledProgram>();
  /** Uniform buffers of layer operations, keyed by program and values (they repeat every step). */
  private readonly uniformCache = new Map<string, GPUBuffer>();
  private encoder: GPUCommandEncoder | null = null;
  /** The open compute pass of the pending batch. */
  private pass: GPUComputePassEncoder | null = null;
  /** Bind groups by program and bound buffers, and the keys each buffer appears in. */
  private readonly bindGroups = new Map<string, { group: GPUBindGroup; buffers: GPUBuffer[] }>();
  private readonly bindGroupKeys = new Map<GPUBuffer, Set<string>>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  private pendingDispatches = 0;
  private garbage: GPUBuffer[] = [];
  /** Free one-off uniform buffers by size, and those used by the pending batch. */
  private readonly uniformPool = new Map<number, GPUBuffer[]>();
  private uniformsInBatch: [number, GPUBuffer][] = [];
  /** Free one-off storage buffers (per-run coefficients) by capacity, and those of the pending batch. */
  private readonly transientPool = new Map<number, GPUBuffer[]>();
  private transientsInBatch: [number, GPUBuffer][] = [];
  private readonly scratchBuffers = new Map<string, GPUBuffer>();
  /** Mappable read-back buffers by size, reused. */
  private readonly stagingPool = new Map<number, GPUBuffer[]>();
  private errors: Promise<GPUError | null>[] = [];
  /** Why the device was lost, once it has been (driver reset, out of memory, our dispose). */
  private lostReason: string | null = null;

  private constructor(readonly gpu: GpuDevice, maxBindingBytes: number | undefined) {
    this.device = gpu.device;
    const limits = this.device.limits;
    this.maxBindingBytes = Math.min(maxBindingBytes ?? Infinity, limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    this.maxWorkgroupsPerDimension = limits.maxComputeWorkgroupsPerDimension;
    void this.device.lost.then((info) => {
      this.lostReason = `${info.reason}: ${info.message}`;
    });
  }

  /** Compiles every kernel up front, so a bad shader fails at start-up, not mid-computation. */
  static async create(gpu: GpuDevice, options: { maxBindingBytes?: number } = {}): Promise<GpuRuntime> {
    const runtime = new GpuRuntime(gpu, options.maxBindingBytes);
    await Promise.all((Object.keys(PROGRAMS) as ProgramName[]).map((name) => runtime.compile(name)));
    return runtime;
  }

  private async compile(name: ProgramName): Promise<void> {
    const info: ProgramInfo = PROGRAMS[name];
    const device = this.device;
    const code = loadShader(`${info.key}.wgsl`);
    const declared = /@workgroup_size\(([^)]*)\)/.exec(code)?.[1].split(',').map((n) => Number(n.trim()));
    invariant(
      declared && info.workgroupSize.every((n, i) => n === (declared[i] ?? 1)),
      `${info.key}: the descriptor's workgroup size ${info.workgroupSize} differs from the shader's (${declared})`,
    );
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ label: info.key, code });
    const bindGroupLayout = device.createBindGroupLayout({
      label: info.key,
      entries: [
        { binding: 0, visibility: COMPUTE_STAGE, buffer: { type: 'uniform' } },
        ...info.storage.map((access, i) => ({
          binding: i + 1,
          visibility: COMPUTE_STAGE,
          buffer: { type: access === 'read' ? ('read-only-storage' as const) : ('storage' as const) },
        })),
      ],
    });
    const layout = device.createPipelineLayout({ label: info.key, bindGroupLayouts: [bindGroupLayout] });
    const error = await device.popErrorScope();
    if (error) throw new Error(`WGSL kernel ${info.key}: ${error.message}`);
    const pipeline = await device.createComputePipelineAsync({ label: info.key, layout, compute: { module, entryPoint: 'main' } });
    this.programs.set(name, { info, pipeline, bindGroupLayout });
  }

  // ---- buffers ----

  /** A storage buffer of `length` f32 (zero-filled), or holding `data`. */
  createStorage(length: number, data?: Float32Array, label?: string): GPUBuffer {
    invariant(length > 0, 'empty device buffer');
    if (length * 4 > this.maxBindingBytes) {
      throw new LipcertError(
        'UNSUPPORTED_MODEL',
        `a tensor of ${length} floats (${label ?? 'unnamed'}) exceeds this GPU's largest storage binding ` +
          `(${this.maxBindingBytes} bytes); use the CPU backend`,
      );
    }
    const buffer = this.device.createBuffer({ label, size: length * 4, usage: STORAGE_USAGE, mappedAtCreation: !!data });
    if (data) {
      new Float32Array(buffer.getMappedRange()).set(data);
      buffer.unmap();
    }
    return buffer;
  }

  /** Destroys a buffer once work already recorded with it has been submitted. */
  release(buffer: GPUBuffer): void {
    this.forgetBindGroups(buffer);
    if (this.encoder) this.garbage.push(buffer);
    else buffer.destroy();
  }

  /**
   * The uniform buffer of one dispatch. Recurring values (layer geometry) are cached; one-off values
   * (a Lanczos coefficient) go to a buffer from a pool, written with queue.writeBuffer: each is used
   * by one dispatch of the pending batch and returns to the pool when the batch is submitted (a
   * later write is ordered after that submit on the queue).
   */
  private uniformBuffer(info: ProgramInfo, values: UniformValues, cached: boolean): GPUBuffer {
    const key = cached ? `${info.key}:${info.uniforms.map(([name]) => values[name]).join(',')}` : '';
    const hit = cached ? this.uniformCache.get(key) : undefined;
    if (hit) return hit;
    const bytes = Math.max(16, Math.ceil((info.uniforms.length * 4) / 16) * 16);
    const data = new ArrayBuffer(bytes);
    const asU32 = new Uint32Array(data);
    const asF32 = new Float32Array(data);
    info.uniforms.forEach(([name, type], i) => {
      const value = values[name];
      invariant(value !== undefined && Number.isFinite(value), `${info.key}: uniform ${name} = ${value}`);
      if (type === 'f32') asF32[i] = value;
      else {
        invariant(Number.isInteger(value) && value >= 0 && value < 2 ** 32, `${info.key}: ${name} = ${value} is not a u32`);
        asU32[i] = value;
      }
    });
    if (cached) {
      const buffer = this.device.createBuffer({ label: `${info.key} params`, size: bytes, usage: GPUBufferUsageFlags.UNIFORM, mappedAtCreation: true });
      new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data));
      buffer.unmap();
      this.uniformCache.set(key, buffer);
      return buffer;
    }
    const pool = this.uniformPool.get(bytes) ?? [];
    this.uniformPool.set(bytes, pool);
    const buffer = pool.pop() ?? this.device.createBuffer({ label: 'one-off params', size: bytes, usage: GPUBufferUsageFlags.UNIFORM | GPUBufferUsageFlags.COPY_DST });
    this.device.queue.writeBuffer(buffer, 0, data);
    this.uniformsInBatch.push([bytes, buffer]);
    return buffer;
  }

  /**
   * A scratch storage buffer of at least `length` f32 for use inside one batch that ends in a
   * read-back (dot-product partials and results): one per label, reused (the queue orders the
   * uses) and replaced by one of twice the size when it is too small, so a Lanczos basis that
   * grows by one vector a step does not leave a buffer behind per step.
   */
  scratch(length: number, label: string): GPUBuffer {
    const buffer = this.scratchBuffers.get(label);
    if (buffer && buffer.size >= 4 * length) return buffer;
    if (buffer) this.release(buffer);
    const capacity = Math.min(2 ** Math.ceil(Math.log2(Math.max(length, 256))), Math.floor(this.maxBindingBytes / 4));
    invariant(capacity >= length, `${label}: ${length} floats exceed a storage binding`);
    const grown = this.createStorage(capacity, undefined, label);
    this.scratchBuffers.set(label, grown);
    return grown;
  }

  /**
   * A storage buffer holding `values` for the dispatches of the pending batch (coefficients of a
   * combination, one per run and basis vector): taken from a pool, written with
   * queue.writeBuffer, and returned to the pool when the batch is submitted, like the one-off
   * uniform buffers.
   */
  transientStorage(values: Float32Array): GPUBuffer {
    const capacity = 2 ** Math.ceil(Math.log2(Math.max(values.length, 16)));
    const pool = this.transientPool.get(capacity) ?? [];
    this.transientPool.set(capacity, pool);
    this.pending(); // the buffer returns to the pool when this batch is submitted
    const buffer = pool.pop() ?? this.createStorage(capacity, undefined, 'coefficients');
    this.device.queue.writeBuffer(buffer, 0, values.buffer, values.byteOffset, values.byteLength);
    this.transientsInBatch.push([capacity, buffer]);
    return buffer;
  }

  // ---- recording ----

  private pending(): GPUCommandEncoder {
    if (!this.encoder) {
      this.device.pushErrorScope('validation');
      this.encoder = this.device.createCommandEncoder({ label: 'lipcert batch' });
    }
    return this.encoder;
  }

  /**
   * Records one dispatch of `name` over `workgroups` workgroups (a count, laid out in 2D when it
   * exceeds the per-dimension limit; kernels recover the linear index from num_workgroups), or
   * over an explicit [x, y, z] grid. `cacheUniforms` for values that recur (layer geometry).
   */
  dispatch(
    name: ProgramName,
    uniforms: UniformValues,
    storage: GPUBuffer[],
    workgroups: number | [number, number, number],
    cacheUniforms = true,
  ): void {
    const program = this.programs.get(name);
    invariant(program, `program ${name} not compiled`);
    invariant(storage.length === program.info.storage.length, `${name}: ${storage.length} storage buffers`);
    const encoder = this.pending(); // first, so an uncached uniform buffer is released after submit
    const params = this.uniformBuffer(program.info, uniforms, cacheUniforms);
    const bindGroup = this.bindGroup(name, program, [params, ...storage]);
    const [x, y, z] = typeof workgroups === 'number' ? this.grid(workgroups) : workgroups;
    invariant(Math.max(x, y, z) <= this.maxWorkgroupsPerDimension, `${name}: grid ${x}×${y}×${z} too large`);
    // One compute pass per batch: WebGPU orders the dispatches of a pass (each is its own usage
    // scope), and a pass per dispatch costs as much to encode as the dispatch itself.
    this.pass ??= encoder.beginComputePass({ label: 'lipcert kernels' });
    this.pass.setPipeline(program.pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(x, y, z);
    if (++this.pendingDispatches >= MAX_PENDING_DISPATCHES) this.submit(false);
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  /**
   * The bind group of a dispatch, cached by the buffers it binds (Lanczos binds the same few
   * buffers step after step; creating a bind group costs about as much as encoding the dispatch).
   * Releasing a buffer forgets the bind groups that hold it.
   */
  private bindGroup(name: ProgramName, program: CompiledProgram, buffers: GPUBuffer[]): GPUBindGroup {
    const key = `${name}|${buffers.map((b) => this.bufferId(b)).join(',')}`;
    const hit = this.bindGroups.get(key);
    if (hit) return hit.group;
    if (this.bindGroups.size >= MAX_CACHED_BIND_GROUPS) this.forgetAllBindGroups();
    const group = this.device.createBindGroup({
      layout: program.bindGroupLayout,
      entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const distinct = [...new Set(buffers)];
    this.bindGroups.set(key, { group, buffers: distinct });
    for (const buffer of distinct) {
      let keys = this.bindGroupKeys.get(buffer);
      if (!keys) this.bindGroupKeys.set(buffer, (keys = new Set()));
      keys.add(key);
    }
    return group;
  }

  private bufferId(buffer: GPUBuffer): number {
    let id = this.bufferIds.get(buffer);
    if (id === undefined) this.bufferIds.set(buffer, (id = this.nextBufferId++));
    return id;
  }

  private forgetBindGroups(buffer: GPUBuffer): void {
    for (const key of this.bindGroupKeys.get(buffer) ?? []) {
      const entry = this.bindGroups.get(key);
      this.bindGroups.delete(key);
      for (const other of entry?.buffers ?? []) if (other !== buffer) this.bindGroupKeys.get(other)?.delete(key);
    }
    this.bindGroupKeys.delete(buffer);
  }

  private forgetAllBindGroups(): void {
    this.bindGroups.clear();
    this.bindGroupKeys.clear();
  }

  /**
   * `count` workgroups as a grid [x, y, z] with x·y ≥ count (extra workgroups do nothing), for
   * kernels that recover the linear index from num_workgroups; `z` layers of it (one per group of
   * vectors, for the dense kernels).
   */
  grid(count: number, z = 1): [number, number, number] {
    invariant(count > 0 && z > 0, 'empty dispatch');
    if (count <= this.maxWorkgroupsPerDimension) return [count, 1, z];
    const y = Math.ceil(count / this.maxWorkgroupsPerDimension);
    return [Math.ceil(count / y), y, z];
  }

  /** Copies `bytes` from `source` at `sourceOffset` to `target` at `targetOffset` (bytes, multiples of 4). */
  copy(source: GPUBuffer, target: GPUBuffer, bytes: number, sourceOffset = 0, targetOffset = 0): void {
    const encoder = this.pending();
    this.endPass(); // copies are recorded outside compute passes
    encoder.copyBufferToBuffer(source, sourceOffset, target, targetOffset, bytes);
  }

  /** Submits the pending batch and destroys the buffers released while it was recorded. */
  flush(): void {
    this.submit(true);
  }

  /**
   * Submits the pending batch. `releaseTransients` is false for the automatic submit inside a long
   * chain of dispatches: an operation in progress (a combination over many basis vectors) may
   * still bind its coefficient buffer in its next dispatches, so the coefficient buffers return to
   * their pool only at a submit between operations.
   */
  private submit(releaseTransients: boolean): void {
    if (!this.encoder) return;
    this.endPass();
    this.device.queue.submit([this.encoder.finish()]);
    this.errors.push(this.device.popErrorScope());
    this.encoder = null;
    this.pendingDispatches = 0;
    for (const buffer of this.garbage) buffer.destroy();
    this.garbage = [];
    for (const [bytes, buffer] of this.uniformsInBatch) this.uniformPool.get(bytes)!.push(buffer);
    this.uniformsInBatch = [];
    if (releaseTransients) {
      for (const [capacity, buffer] of this.transientsInBatch) this.transientPool.get(capacity)!.push(buffer);
      this.transientsInBatch = [];
    }
  }

  /** The first `length` floats of a storage buffer (submits pending work first). */
  async read(buffer: GPUBuffer, length: number): Promise<Float32Array> {
    const bytes = length * 4;
    // Small read-backs (dot products, every Lanczos step) reuse their mappable buffers.
    const pooled = bytes <= 4096;
    const pool = this.stagingPool.get(bytes) ?? [];
    if (pooled) this.stagingPool.set(bytes, pool);
    const staging =
      (pooled && pool.pop()) ||
      this.device.createBuffer({ label: 'read-back', size: bytes, usage: GPUBufferUsageFlags.MAP_READ | GPUBufferUsageFlags.COPY_DST });
    this.copy(buffer, staging, bytes);
    this.flush();
    let reusable = false;
    try {
      await this.checkErrors();
      await staging.mapAsync(GPUMapModeFlags.READ).catch((error: Error) => {
        throw this.lostReason ? new LipcertError('BACKEND_UNAVAILABLE', `the GPU device was lost (${this.lostReason})`) : error;
      });
      const values = new Float32Array(staging.getMappedRange().slice(0));
      staging.unmap();
      reusable = pooled;
      return values;
    } finally {
      if (reusable) pool.push(staging);
      else staging.destroy();
    }
  }

  /** Throws the first validation error of the batches submitted since the last check. */
  private async checkErrors(): Promise<void> {
    const errors = await Promise.all(this.errors);
    this.errors = [];
    const first = errors.find((e) => e !== null);
    if (first) throw new Error(`lipcert internal error: WebGPU validation: ${first.message}`);
  }

  async dispose(): Promise<void> {
    this.flush();
    await this.checkErrors().catch(() => undefined);
    for (const buffer of this.uniformCache.values()) buffer.destroy();
    this.uniformCache.clear();
    for (const pool of [...this.uniformPool.values(), ...this.stagingPool.values(), ...this.transientPool.values()]) for (const buffer of pool) buffer.destroy();
    for (const buffer of this.scratchBuffers.values()) buffer.destroy();
    this.forgetAllBindGroups();
    this.uniformPool.clear();
    this.transientPool.clear();
    this.stagingPool.clear();
    this.scratchBuffers.clear();
    this.device.destroy();
  }
}
