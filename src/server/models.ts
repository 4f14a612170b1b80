/**
 * Imported models: their rows, their ONNX files under <dataDir>/models/<sha256>.onnx (written
 * atomically), and the parsed networks of the most recently used ones, kept in memory. Importing
 * the same bytes again returns the existing model. A model whose analysis would need more memory
 * than the limit is refused before its file is written (resources.ts). Work on a model (starting a
 * run, adding an input) goes through `use()`, and a deletion waits for that work and refuses new
 * work (NOT_FOUND) from its first moment: the two never interleave. Nothing here computes a bound.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_CERTIFICATE, DEFAULT_DELTA } from '../bounds/defaults.js';
import { LipcertError } from '../errors.js';
import { activationName, activationOf } from '../model/activations.js';
import { type Layer, type Network, parameterCount } from '../model/ir.js';
import { importOnnx } from '../model/onnx-import.js';
import { type AnalysisShape, checkResources, type ResourceLimits } from '../resources.js';
import { sha256Hex } from '../store/cache-key.js';
import type { ModelRow, Store } from '../store/db.js';
import { found, notFound } from './errors.js';
import type { LayerParams, ModelLayer } from './generated/graphql.js';

const NETWORKS_IN_MEMORY = 4;

/** What the background global bound computes (the defaults): what a model must fit at import. */
export const GLOBAL_BOUND_ANALYSIS: AnalysisShape = { certificate: DEFAULT_CERTIFICATE, delta: DEFAULT_DELTA };

/** A layer as the API describes it (its global bound is added from the model's). */
export type LayerDescription = Omit<ModelLayer, 'globalBound' | 'globalBoundQuality' | 'params'> & { params: Omit<Required<LayerParams>, '__typename'> };

export function describeLayer(layer: Layer, index: number): LayerDescription {
  const window = 'kernel' in layer ? layer : null;
  const activation = activationOf(layer);
  return {
    index,
    kind: layer.kind,
    name: layer.name,
    inputs: layer.inputs ?? [index - 1],
    relu: 'relu' in layer ? layer.relu : layer.kind === 'relu',
    activation: activation && activation.kind !== 'relu' ? activationName(activation) : null,
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
  /** Models being deleted, by id: settled when the deletion is over. */
  private readonly deleting = new Map<string, Promise<unknown>>();
  /** Work in progress on each model (use()), by model id. */
  private readonly inUse = new Map<string, Set<Promise<unknown>>>();

  constructor(
    private readonly store: Store,
    private readonly options: { maxUploadBytes: number; resourceLimits: ResourceLimits },
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

  /**
   * Runs `work` on a model that stays until the work is done: a deletion that begins meanwhile
   * waits for it, and a model being deleted is NOT_FOUND.
   */
  use<T>(id: string, work: (model: ModelRow) => Promise<T>): Promise<T> {
    if (this.deleting.has(id)) return Promise.reject(notFound('model', id));
    // Registered before the first await: a deletion that starts later sees this work.
    const done = (async () => work(await this.get(id)))();
    let uses = this.inUse.get(id);
    if (!uses) this.inUse.set(id, (uses = new Set()));
    uses.add(done);
    const forget = () => {
      uses.delete(done);
      if (uses.size === 0 && this.inUse.get(id) === uses) this.inUse.delete(id);
    };
    done.then(forget, forget);
    return done;
  }

  /**
   * Deletes a model: from now on use() is NOT_FOUND; waits for the work in progress on it, then
   * `settle(model)` (the caller cancels its jobs and waits for them), then removes its rows (its
   * inputs, runs and cached results with it) and its file. Returns the model and its runs' ids.
   */
  delete(id: string, settle: (model: ModelRow) => Promise<void>): Promise<{ model: ModelRow; runIds: string[] }> {
    const pending = this.deleting.get(id);
    if (pending) return pending.then(() => Promise.reject(notFound('model', id)), () => Promise.reject(notFound('model', id)));
    const deletion = (async () => {
      const model = await this.get(id);
      await Promise.allSettled([...(this.inUse.get(id) ?? [])]);
      await settle(model);
      const runs = await this.prisma.run.findMany({ where: { modelId: id }, select: { id: true } });
      await this.remove(model);
      return { model, runIds: runs.map((r) => r.id) };
    })();
    this.deleting.set(id, deletion);
    const forget = () => this.deleting.delete(id);
    deletion.then(forget, forget);
    return deletion;
  }

  /** Refuses (RESOURCE_LIMIT) a model whose analysis of this shape would need more memory than the limit. */
  async checkResources(model: ModelRow, analysis: AnalysisShape): Promise<void> {
    checkResources(await this.network(model), this.options.resourceLimits, analysis);
  }

  /** Imports ONNX bytes: `created` is false when the same bytes were imported before. */
  async import(name: string, bytes: Uint8Array): Promise<{ model: ModelRow; created: boolean; layers: number }> {
    checkUploadSize(bytes.byteLength, 'model', this.options.maxUploadBytes);
    if (!name.trim()) throw new LipcertError('BAD_USER_INPUT', 'the model name is empty');
    const sha256 = sha256Hex(bytes);
    let existing = await this.prisma.model.findUnique({ where: { sha256 } });
    if (existing && this.deleting.has(existing.id)) {
      // The same bytes, being deleted: this import comes after the deletion.
      await this.deleting.get(existing.id)!.catch(() => undefined);
      existing = await this.prisma.model.findUnique({ where: { sha256 } });
    }
    const file = this.fileOf(sha256);
    if (existing) {
      if (!existsSync(file)) await writeAtomically(file, bytes); // restores a lost file
      return { model: existing, created: false, layers: JSON.parse(existing.layers).length };
    }
    const network = importOnnx(bytes, name); // every mistake a LipcertError
    checkResources(network, this.options.resourceLimits, GLOBAL_BOUND_ANALYSIS);
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
  private async remove(model: ModelRow): Promise<void> {
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

  /** Where the ONNX file of a model with these bytes lives (served to workers by sha256). */
  fileOf(sha256: string): string {
    return join(this.store.modelsDir, `${sha256}.onnx`);
  }

  /** Keeps the most recently used networks (weights included) in memory. */
  private remember(sha256: string, network: Network): void {
    this.networks.delete(sha256);
    this.networks.set(sha256, network);
    while (this.networks.size > NETWORKS_IN_MEMORY) this.networks.delete(this.networks.keys().next().value!);
  }
}

export async function writeAtomically(file: string, bytes: Uint8Array): Promise<void> {
  const partial = `${file}.${randomUUID()}.part`;
  await writeFile(partial, bytes);
  await rename(partial, file);
}
