/**
 * Nominal inputs x0 of a model: decoded and normalised by the library (parseInputBytes), checked
 * against the model's shape, stored as float32 with their class, margin and logits (one forward
 * pass). The same normalised values again return the existing input.
 */
import { randomUUID } from 'node:crypto';
import { createBackend } from '../backend/select.js';
import { certify } from '../bounds/certify.js';
import type { BackendName } from '../backend/backend.js';
import { LipcertError } from '../errors.js';
import { parseInputBytes } from '../model/input.js';
import { size } from '../model/ir.js';
import { sha256Hex } from '../store/cache-key.js';
import type { InputRow, Store } from '../store/db.js';
import { checkUploadSize, type Models } from './models.js';

export interface AddInputArgs {
  modelId: string;
  name?: string | null;
  bytes: Uint8Array;
  format: 'npy' | 'png';
  mean?: number[] | null;
  std?: number[] | null;
}

/** The float32 values of an input as stored (little-endian bytes). */
export function bytesOf(x: Float32Array): Uint8Array {
  return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
}

/** An input's stored bytes as float32 values. */
export function float32Of(bytes: Uint8Array): Float32Array {
  const copy = new Uint8Array(bytes); // aligned
  return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
}

export class Inputs {
  constructor(
    private readonly store: Store,
    private readonly models: Models,
    private readonly options: { maxUploadBytes: number; backend: BackendName },
  ) {}

  private get prisma() {
    return this.store.prisma;
  }

  of(modelId: string): Promise<InputRow[]> {
    return this.prisma.input.findMany({ where: { modelId }, orderBy: { createdAt: 'asc' } });
  }

  find(id: string): Promise<InputRow | null> {
    return this.prisma.input.findUnique({ where: { id } });
  }

  /** Adds a nominal input; the same normalised values again return the existing input. */
  async add(args: AddInputArgs): Promise<InputRow> {
    checkUploadSize(args.bytes.byteLength, 'input', this.options.maxUploadBytes);
    const model = await this.models.get(args.modelId);
    for (const [label, values] of [['mean', args.mean], ['std', args.std]] as const) {
      if (values && !values.every((v) => Number.isFinite(v))) throw new LipcertError('BAD_USER_INPUT', `${label} must be finite numbers`);
    }
    if (args.std?.some((s) => s === 0)) throw new LipcertError('BAD_USER_INPUT', 'std must not be zero');
    const network = await this.models.network(model);
    let x0: Float32Array;
    try {
      x0 = parseInputBytes(args.bytes, args.format, network, { mean: args.mean ?? undefined, std: args.std ?? undefined });
    } catch (error) {
      if (error instanceof LipcertError) throw error;
      throw new LipcertError('BAD_USER_INPUT', `could not read the ${args.format} input: ${(error as Error).message}`);
    }
    const expected = size(network.inputShape);
    if (x0.length !== expected) {
      throw new LipcertError('BAD_USER_INPUT', `the input has ${x0.length} values; the model expects ${expected} (shape [${network.inputShape.join(', ')}])`);
    }
    if (!x0.every((v) => Number.isFinite(v))) throw new LipcertError('BAD_USER_INPUT', 'the input contains NaN or infinite values');
    const sha256 = sha256Hex(bytesOf(x0));
    const where = { modelId_sha256: { modelId: model.id, sha256 } };
    const existing = await this.prisma.input.findUnique({ where });
    if (existing) return existing;

    // One forward pass (no bounds) gives the class and margin the frontends show.
    const backend = await createBackend(this.options.backend, network);
    let forward: Awaited<ReturnType<typeof certify>>;
    try {
      forward = await certify(network, x0, backend, { eps: [] });
    } finally {
      await backend.dispose().catch(() => undefined);
    }
    try {
      return await this.prisma.input.create({
        data: {
          id: randomUUID(),
          modelId: model.id,
          name: args.name ?? null,
          sha256,
          shape: JSON.stringify(network.inputShape),
          data: new Uint8Array(bytesOf(x0)),
          predictedClass: forward.class,
          margin: forward.margin,
          logits: JSON.stringify(forward.logits),
        },
      });
    } catch (error) {
      const raced = await this.prisma.input.findUnique({ where });
      if (raced) return raced;
      throw error;
    }
  }
}
