/**
 * What the GraphQL resolvers call: models, inputs and runs over the store, the compute queue and
 * the result cache. Every number comes from the library (`importOnnx`, `parseInputBytes`,
 * `certify`, `lowerBounds`, `attacks`); this file only decides what to compute, when, and where to
 * keep it.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CancelledError,
  ENGINE_VERSION,
  LipcertError,
  attacks,
  certify,
  createBackend,
  importOnnx,
  lowerBounds,
  parameterCount,
  parseInputBytes,
  type AttackEntry,
  type AttackMethod,
  type Backend,
  type BackendName,
  type CertifyResult,
  type Layer,
  type LowerBoundEntry,
  type Network,
  type NetworkBound,
  type ProgressEvent,
} from '../index.js';
import { ATTACK_METHODS, DEFAULT_ATTACK_STEPS, DEFAULT_MAX_RUNS, DEFAULT_SEARCH_TOLERANCE } from '../bounds/attacks.js';
import { DEFAULT_TOLERANCE } from '../bounds/certify.js';
import { DEFAULT_RESTARTS, DEFAULT_SAMPLES, DEFAULT_SEED, DEFAULT_STEPS } from '../bounds/lower.js';
import { size } from '../model/ir.js';
import { cacheKey, sha256Hex } from '../store/cache-key.js';
import type { InputRow, ModelRow, ResultRow, RunRow, Store } from '../store/db.js';
import { runErrorOf, userError } from './errors.js';
import { RunEvents, isTerminal, type RunEventPayload, type RunStatus } from './events.js';
import { JobQueue } from './queue.js';

/** The method a run computes; part of the cache key. */
const METHOD = 'avant-morgansen-local';
const MAX_EPS = 64;
const PROGRESS_EVENT_MS = 100;
const PROGRESS_SAVE_MS = 1000;
const STOP_TIMEOUT_MS = 10_000;
const NETWORKS_IN_MEMORY = 4;
/** Largest search budgets a run may ask for (each is a loop of forward passes). */
const MAX_LOWER_SAMPLES = 100_000;
const MAX_LOWER_RESTARTS = 1_000;
const MAX_STEPS = 10_000;

export interface ServiceOptions {
  /** Compute jobs at a time (runs and global bounds). */
  concurrency: number;
  /** Largest accepted ONNX model or input file, in decoded bytes. */
  maxUploadBytes: number;
  /** Backend for the global bound computed after an import. */
  backgroundBackend: BackendName;
  /** Backend for the forward pass that gives an input's class and margin. */
  inputBackend: BackendName;
  log: (message: string) => void;
}

export interface LayerDescription {
  index: number;
  kind: string;
  name: string;
  relu: boolean;
  inputShape: number[];
  outputShape: number[];
  params: {
    kernel: number[] | null;
    strides: number[] | null;
    pads: number[] | null;
    dilations: number[] | null;
    group: number | null;
    countIncludePad: boolean | null;
    parameterCount: number;
  };
}

export interface StartRunArgs {
  modelId: string;
  inputId: string;
  eps: number[];
  radius: boolean;
  backend: BackendName;
  tolerance?: number | null;
  /** Also search for lower bounds on L(x0, ε) at each ε. */
  lowerBounds?: boolean;
  lowerSamples?: number | null;
  lowerRestarts?: number | null;
  lowerSteps?: number | null;
  seed?: number | null;
  /** Also run these attacks. */
  attacks?: AttackMethod[] | null;
  attackSteps?: number | null;
}

/** The effective options of a run's lower-bound search (Run.lowerBounds, as JSON). */
export interface LowerSearchOptions {
  samples: number;
  restarts: number;
  steps: number;
  seed: number;
}

/** The effective options of a run's attacks (Run.attacks, as JSON); methods in ATTACK_METHODS order. */
export interface AttackSearchOptions {
  methods: AttackMethod[];
  steps: number;
  tolerance: number;
  maxRuns: number;
}

/** What a run computes and the cache keeps: certify()'s result, with the searches the run asked for. */
export type RunResult = CertifyResult & { lowerBounds?: LowerBoundEntry[]; attacks?: AttackEntry[] };

interface RunProgress {
  phase: string;
  fraction: number;
  message: string;
}

export interface AddInputArgs {
  modelId: string;
  name?: string | null;
  bytes: Uint8Array;
  format: 'npy' | 'png';
  mean?: number[] | null;
  std?: number[] | null;
}

interface LiveState {
  status: RunStatus;
  progress: number;
  message: string;
  phase: string | null;
  lastPublish: number;
  lastSave: number;
}

/** A run that is queued or running in this process. */
interface ActiveRun {
  runId: string;
  modelId: string;
  key: string;
  settled: Promise<void>;
  settle: () => void;
}

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

function bytesOf(x: Float32Array): Uint8Array {
  return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
}

function float32Of(bytes: Uint8Array): Float32Array {
  const copy = new Uint8Array(bytes); // aligned
  return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
}

/** A search budget: an integer from 1 to `max`, or `fallback` when not given. */
function budget(value: number | null | undefined, name: string, max: number, fallback: number): number {
  if (value == null) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw userError('BAD_USER_INPUT', `${name} must be an integer from 1 to ${max} (got ${value})`);
  }
  return value;
}

/** The searches a startRun asks for, with defaults filled in; null where it asks for none. */
function searchOptions(args: StartRunArgs): { lower: LowerSearchOptions | null; attack: AttackSearchOptions | null } {
  const unused = (names: (keyof StartRunArgs)[], without: string) => {
    const given = names.filter((name) => args[name] != null);
    if (given.length > 0) throw userError('BAD_USER_INPUT', `${given.join(', ')} given without ${without}`);
  };
  let lower: LowerSearchOptions | null = null;
  if (args.lowerBounds) {
    if (args.eps.length === 0) throw userError('BAD_USER_INPUT', 'lower bounds are searched at the run\'s eps: give at least one eps');
    const seed = args.seed ?? DEFAULT_SEED;
    if (!Number.isInteger(seed)) throw userError('BAD_USER_INPUT', `seed must be an integer (got ${seed})`);
    lower = {
      samples: budget(args.lowerSamples, 'lowerSamples', MAX_LOWER_SAMPLES, DEFAULT_SAMPLES),
      restarts: budget(args.lowerRestarts, 'lowerRestarts', MAX_LOWER_RESTARTS, DEFAULT_RESTARTS),
      steps: budget(args.lowerSteps, 'lowerSteps', MAX_STEPS, DEFAULT_STEPS),
      seed,
    };
  } else {
    unused(['lowerSamples', 'lowerRestarts', 'lowerSteps', 'seed'], 'lowerBounds: true');
  }
  let attack: AttackSearchOptions | null = null;
  const methods = args.attacks ?? [];
  for (const m of methods) if (!ATTACK_METHODS.includes(m)) throw userError('BAD_USER_INPUT', `unknown attack '${m}'`);
  if (methods.length > 0) {
    attack = {
      // One order whatever the request's: [PGD, FGSM] and [FGSM, PGD, PGD] are the same request.
      methods: ATTACK_METHODS.filter((m) => methods.includes(m)),
      steps: budget(args.attackSteps, 'attackSteps', MAX_STEPS, DEFAULT_ATTACK_STEPS),
      tolerance: DEFAULT_SEARCH_TOLERANCE,
      maxRuns: DEFAULT_MAX_RUNS,
    };
  } else {
    unused(['attackSteps'], 'attacks');
  }
  return { lower, attack };
}

export class LipcertService {
  readonly events = new RunEvents();
  readonly queue: JobQueue;
  /** Counters for tests and logs: how much was actually computed. */
  readonly stats = { runsComputed: 0, globalBoundsComputed: 0, cacheHits: 0, joined: 0 };
  private readonly networks = new Map<string, Network>();
  private readonly live = new Map<string, LiveState>();
  /** Active runs by cache key (a duplicate request joins) and by run id. */
  private readonly activeByKey = new Map<string, ActiveRun>();
  private readonly activeById = new Map<string, ActiveRun>();
  /** startRun calls past their lookups but before their run exists, by key (joins them too). */
  private readonly starting = new Map<string, Promise<RunRow>>();
  private nextSeq = 1;
  private stopping = false;

  constructor(
    readonly store: Store,
    readonly options: ServiceOptions,
  ) {
    this.queue = new JobQueue(options.concurrency);
  }

  private get prisma() {
    return this.store.prisma;
  }

  /**
   * After a start: runs left RUNNING by a crash are FAILED with a reason; QUEUED runs and pending
   * global bounds are queued again, oldest first.
   */
  async recover(): Promise<{ interrupted: number; requeued: number }> {
    const max = await this.prisma.run.aggregate({ _max: { seq: true } });
    this.nextSeq = (max._max.seq ?? 0) + 1;
    const interrupted = await this.prisma.run.updateMany({
      where: { status: 'RUNNING' },
      data: {
        status: 'FAILED',
        errorCode: 'INTERRUPTED',
        errorMessage: 'the server stopped while this run was running (crash or kill); start it again',
        finishedAt: new Date(),
      },
    });
    const models = await this.prisma.model.findMany({
      where: { globalStatus: { in: ['PENDING', 'RUNNING'] } },
      orderBy: { createdAt: 'asc' },
    });
    for (const m of models) {
      await this.prisma.model.update({ where: { id: m.id }, data: { globalStatus: 'PENDING' } });
      this.enqueueGlobal(m.id);
    }
    const queued = await this.prisma.run.findMany({ where: { status: 'QUEUED' }, orderBy: { seq: 'asc' } });
    for (const run of queued) this.enqueueRun(run);
    if (interrupted.count > 0) this.options.log(`marked ${interrupted.count} interrupted run(s) FAILED`);
    if (queued.length > 0) this.options.log(`queued ${queued.length} run(s) again`);
    return { interrupted: interrupted.count, requeued: queued.length };
  }

  // ---- models ---------------------------------------------------------------------------------

  listModels(): Promise<ModelRow[]> {
    return this.prisma.model.findMany({ orderBy: { createdAt: 'asc' } });
  }

  findModel(id: string): Promise<ModelRow | null> {
    return this.prisma.model.findUnique({ where: { id } });
  }

  async getModel(id: string): Promise<ModelRow> {
    const model = await this.findModel(id);
    if (!model) throw userError('NOT_FOUND', `no model with id '${id}'`);
    return model;
  }

  /** Imports ONNX bytes; the same bytes again return the existing model. */
  async importModel(name: string, bytes: Uint8Array): Promise<ModelRow> {
    this.checkSize(bytes.byteLength, 'model');
    if (!name.trim()) throw userError('BAD_USER_INPUT', 'the model name is empty');
    const sha256 = sha256Hex(bytes);
    const existing = await this.prisma.model.findUnique({ where: { sha256 } });
    const file = join(this.store.modelsDir, `${sha256}.onnx`);
    if (existing) {
      if (!existsSync(file)) await this.writeModelFile(file, bytes); // restores a lost file
      return existing;
    }
    let network: Network;
    try {
      network = importOnnx(bytes, name);
    } catch (error) {
      if (error instanceof LipcertError) throw error;
      throw new LipcertError('UNSUPPORTED_MODEL', `could not read the ONNX model: ${(error as Error).message}`);
    }
    await this.writeModelFile(file, bytes);
    this.rememberNetwork(sha256, network);
    let model: ModelRow;
    try {
      model = await this.prisma.model.create({
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
    } catch (error) {
      // A concurrent import of the same bytes won the unique sha256.
      const raced = await this.prisma.model.findUnique({ where: { sha256 } });
      if (raced) return raced;
      throw error;
    }
    this.enqueueGlobal(model.id);
    this.options.log(`imported model '${name}' (${model.id}, ${network.layers.length} layers)`);
    return model;
  }

  private async writeModelFile(file: string, bytes: Uint8Array): Promise<void> {
    const partial = `${file}.${randomUUID()}.part`;
    await writeFile(partial, bytes);
    await rename(partial, file);
  }

  /** Deletes a model with its inputs, runs and cached results, cancelling its jobs first. */
  async deleteModel(id: string): Promise<boolean> {
    const model = await this.getModel(id);
    this.queue.cancel(`global:${id}`);
    const active = [...this.activeById.values()].filter((a) => a.modelId === id);
    for (const a of active) await this.cancelRun(a.runId);
    await this.prisma.$transaction([
      this.prisma.run.deleteMany({ where: { modelId: id } }),
      this.prisma.input.deleteMany({ where: { modelId: id } }),
      this.prisma.result.deleteMany({ where: { modelSha256: model.sha256 } }),
      this.prisma.model.deleteMany({ where: { id } }),
    ]);
    this.networks.delete(model.sha256);
    await unlink(join(this.store.modelsDir, `${model.sha256}.onnx`)).catch(() => undefined);
    this.options.log(`deleted model '${model.name}' (${id})`);
    return true;
  }

  /** The model's network, parsed once per process from its stored ONNX file. */
  private async network(model: ModelRow): Promise<Network> {
    const cached = this.networks.get(model.sha256);
    if (cached) {
      this.rememberNetwork(model.sha256, cached);
      return cached;
    }
    let bytes: Uint8Array;
    try {
      bytes = await readFile(join(this.store.modelsDir, `${model.sha256}.onnx`));
    } catch {
      throw new LipcertError('NOT_FOUND', `the ONNX file of model '${model.name}' is missing from the data directory`);
    }
    const network = importOnnx(bytes, model.name);
    this.rememberNetwork(model.sha256, network);
    return network;
  }

  /** Keeps the most recently used networks (weights included) in memory. */
  private rememberNetwork(sha256: string, network: Network): void {
    this.networks.delete(sha256);
    this.networks.set(sha256, network);
    while (this.networks.size > NETWORKS_IN_MEMORY) this.networks.delete(this.networks.keys().next().value!);
  }

  private enqueueGlobal(modelId: string): void {
    this.queue.push({ id: `global:${modelId}`, run: (signal) => this.computeGlobal(modelId, signal) });
  }

  /** The global bound does not depend on the input: it is computed at a zero input of the model's shape. */
  private async computeGlobal(modelId: string, signal: AbortSignal): Promise<void> {
    const model = await this.findModel(modelId);
    if (!model) return;
    await this.prisma.model.updateMany({ where: { id: modelId }, data: { globalStatus: 'RUNNING' } });
    let backend: Backend | undefined;
    try {
      const network = await this.network(model);
      backend = await createBackend(this.options.backgroundBackend, network);
      if (signal.aborted) throw new CancelledError();
      const result = await certify(network, new Float32Array(size(network.inputShape)), backend, {
        eps: [],
        global: true,
        signal,
      });
      const global = result.global;
      if (!global) throw new Error('lipcert internal error: certify returned no global bound');
      this.stats.globalBoundsComputed++;
      await this.prisma.model.updateMany({
        where: { id: modelId },
        data: {
          globalStatus: 'DONE',
          globalBound: global.bound,
          globalQuality: global.quality,
          globalResult: JSON.stringify(global),
          globalError: null,
        },
      });
      this.options.log(`global bound of '${model.name}': ${global.bound} (${global.quality})`);
    } catch (error) {
      const stopped = this.stopping || signal.aborted;
      const { message } = runErrorOf(error);
      await this.prisma.model
        .updateMany({
          where: { id: modelId },
          data: stopped ? { globalStatus: 'PENDING' } : { globalStatus: 'FAILED', globalError: message },
        })
        .catch(() => undefined);
      if (!stopped) this.options.log(`global bound of '${model.name}' failed: ${message}`);
    } finally {
      await backend?.dispose().catch(() => undefined);
    }
  }

  // ---- inputs ---------------------------------------------------------------------------------

  inputsOf(modelId: string): Promise<InputRow[]> {
    return this.prisma.input.findMany({ where: { modelId }, orderBy: { createdAt: 'asc' } });
  }

  findInput(id: string): Promise<InputRow | null> {
    return this.prisma.input.findUnique({ where: { id } });
  }

  /** Adds a nominal input; the same normalised values again return the existing input. */
  async addInput(args: AddInputArgs): Promise<InputRow> {
    this.checkSize(args.bytes.byteLength, 'input');
    const model = await this.getModel(args.modelId);
    for (const [label, values] of [['mean', args.mean], ['std', args.std]] as const) {
      if (values && !values.every((v) => Number.isFinite(v))) {
        throw userError('BAD_USER_INPUT', `${label} must be finite numbers`);
      }
    }
    if (args.std?.some((s) => s === 0)) throw userError('BAD_USER_INPUT', 'std must not be zero');
    const network = await this.network(model);
    let x0: Float32Array;
    try {
      x0 = parseInputBytes(args.bytes, args.format, network, {
        mean: args.mean ?? undefined,
        std: args.std ?? undefined,
      });
    } catch (error) {
      if (error instanceof LipcertError) throw error;
      throw userError('BAD_USER_INPUT', `could not read the ${args.format} input: ${(error as Error).message}`);
    }
    const expected = size(network.inputShape);
    if (x0.length !== expected) {
      throw userError('BAD_USER_INPUT', `the input has ${x0.length} values; the model expects ${expected} (shape [${network.inputShape.join(', ')}])`);
    }
    if (!x0.every((v) => Number.isFinite(v))) throw userError('BAD_USER_INPUT', 'the input contains NaN or infinite values');
    const sha256 = sha256Hex(bytesOf(x0));
    const existing = await this.prisma.input.findUnique({ where: { modelId_sha256: { modelId: model.id, sha256 } } });
    if (existing) return existing;

    // One forward pass (no bounds) gives the class and margin the frontends show.
    const backend = await createBackend(this.options.inputBackend, network);
    let forward: CertifyResult;
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
      const raced = await this.prisma.input.findUnique({ where: { modelId_sha256: { modelId: model.id, sha256 } } });
      if (raced) return raced;
      throw error;
    }
  }

  // ---- runs -----------------------------------------------------------------------------------

  findRun(id: string): Promise<RunRow | null> {
    return this.prisma.run.findUnique({ where: { id } });
  }

  async getRun(id: string): Promise<RunRow> {
    const run = await this.findRun(id);
    if (!run) throw userError('NOT_FOUND', `no run with id '${id}'`);
    return run;
  }

  /** The state of a run as subscribers see it: in memory while it is active, else from the store. */
  stateOf(run: RunRow): RunEventPayload {
    const live = this.live.get(run.id);
    if (live) return { runId: run.id, status: live.status, progress: live.progress, message: live.message, phase: live.phase };
    return { runId: run.id, status: run.status as RunStatus, progress: run.progress, message: run.message, phase: null };
  }

  async listRuns(args: { modelId?: string | null; status?: string | null; first?: number | null; after?: string | null }) {
    const first = args.first ?? 20;
    if (!Number.isInteger(first) || first < 0 || first > 500) throw userError('BAD_USER_INPUT', '`first` must be an integer from 0 to 500');
    const where: { modelId?: string; status?: string } = {};
    if (args.modelId) where.modelId = args.modelId;
    if (args.status) where.status = args.status;
    let before: number | undefined;
    if (args.after) {
      const decoded = /^run:(\d+)$/.exec(Buffer.from(args.after, 'base64').toString('utf8'));
      if (!decoded) throw userError('BAD_USER_INPUT', '`after` is not a cursor from this server');
      before = Number(decoded[1]);
    }
    const rows = await this.prisma.run.findMany({
      where: before === undefined ? where : { ...where, seq: { lt: before } },
      orderBy: { seq: 'desc' },
      take: first + 1,
    });
    const nodes = rows.slice(0, first);
    const last = nodes.at(-1);
    return {
      nodes,
      totalCount: await this.prisma.run.count({ where }),
      hasNextPage: rows.length > first,
      endCursor: last ? Buffer.from(`run:${last.seq}`).toString('base64') : null,
    };
  }

  /**
   * Starts a run and returns at once: served from the cache (`cached: true`), joined to the same
   * request already queued or running, or queued.
   */
  async startRun(args: StartRunArgs): Promise<RunRow> {
    if (this.stopping) throw userError('BACKEND_UNAVAILABLE', 'the server is stopping');
    const model = await this.getModel(args.modelId);
    const input = await this.findInput(args.inputId);
    if (!input || input.modelId !== model.id) {
      throw userError('NOT_FOUND', `model '${model.id}' has no input with id '${args.inputId}'`);
    }
    if (args.eps.length > MAX_EPS) throw userError('BAD_USER_INPUT', `at most ${MAX_EPS} eps per run`);
    for (const eps of args.eps) {
      if (!Number.isFinite(eps) || eps <= 0) throw userError('BAD_USER_INPUT', `eps must be finite and > 0 (got ${eps})`);
    }
    const { lower, attack } = searchOptions(args);
    if (args.eps.length === 0 && !args.radius && !attack) {
      throw userError('BAD_USER_INPUT', 'nothing to compute: give at least one eps, set radius or ask for attacks');
    }
    const tolerance = args.tolerance ?? undefined;
    if (tolerance !== undefined && !(Number.isFinite(tolerance) && tolerance > 0 && tolerance < 1)) {
      throw userError('BAD_USER_INPUT', `tolerance must be in (0, 1) (got ${tolerance})`);
    }
    const key = cacheKey({
      modelSha256: model.sha256,
      inputSha256: input.sha256,
      eps: args.eps,
      method: METHOD,
      // Effective values: leaving a parameter out and giving its default are the same request.
      // The searches add parameters only when asked for, so a run without them keeps its key.
      params: {
        radius: args.radius,
        tolerance: tolerance ?? DEFAULT_TOLERANCE,
        lowerSamples: lower?.samples,
        lowerRestarts: lower?.restarts,
        lowerSteps: lower?.steps,
        lowerSeed: lower?.seed,
        attacks: attack?.methods.join(','),
        attackSteps: attack?.steps,
        attackTolerance: attack?.tolerance,
        attackMaxRuns: attack?.maxRuns,
      },
      engineVersion: ENGINE_VERSION,
    });

    const active = this.activeByKey.get(key);
    if (active) {
      this.stats.joined++;
      return this.getRun(active.runId);
    }
    const starting = this.starting.get(key);
    if (starting) {
      this.stats.joined++;
      return starting;
    }
    const created = this.createRun(key, args, tolerance, lower, attack);
    this.starting.set(key, created);
    try {
      return await created;
    } finally {
      this.starting.delete(key);
    }
  }

  private async createRun(
    key: string,
    args: StartRunArgs,
    tolerance: number | undefined,
    lower: LowerSearchOptions | null,
    attack: AttackSearchOptions | null,
  ): Promise<RunRow> {
    const base = {
      seq: this.nextSeq++,
      modelId: args.modelId,
      inputId: args.inputId,
      cacheKey: key,
      eps: JSON.stringify(args.eps),
      radius: args.radius,
      tolerance: tolerance ?? null,
      lowerBounds: lower ? JSON.stringify(lower) : null,
      attacks: attack ? JSON.stringify(attack) : null,
      requestedBackend: args.backend,
    };
    const hit = await this.prisma.result.findUnique({ where: { cacheKey: key } });
    if (hit) {
      this.stats.cacheHits++;
      const stored = JSON.parse(hit.result) as CertifyResult;
      const now = new Date();
      return this.prisma.run.create({
        data: {
          ...base,
          id: randomUUID(),
          status: 'SUCCEEDED',
          progress: 1,
          message: 'served from the cache',
          cached: true,
          backend: stored.backend,
          adapter: stored.adapter,
          startedAt: now,
          finishedAt: now,
        },
      });
    }
    const run = await this.prisma.run.create({
      data: { ...base, id: randomUUID(), status: 'QUEUED', message: 'queued' },
    });
    this.enqueueRun(run);
    return run;
  }

  private enqueueRun(run: RunRow): void {
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const active: ActiveRun = { runId: run.id, modelId: run.modelId, key: run.cacheKey, settled, settle };
    this.activeByKey.set(run.cacheKey, active);
    this.activeById.set(run.id, active);
    this.live.set(run.id, { status: 'QUEUED', progress: 0, message: 'queued', phase: null, lastPublish: 0, lastSave: 0 });
    this.queue.push({ id: run.id, run: (signal) => this.execute(run.id, signal) });
  }

  private finishActive(runId: string): void {
    const active = this.activeById.get(runId);
    if (!active) return;
    this.activeById.delete(runId);
    if (this.activeByKey.get(active.key) === active) this.activeByKey.delete(active.key);
    this.live.delete(runId);
    active.settle();
  }

  /** Cancels a queued or running run; a finished run is returned unchanged. */
  async cancelRun(id: string): Promise<RunRow> {
    const run = await this.getRun(id);
    if (isTerminal(run.status as RunStatus) && !this.activeById.has(id)) return run;
    const where = this.queue.cancel(id, new CancelledError('cancelled by the user'));
    if (where === 'running') {
      // The job records CANCELLED as soon as certify notices the abort.
      await this.activeById.get(id)?.settled;
    } else {
      await this.prisma.run.updateMany({
        where: { id },
        data: {
          status: 'CANCELLED',
          errorCode: 'CANCELLED',
          errorMessage: 'cancelled before it started',
          finishedAt: new Date(),
        },
      });
      this.finishActive(id);
      this.events.publish({ runId: id, status: 'CANCELLED', progress: run.progress, message: 'cancelled', phase: null });
    }
    return this.getRun(id);
  }

  /** Runs one job; if its bookkeeping itself fails (the store), the run still ends FAILED for its subscribers. */
  private async execute(runId: string, signal: AbortSignal): Promise<void> {
    try {
      await this.certifyRun(runId, signal);
    } catch (error) {
      console.error(`lipcert: run ${runId} could not be recorded:`, error);
      const failure = runErrorOf(error);
      await this.prisma.run
        .updateMany({
          where: { id: runId },
          data: { status: 'FAILED', errorCode: failure.code, errorMessage: failure.message, finishedAt: new Date() },
        })
        .catch(() => undefined);
      if (this.activeById.has(runId)) {
        this.finishActive(runId);
        this.events.publish({ runId, status: 'FAILED', progress: 0, message: failure.message, phase: null });
      }
    }
  }

  /** One certification: RUNNING → SUCCEEDED (result cached) | FAILED | CANCELLED. */
  private async certifyRun(runId: string, signal: AbortSignal): Promise<void> {
    const run = await this.prisma.run.findUnique({ where: { id: runId }, include: { model: true, input: true } });
    if (!run) {
      this.finishActive(runId);
      return;
    }
    const live = this.live.get(runId) ?? { status: 'QUEUED', progress: 0, message: '', phase: null, lastPublish: 0, lastSave: 0 };
    this.live.set(runId, live);
    Object.assign(live, { status: 'RUNNING', progress: 0, message: 'starting', phase: null });
    await this.prisma.run.updateMany({
      where: { id: runId },
      data: { status: 'RUNNING', startedAt: new Date(), progress: 0, message: 'starting' },
    });
    this.publishLive(runId, live);

    let backend: Backend | undefined;
    let final: { status: RunStatus; message: string; progress: number };
    try {
      this.stats.runsComputed++;
      const network = await this.network(run.model);
      const x0 = float32Of(run.input.data);
      backend = await createBackend(run.requestedBackend as BackendName, network);
      await this.prisma.run.updateMany({ where: { id: runId }, data: { backend: backend.name, adapter: backend.adapter } });
      if (signal.aborted) throw new CancelledError();
      const result = await this.compute(network, x0, backend, run, signal, (event) => this.onProgress(runId, live, event));
      await this.prisma.result.upsert({
        where: { cacheKey: run.cacheKey },
        create: {
          cacheKey: run.cacheKey,
          modelSha256: run.model.sha256,
          inputSha256: run.input.sha256,
          engineVersion: result.engineVersion,
          result: JSON.stringify(result),
          computeSeconds: result.seconds,
        },
        update: {},
      });
      final = { status: 'SUCCEEDED', message: 'done', progress: 1 };
      await this.prisma.run.updateMany({
        where: { id: runId },
        data: { ...final, finishedAt: new Date(), backend: result.backend, adapter: result.adapter },
      });
    } catch (error) {
      const code = error instanceof LipcertError ? error.code : undefined;
      if (this.stopping) {
        // A clean stop: the run starts again at the next start.
        final = { status: 'QUEUED', message: 'interrupted by a server stop; queued again for the next start', progress: 0 };
        await this.prisma.run
          .updateMany({ where: { id: runId }, data: { ...final, startedAt: null, backend: null, adapter: null } })
          .catch(() => undefined);
      } else if (signal.aborted || code === 'CANCELLED') {
        final = { status: 'CANCELLED', message: 'cancelled', progress: live.progress };
        await this.prisma.run
          .updateMany({
            where: { id: runId },
            data: { ...final, errorCode: 'CANCELLED', errorMessage: 'cancelled while running', finishedAt: new Date() },
          })
          .catch(() => undefined);
      } else {
        const failure = runErrorOf(error);
        if (failure.code === 'INTERNAL_SERVER_ERROR') console.error(`lipcert: run ${runId} failed:`, error);
        final = { status: 'FAILED', message: failure.message, progress: live.progress };
        await this.prisma.run
          .updateMany({
            where: { id: runId },
            data: { ...final, errorCode: failure.code, errorMessage: failure.message, finishedAt: new Date() },
          })
          .catch(() => undefined);
      }
    } finally {
      await backend?.dispose().catch(() => undefined);
    }
    this.finishActive(runId);
    this.events.publish({ runId, ...final, phase: null });
  }

  /**
   * certify(), then the lower-bound search at each ε and each attack, as the run asks. Progress
   * counts certify()'s units (three for the global bound and the radius, one per ε), then one per ε
   * of the search and one per attack. The searches are called one ε and one attack at a time to
   * report between them: each (seed, ε, method) has its own random stream, so the entries are
   * those of a single call.
   */
  private async compute(
    network: Network,
    x0: Float32Array,
    backend: Backend,
    run: RunRow,
    signal: AbortSignal,
    report: (event: RunProgress) => void,
  ): Promise<RunResult> {
    const eps = JSON.parse(run.eps) as number[];
    const lower = run.lowerBounds ? (JSON.parse(run.lowerBounds) as LowerSearchOptions) : null;
    const attack = run.attacks ? (JSON.parse(run.attacks) as AttackSearchOptions) : null;
    const certifyUnits = (run.radius ? 3 : 0) + eps.length || 1;
    const units = certifyUnits + (lower ? eps.length : 0) + (attack ? attack.methods.length : 0);
    const searches = lower !== null || attack !== null;
    const certified = await certify(network, x0, backend, {
      eps,
      global: run.radius,
      radius: run.radius,
      tolerance: run.tolerance ?? undefined,
      signal,
      onProgress: (event: ProgressEvent) => {
        if (event.phase === 'done' && searches) return;
        report({ ...event, fraction: (event.fraction * certifyUnits) / units });
      },
    });
    const result: RunResult = { ...certified };
    let unitsDone = certifyUnits;
    if (lower) {
      result.lowerBounds = [];
      for (const [i, e] of eps.entries()) {
        if (signal.aborted) throw new CancelledError();
        report({ phase: 'lower', fraction: unitsDone / units, message: `lower bounds by search at eps ${e} (${i + 1} of ${eps.length})` });
        const found = await lowerBounds(network, x0, backend, { eps: [e], ...lower, signal });
        result.lowerBounds.push(...found.lower);
        result.seconds += found.seconds;
        unitsDone++;
      }
    }
    if (attack) {
      result.attacks = [];
      for (const [i, method] of attack.methods.entries()) {
        if (signal.aborted) throw new CancelledError();
        report({ phase: 'attack', fraction: unitsDone / units, message: `attack ${method.toUpperCase()} (${i + 1} of ${attack.methods.length})` });
        const found = await attacks(network, x0, backend, { methods: [method], steps: attack.steps, tolerance: attack.tolerance, maxRuns: attack.maxRuns, signal });
        result.attacks.push(...found.attacks);
        result.seconds += found.seconds;
        unitsDone++;
      }
    }
    if (searches) report({ phase: 'done', fraction: 1, message: 'done' });
    return result;
  }

  private onProgress(runId: string, live: LiveState, event: RunProgress): void {
    const phaseChanged = event.phase !== live.phase;
    live.progress = Math.min(1, Math.max(0, event.fraction));
    live.message = event.message;
    live.phase = event.phase;
    const now = Date.now();
    if (phaseChanged || now - live.lastPublish >= PROGRESS_EVENT_MS) this.publishLive(runId, live, now);
    if (now - live.lastSave >= PROGRESS_SAVE_MS) {
      live.lastSave = now;
      void this.prisma.run
        .updateMany({ where: { id: runId, status: 'RUNNING' }, data: { progress: live.progress, message: live.message } })
        .catch(() => undefined);
    }
  }

  private publishLive(runId: string, live: LiveState, now = Date.now()): void {
    live.lastPublish = now;
    this.events.publish({ runId, status: live.status, progress: live.progress, message: live.message, phase: live.phase });
  }

  /** The stored result of a succeeded run, and the model's global bound for runs that did not compute one. */
  async resultOf(run: RunRow) {
    if (run.status !== 'SUCCEEDED') return null;
    const row: ResultRow | null = await this.prisma.result.findUnique({ where: { cacheKey: run.cacheKey } });
    if (!row) return null;
    const result = JSON.parse(row.result) as RunResult;
    let globalBound = result.global ?? null;
    if (!globalBound) {
      const model = await this.findModel(run.modelId);
      if (model?.globalResult) globalBound = JSON.parse(model.globalResult) as NetworkBound;
    }
    const radius = result.radius ? { ...result.radius, globalQuality: globalBound?.quality ?? null } : undefined;
    return { ...result, radius, globalBound };
  }

  async computeSecondsOf(run: RunRow): Promise<number | null> {
    if (run.status !== 'SUCCEEDED') return null;
    const row = await this.prisma.result.findUnique({ where: { cacheKey: run.cacheKey }, select: { computeSeconds: true } });
    return row?.computeSeconds ?? null;
  }

  private checkSize(bytes: number, what: string): void {
    if (bytes > this.options.maxUploadBytes) {
      throw userError('PAYLOAD_TOO_LARGE', `the ${what} is ${bytes} bytes; the limit is ${this.options.maxUploadBytes}`);
    }
  }

  /** Aborts running jobs (their runs are queued again for the next start) and forgets the queue. */
  async stop(): Promise<void> {
    this.stopping = true;
    // A job that ignores the abort is left behind: its run stays RUNNING and the next start marks it FAILED.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.queue.stop(new CancelledError('the server is stopping')),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    // Runs that never started stay QUEUED in the store.
    for (const runId of [...this.activeById.keys()]) this.finishActive(runId);
  }
}
