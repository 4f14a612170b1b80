/**
 * Imported datasets: labelled test sets as .npz (`x`, `y`), checked by the library's readNpz (zip,
 * arrays, dtypes, one integer label per image) but bound to no model, stored like models: the bytes
 * under <dataDir>/datasets/<sha256>.npz (written atomically), a row with the image shape and the
 * normalisation (mean/std). The same bytes with the same normalisation return the existing dataset.
 * A dataset run binds the first `limit` images to its model with the library's bindNpz (layout, label
 * range, per-channel normalisation), which refuses a mismatch with one clear BAD_USER_INPUT.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LipcertError } from '../errors.js';
import { bindNpz, type Dataset, type NpzData, readNpz } from '../model/dataset.js';
import { type Network, size } from '../model/ir.js';
import { sha256Hex } from '../store/cache-key.js';
import type { DatasetRow, Store } from '../store/db.js';
import { found } from './errors.js';
import { checkUploadSize, writeAtomically } from './models.js';

/** Parsed datasets kept in memory (pixels and labels), most recently used first. */
const DATASETS_IN_MEMORY = 2;
const MAX_CHANNELS = 4;

const badInput = (message: string) => new LipcertError('BAD_USER_INPUT', message);

function checkNormalisation(label: 'mean' | 'std', values: number[] | null | undefined): void {
  if (!values) return;
  if (values.length < 1 || values.length > MAX_CHANNELS) throw badInput(`${label} must hold one value, or one per channel (at most ${MAX_CHANNELS}); got ${values.length}`);
  if (!values.every((v) => Number.isFinite(v))) throw badInput(`${label} must be finite numbers`);
  if (label === 'std' && !values.every((v) => v > 0)) throw badInput('std must be positive');
}

export class Datasets {
  private readonly parsed = new Map<string, NpzData>();

  constructor(
    private readonly store: Store,
    private readonly maxUploadBytes: number,
  ) {}

  private get prisma() {
    return this.store.prisma;
  }

  list(): Promise<DatasetRow[]> {
    return this.prisma.dataset.findMany({ orderBy: { createdAt: 'asc' } });
  }

  find(id: string): Promise<DatasetRow | null> {
    return this.prisma.dataset.findUnique({ where: { id } });
  }

  async get(id: string): Promise<DatasetRow> {
    return found(await this.find(id), 'dataset', id);
  }

  /** Imports .npz bytes with their normalisation; the same bytes and normalisation again return the existing dataset. */
  async import(name: string, bytes: Uint8Array, mean?: number[] | null, std?: number[] | null): Promise<DatasetRow> {
    checkUploadSize(bytes.byteLength, 'dataset', this.maxUploadBytes);
    if (!name.trim()) throw badInput('the dataset name is empty');
    checkNormalisation('mean', mean);
    checkNormalisation('std', std);
    const normalisation = JSON.stringify({ mean: mean ?? null, std: std ?? null });
    const sha256 = sha256Hex(bytes);
    const where = { sha256_normalisation: { sha256, normalisation } };
    const existing = await this.prisma.dataset.findUnique({ where });
    const file = this.fileOf(sha256);
    if (existing) {
      if (!existsSync(file)) await writeAtomically(file, bytes); // restores a lost file
      return existing;
    }
    const data = readNpz(bytes, `the .npz file '${name}'`); // BadInputError: one sentence on what is wrong
    await writeAtomically(file, bytes);
    this.remember(sha256, data);
    try {
      return await this.prisma.dataset.create({
        data: {
          id: randomUUID(),
          name,
          sha256,
          count: data.count,
          itemShape: JSON.stringify(data.itemShape),
          pixels: data.pixels,
          mean: mean ? JSON.stringify(mean) : null,
          std: std ? JSON.stringify(std) : null,
          normalisation,
        },
      });
    } catch (error) {
      const raced = await this.prisma.dataset.findUnique({ where }); // a concurrent import of the same
      if (raced) return raced;
      throw error;
    }
  }

  /**
   * The first `limit` images of the dataset as the model's inputs: its layout resolved, labels checked
   * against the model's classes, the dataset's normalisation applied (BAD_USER_INPUT otherwise).
   */
  async bind(dataset: DatasetRow, network: Network, limit: number): Promise<Dataset> {
    const data = await this.data(dataset);
    const perImage = size(data.itemShape);
    const used: NpzData = { ...data, count: limit, labels: data.labels.subarray(0, limit), x: data.x.subarray(0, limit * perImage) as NpzData['x'] };
    const norm = { mean: dataset.mean ? (JSON.parse(dataset.mean) as number[]) : undefined, std: dataset.std ? (JSON.parse(dataset.std) as number[]) : undefined };
    return bindNpz(used, network, norm, `dataset '${dataset.name}'`);
  }

  /** The dataset's arrays, read once per process from its stored file. */
  private async data(dataset: DatasetRow): Promise<NpzData> {
    const cached = this.parsed.get(dataset.sha256);
    if (cached) {
      this.remember(dataset.sha256, cached);
      return cached;
    }
    let bytes: Uint8Array;
    try {
      bytes = await readFile(this.fileOf(dataset.sha256));
    } catch {
      throw new LipcertError('NOT_FOUND', `the .npz file of dataset '${dataset.name}' is missing from the data directory`);
    }
    const data = readNpz(bytes, `dataset '${dataset.name}'`);
    this.remember(dataset.sha256, data);
    return data;
  }

  private fileOf(sha256: string): string {
    return join(this.store.datasetsDir, `${sha256}.npz`);
  }

  private remember(sha256: string, data: NpzData): void {
    this.parsed.delete(sha256);
    this.parsed.set(sha256, data);
    while (this.parsed.size > DATASETS_IN_MEMORY) this.parsed.delete(this.parsed.keys().next().value!);
  }
}
