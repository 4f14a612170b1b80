/**
 * Nominal inputs x0 of a model: decoded and normalised by the library (parseInputBytes, which
 * checks the declared size and the normalisation before decoding), checked against the model's
 * shape, stored as float32 with their class, margin and logits (one forward pass, refused with
 * NUMERIC_OVERFLOW where the model's outputs leave floating point). The same normalised values
 * again return the existing input. Adding an input is work on the model (Models.use): a deletion
 * waits for it. The images of a dataset run are inputs too (one run each, with the cache key a
 * single-image run of the same values has).
 */
import { randomUUID } from 'node:crypto';
import { createBackend } from '../backend/select.js';
import { certify } from '../bounds/certify.js';
import type { Backend, BackendName } from '../backend/backend.js';
import { LipcertError } from '../errors.js';
import { parseInputBytes } from '../model/input.js';
import { type Network, size } from '../model/ir.js';
import { sha256Hex } from '../store/cache-key.js';
import type { InputRow, ModelRow, Store } from '../store/db.js';
import { checkUploadSize, type Models } from './models.js';
import { overflowError } from './numbers.js';
import { apiTypes } from './schema.js';

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

  /** The model's inputs, without those added for the images of a dataset run. */
  of(modelId: string): Promise<InputRow[]> {
    return this.prisma.input.findMany({ where: { modelId, datasetId: null }, orderBy: { createdAt: 'asc' } });
  }

  find(id: string): Promise<InputRow | null> {
    return this.prisma.input.findUnique({ where: { id } });
  }

  /** Adds a nominal input; the same normalised values again return the existing input. */
  async add(args: AddInputArgs): Promise<InputRow> {
    checkUploadSize(args.bytes.byteLength, 'input', this.options.maxUploadBytes);
    if (args.format !== 'png' && (args.mean != null || args.std != null)) {
      throw new LipcertError('BAD_USER_INPUT', `mean and std normalise the pixels of a PNG; an .${args.format} array is used as it is, without them`);
    }
    return this.models.use(args.modelId, (model) => this.addTo(model, args));
  }

  private async addTo(model: ModelRow, args: AddInputArgs): Promise<InputRow> {
    const network = await this.models.network(model);
    // Every mistake in the bytes or the normalisation is a BadInputError of the library.
    const x0 = parseInputBytes(args.bytes, args.format, network, { mean: args.mean ?? undefined, std: args.std ?? undefined });
    const expected = size(network.inputShape);
    if (x0.length !== expected) {
      throw new LipcertError('BAD_USER_INPUT', `the input has ${x0.length} values; the model expects ${expected} (shape [${network.inputShape.join(', ')}])`);
    }
    if (!x0.every((v) => Number.isFinite(v))) throw new LipcertError('BAD_USER_INPUT', 'the input contains NaN or infinite values');
    return this.addValues(model, network, x0, { name: args.name ?? null });
  }

  /**
   * Adds normalised values of the model's shape (checked by the caller), with their class and margin
   * from one forward pass on `backend` (or a backend of its own). An input added for a dataset's image
   * (`datasetId`) is not listed among the model's inputs until someone adds the same values directly.
   */
  async addValues(model: ModelRow, network: Network, x0: Float32Array, options: { name: string | null; datasetId?: string; backend?: Backend }): Promise<InputRow> {
    const sha256 = sha256Hex(bytesOf(x0));
    const where = { modelId_sha256: { modelId: model.id, sha256 } };
    const existing = await this.prisma.input.findUnique({ where });
    if (existing) {
      if (existing.datasetId === null || options.datasetId) return existing;
      return this.prisma.input.update({ where, data: { datasetId: null, name: existing.name ?? options.name } });
    }

    // One forward pass (no bounds) gives the class and margin the frontends show.
    const backend = options.backend ?? (await createBackend(this.options.backend, network));
    let forward: Awaited<ReturnType<typeof certify>>;
    try {
      forward = await certify(network, x0, backend, { eps: [] });
    } finally {
      if (!options.backend) await backend.dispose().catch(() => undefined);
    }
    const overflow = overflowError(apiTypes(), 'Input', { predictedClass: forward.class, margin: forward.margin, logits: forward.logits });
    if (overflow) throw overflow;
    try {
      return await this.prisma.input.create({
        data: {
          id: randomUUID(),
          modelId: model.id,
          name: options.name,
          datasetId: options.datasetId ?? null,
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
