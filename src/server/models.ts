/**
 * Imported models: their rows, their ONNX files under <dataDir>/models/<sha256>.onnx (written
 * atomically), and the parsed networks of the most recently used ones, kept in memory. Importing
 * the same bytes again returns the existing model. Nothing here computes a bound.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LipcertError } from '../errors.js';
import { type Layer, type Network, parameterCount } from '../model/ir.js';
import { importOnnx } from '../model/onnx-import.js';
import { sha256Hex } from '../store/cache-key.js';
import type { ModelRow, Store } from '../store/db.js';
import { found } from './errors.js';
import type { LayerParams, ModelLayer } from './generated/graphql.js';

const NETWORKS_IN_MEMORY = 4;

/** A layer as the API describes it (its global bound is added from the model's). */
export type LayerDescription = Omit<ModelLayer, 'globalBound' | 'globalBoundQuality' | 'params'> & { params: Omit<Required<LayerParams>, '__typename'> };

export function describeLayer(layer: Layer, index: number): LayerDescription {
  const window = 'kernel' in layer ? layer : null;
  return {
    index,
    kind: layer.kind,
    name: layer.name,
    relu: 'relu' in layer ? layer.relu : layer.kind === 'relu',
    inputShape: layer.inputShape,
    outputShape: layer.outputShape,
    params: {
      kernel: window ? [...window.kernel] : null,
      strides: window ? [...window.strides] : null,
      pads: window ? [...window.pads] : null,
      dilations: 'dilations' in layer ? [...layer.dilations] : null,
      group: layer.kind === 'conv' ? layer.group : null,
      countIncludePad: layer.kind === 'avgpool' ? layer.countIncludePad : null,
      parameterCount: parameterCount({ name: '', inputName: '', inputShape: [], outputShape: [], layers: [layer] }),
    },
  };
}

/** Refuses an upload larger than the limit. */
export function checkUploadSize(bytes: number, what: string, maxBytes: number): void {
  if (bytes > maxBytes) throw new LipcertError('PAYLOAD_TOO_LARGE', `the ${what} is ${bytes} bytes; the limit is ${maxBytes}`);
}

export class Models {
  private readonly networks = new Map<string, Network>();

  constructor(
    private readonly store: Store,
    private readonly maxUploadBytes: number,
  ) {}

  private get prisma() {
    return this.store.prisma;
  }

  list(): Promise<ModelRow[]> {
    return this.prisma.model.findMany({ orderBy: { createdAt: 'asc' } });
  }

  find(id: string): Promise<ModelRow | null> {
    return this.prisma.model.findUnique({ where: { id } });
  }

  async get(id: string): Promise<ModelRow> {
    return found(await this.find(id), 'model', id);
  }

  /** Imports ONNX bytes: `created` is false when the same bytes were imported before. */
  async import(name: string, bytes: Uint8Array): Promise<{ model: ModelRow; created: boolean; layers: number }> {
    checkUploadSize(bytes.byteLength, 'model', this.maxUploadBytes);
    if (!name.trim()) throw new LipcertError('BAD_USER_INPUT', 'the model name is empty');
    const sha256 = sha256Hex(bytes);
    const existing = await this.prisma.model.findUnique({ where: { sha256 } });
    const file = this.fileOf(sha256);
    if (existing) {
      if (!existsSync(file)) await writeAtomically(file, bytes); // restores a lost file
      return { model: existing, created: false, layers: JSON.parse(existing.layers).length };
    }
    let network: Network;
    try {
      network = importOnnx(bytes, name);
    } catch (error) {
      if (error instanceof LipcertError) throw error;
      throw new LipcertError('UNSUPPORTED_MODEL', `could not read the ONNX model: ${(error as Error).message}`);
    }
    await writeAtomically(file, bytes);
    this.remember(sha256, network);
    try {
      const model = await this.prisma.model.create({
        data: {
          id: randomUUID(),
          name,
          sha256,
          inputShape: JSON.stringify(network.inputShape),
          outputShape: JSON.stringify(network.outputShape),
          parameterCount: parameterCount(network),
          layers: JSON.stringify(network.layers.map(describeLayer)),
          globalStatus: 'PENDING',
        },
      });
      return { model, created: true, layers: network.layers.length };
    } catch (error) {
      // A concurrent import of the same bytes won the unique sha256.
      const raced = await this.prisma.model.findUnique({ where: { sha256 } });
      if (raced) return { model: raced, created: false, layers: network.layers.length };
      throw error;
    }
  }

  /** Deletes a model's rows (its inputs, runs and cached results with it) and its file. */
  async remove(model: ModelRow): Promise<void> {
    await this.prisma.$transaction([
      this.prisma.run.deleteMany({ where: { modelId: model.id } }),
      this.prisma.input.deleteMany({ where: { modelId: model.id } }),
      this.prisma.result.deleteMany({ where: { modelSha256: model.sha256 } }),
      this.prisma.model.deleteMany({ where: { id: model.id } }),
    ]);
    this.networks.delete(model.sha256);
    await unlink(this.fileOf(model.sha256)).catch(() => undefined);
  }

  /** The model's network, parsed once per process from its stored ONNX file. */
  async network(model: ModelRow): Promise<Network> {
    const cached = this.networks.get(model.sha256);
    if (cached) {
      this.remember(model.sha256, cached);
      return cached;
    }
    let bytes: Uint8Array;
    try {
      bytes = await readFile(this.fileOf(model.sha256));
    } catch {
      throw new LipcertError('NOT_FOUND', `the ONNX file of model '${model.name}' is missing from the data directory`);
    }
    const network = importOnnx(bytes, model.name);
    this.remember(model.sha256, network);
    return network;
  }

  private fileOf(sha256: string): string {
    return join(this.store.modelsDir, `${sha256}.onnx`);
  }

  /** Keeps the most recently used networks (weights included) in memory. */
  private remember(sha256: string, network: Network): void {
    this.networks.delete(sha256);
    this.networks.set(sha256, network);
    while (this.networks.size > NETWORKS_IN_MEMORY) this.networks.delete(this.networks.keys().next().value!);
  }
}

async function writeAtomically(file: string, bytes: Uint8Array): Promise<void> {
  const partial = `${file}.${randomUUID()}.part`;
  await writeFile(partial, bytes);
  await rename(partial, file);
}
