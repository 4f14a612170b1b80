/**
 * Dataset runs: the first `limit` images of a dataset certified on a model. Each image is an ordinary
 * run (runs.ts) on an input of its normalised values, so it has its own cache entry — the key a
 * single-image run of those values has — and a repeated or extended dataset run computes only what is
 * new; where runs are computed (this process or workers on Redis) is the run life cycle's business.
 *
 * A driver per active dataset run walks the images in order: the image becomes an input (one forward
 * pass says whether it is classified correctly), then a run with the dataset run's eps, and the
 * certified radius only for a correct image (a misclassified one has radius 0 and no search is spent
 * on it, as in `lipcert dataset`). At most `window` image runs are queued or running at once (a few
 * more than the runs computed at once, so that inputs are prepared while others compute). When an
 * image's run ends its record (imageRecord() of dataset/certify-image.ts, from the run's stored
 * result) is stored once; a run cancelled by someone else or interrupted by a crash is started again;
 * when every image is done, the summary (summarise() of dataset/summary.ts) is stored. Any failed image
 * fails the dataset run (its other images keep their results): a certified accuracy is never computed
 * over fewer images than it claims. Everything is validated before the dataset run is created.
 */
import { randomUUID } from 'node:crypto';
import type { AnalysisResult } from '../analysis/analyse.js';
import type { Backend } from '../backend/backend.js';
import { createBackend } from '../backend/select.js';
import type { BoundQuality } from '../bounds/types.js';
import { imageRecord, type ImageLocalBound, type ImageRecord } from '../dataset/certify-image.js';
import { type DatasetSummary, summarise } from '../dataset/summary.js';
import { LipcertError } from '../errors.js';
import type { Dataset } from '../model/dataset.js';
import type { Network } from '../model/ir.js';
import type { DatasetImageRow, DatasetRow, DatasetRunRow, ModelRow, Store } from '../store/db.js';
import type { Datasets } from './datasets.js';
import { found, runErrorOf } from './errors.js';
import { DatasetRunEvents, type DatasetRunEventPayload, type EventStream, isTerminal, type RunEventPayload, type RunStatus } from './events.js';
import type { MutationStartDatasetRunArgs } from './generated/graphql.js';
import type { Inputs } from './inputs.js';
import type { Models } from './models.js';
import { analysisShape, type RunRequest, runRequest } from './run-request.js';
import type { Runs } from './runs.js';

/** Image runs queued or running at once per dataset run, at most (workers on Redis). */
export const MAX_WINDOW = 256;
/** Runs started for one image at most (a cancelled or interrupted one is started again). */
const MAX_ATTEMPTS = 3;
const PROGRESS_EVENT_MS = 100;
const MAX_PAGE = 500;

export type StartDatasetRunArgs = MutationStartDatasetRunArgs;

/** What each image's run computes (startRun's arguments, defaults filled in). */
export type DatasetRunRequest = Pick<RunRequest, 'eps' | 'radius' | 'method' | 'certificate' | 'delta' | 'seed' | 'tolerance' | 'backend'>;

const badInput = (message: string) => new LipcertError('BAD_USER_INPUT', message);

/** Validates startDatasetRun's arguments other than the ids, with startRun's rules and defaults (eps against the model's global bound, when known). */
export function datasetRunRequest(args: StartDatasetRunArgs, globalBound?: number | null): DatasetRunRequest {
  const eps = args.eps ?? [];
  const radius = args.radius ?? true;
  if (eps.length === 0 && !radius) throw badInput('nothing to compute: give at least one eps or set radius');
  const request = runRequest({ modelId: args.modelId, inputId: '', eps, radius, method: args.method, certificate: args.certificate, delta: args.delta, seed: args.seed, tolerance: args.tolerance, backend: args.backend }, globalBound);
  const { method, certificate, delta, seed, tolerance, backend } = request;
  return { eps, radius, method, certificate, delta, seed, tolerance, backend };
}

export function requestOfDatasetRun(row: DatasetRunRow): DatasetRunRequest {
  return JSON.parse(row.request) as DatasetRunRequest;
}

/** The per-image record a stored DatasetImage row holds (null while it is not done). */
export function recordOf(row: DatasetImageRow): ImageRecord | null {
  if (row.status !== 'DONE' || row.predictedClass === null) return null;
  return {
    index: row.index,
    label: row.label,
    predictedClass: row.predictedClass,
    margin: row.margin ?? 0,
    radius: row.radius,
    quality: row.quality as BoundQuality | null,
    ...(row.failureProbability ? { failureProbability: row.failureProbability } : {}),
    local: row.local ? (JSON.parse(row.local) as ImageLocalBound[]) : [],
    seconds: row.seconds ?? 0,
  };
}

/** What a driver works with, read once. */
interface Context {
  runId: string;
  model: ModelRow;
  dataset: DatasetRow;
  network: Network;
  images: Dataset;
  request: DatasetRunRequest;
  /** One backend for the forward passes that classify the images. */
  backend: Backend;
}

/** An active dataset run in this process. */
interface Driver {
  id: string;
  total: number;
  done: number;
  correct: number;
  cancelled: boolean;
  /** Image runs being followed: run id → image index. */
  active: Map<string, number>;
  streams: Set<EventStream<RunEventPayload>>;
  tasks: Set<Promise<void>>;
  /** Wakes the walk when a window slot frees up. */
  wake: () => void;
  lastPublish: number;
  finished: Promise<void>;
}

export class DatasetRuns {
  readonly events = new DatasetRunEvents();
  private readonly drivers = new Map<string, Driver>();
  private nextSeq = 1;
  private stopping = false;

  constructor(
    private readonly store: Store,
    private readonly models: Models,
    private readonly datasets: Datasets,
    private readonly inputs: Inputs,
    private readonly runs: Runs,
    private readonly options: { window: number; log: (message: string) => void },
  ) {}

  private get prisma() {
    return this.store.prisma;
  }

  find(id: string): Promise<DatasetRunRow | null> {
    return this.prisma.datasetRun.findUnique({ where: { id } });
  }

  async get(id: string): Promise<DatasetRunRow> {
    return found(await this.find(id), 'dataset run', id);
  }

  list(args: { datasetId?: string | null; modelId?: string | null; first?: number | null }): Promise<DatasetRunRow[]> {
    const first = args.first ?? 20;
    if (!Number.isInteger(first) || first < 0 || first > MAX_PAGE) throw badInput(`\`first\` must be an integer from 0 to ${MAX_PAGE}`);
    const where: { datasetId?: string; modelId?: string } = {};
    if (args.datasetId) where.datasetId = args.datasetId;
    if (args.modelId) where.modelId = args.modelId;
    return this.prisma.datasetRun.findMany({ where, orderBy: { seq: 'desc' }, take: first });
  }

  images(id: string, offset = 0, first?: number | null): Promise<DatasetImageRow[]> {
    if (!Number.isInteger(offset) || offset < 0) throw badInput('`offset` must be a non-negative integer');
    if (first != null && (!Number.isInteger(first) || first < 0)) throw badInput('`first` must be a non-negative integer');
    return this.prisma.datasetImage.findMany({ where: { datasetRunId: id }, orderBy: { index: 'asc' }, skip: offset, ...(first == null ? {} : { take: first }) });
  }

  /** Images finished (done or failed) and classified correctly: live while the run is driven here. */
  async progressOf(row: DatasetRunRow): Promise<{ done: number; correct: number }> {
    const driver = this.drivers.get(row.id);
    if (driver) return { done: driver.done, correct: driver.correct };
    const finished = await this.prisma.datasetImage.findMany({ where: { datasetRunId: row.id, status: { in: ['DONE', 'FAILED'] } }, select: { status: true, label: true, predictedClass: true } });
    return { done: finished.length, correct: finished.filter((r) => r.status === 'DONE' && r.predictedClass === r.label).length };
  }

  async stateOf(row: DatasetRunRow): Promise<DatasetRunEventPayload> {
    const { done } = await this.progressOf(row);
    return { datasetRunId: row.id, status: row.status as RunStatus, done, total: row.total, message: messageOf(row.status as RunStatus, done, row.total) };
  }

  summaryOf(row: DatasetRunRow): DatasetSummary | null {
    return row.status === 'SUCCEEDED' && row.summary ? (JSON.parse(row.summary) as DatasetSummary) : null;
  }

  async workersOf(id: string): Promise<string[]> {
    const rows = await this.prisma.datasetImage.findMany({ where: { datasetRunId: id, worker: { not: null } }, distinct: ['worker'], select: { worker: true }, orderBy: { worker: 'asc' } });
    return rows.map((r) => r.worker!);
  }

  /** Checks everything a dataset run needs, creates it and starts driving it; returns at once. */
  async start(args: StartDatasetRunArgs): Promise<DatasetRunRow> {
    if (this.stopping) throw new LipcertError('BACKEND_UNAVAILABLE', 'the server is stopping');
    datasetRunRequest(args); // the arguments' own mistakes before any lookup
    return this.models.use(args.modelId, (model) => this.startOn(model, args));
  }

  private async startOn(model: ModelRow, args: StartDatasetRunArgs): Promise<DatasetRunRow> {
    const request = datasetRunRequest(args, model.globalBound);
    const dataset = await this.datasets.get(args.datasetId);
    const limit = args.limit ?? dataset.count;
    if (!Number.isInteger(limit) || limit < 1 || limit > dataset.count) {
      throw badInput(`limit must be an integer from 1 to ${dataset.count} (the images of dataset '${dataset.name}'); got ${limit}`);
    }
    await this.datasets.bind(dataset, await this.models.network(model), limit); // shape, labels, normalisation
    await this.models.checkResources(model, analysisShape(request)); // memory, as startRun checks it
    const row = await this.prisma.datasetRun.create({
      data: { id: randomUUID(), seq: this.nextSeq++, datasetId: dataset.id, modelId: model.id, status: 'QUEUED', total: limit, request: JSON.stringify(request) },
    });
    this.drive(row.id);
    return row;
  }

  /** After a start: dataset runs left queued or running are driven again (finished images are kept). */
  async recover(): Promise<number> {
    const max = await this.prisma.datasetRun.aggregate({ _max: { seq: true } });
    this.nextSeq = (max._max.seq ?? 0) + 1;
    const unfinished = await this.prisma.datasetRun.findMany({ where: { status: { in: ['QUEUED', 'RUNNING'] } }, orderBy: { seq: 'asc' } });
    for (const row of unfinished) this.drive(row.id);
    return unfinished.length;
  }

  /** Cancels a dataset run and its images' active runs; a finished one is returned unchanged. */
  async cancel(id: string): Promise<DatasetRunRow> {
    const row = await this.get(id);
    if (isTerminal(row.status as RunStatus)) return row;
    const driver = this.drivers.get(id);
    if (driver) driver.cancelled = true;
    await this.prisma.datasetRun.updateMany({
      where: { id, status: { in: ['QUEUED', 'RUNNING'] } },
      data: { status: 'CANCELLED', errorCode: 'CANCELLED', errorMessage: 'cancelled by the user', finishedAt: new Date() },
    });
    for (const runId of driver ? [...driver.active.keys()] : []) await this.runs.cancel(runId).catch(() => undefined);
    await this.prisma.datasetImage.updateMany({ where: { datasetRunId: id, status: 'PENDING' }, data: { status: 'CANCELLED' } });
    const { done } = await this.progressOf(row);
    this.events.publish({ datasetRunId: id, status: 'CANCELLED', done, total: row.total, message: 'cancelled' });
    return this.get(id);
  }

  /** Cancels and deletes the dataset runs of a model (before the model is deleted). */
  async removeAllOf(modelId: string): Promise<void> {
    const rows = await this.prisma.datasetRun.findMany({ where: { modelId }, select: { id: true } });
    for (const { id } of rows) await this.cancel(id);
    await Promise.allSettled(rows.map(({ id }) => this.drivers.get(id)?.finished));
    const ids = rows.map((r) => r.id);
    await this.prisma.$transaction([this.prisma.datasetImage.deleteMany({ where: { datasetRunId: { in: ids } } }), this.prisma.datasetRun.deleteMany({ where: { id: { in: ids } } })]);
  }

  /** Stops driving (the runs stay as they are: the next start drives them again) and waits for the drivers. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const driver of this.drivers.values()) {
      for (const stream of driver.streams) stream.close();
      driver.wake();
    }
    await Promise.allSettled([...this.drivers.values()].map((d) => d.finished));
  }

  private drive(id: string): void {
    let wake = () => {};
    const driver: Driver = { id, total: 0, done: 0, correct: 0, cancelled: false, active: new Map(), streams: new Set(), tasks: new Set(), wake: () => wake(), lastPublish: 0, finished: Promise.resolve() };
    const slot = () => new Promise<void>((resolve) => (wake = resolve));
    this.drivers.set(id, driver);
    driver.finished = this.walk(driver, slot)
      .catch(async (error: unknown) => {
        if (this.stopping) return;
        const failure = runErrorOf(error);
        if (failure.code === 'INTERNAL_SERVER_ERROR') console.error(`lipcert: dataset run ${id} failed:`, error);
        await this.end(driver, 'FAILED', { errorCode: failure.code, errorMessage: failure.message }).catch(() => undefined);
      })
      .finally(() => this.drivers.delete(id));
  }

  /** The walk over the images, then the end of the dataset run. */
  private async walk(driver: Driver, slot: () => Promise<void>): Promise<void> {
    const row = await this.get(driver.id);
    const request = requestOfDatasetRun(row);
    const model = await this.models.get(row.modelId);
    const dataset = await this.datasets.get(row.datasetId);
    const network = await this.models.network(model);
    const images = await this.datasets.bind(dataset, network, row.total);
    driver.total = row.total;
    const existing = new Map((await this.images(row.id)).map((image) => [image.index, image]));
    for (const image of existing.values()) {
      if (image.status === 'DONE' || image.status === 'FAILED') driver.done++;
      if (image.status === 'DONE' && image.predictedClass === image.label) driver.correct++;
    }
    await this.prisma.datasetRun.updateMany({ where: { id: row.id, status: { in: ['QUEUED', 'RUNNING'] } }, data: { status: 'RUNNING', startedAt: row.startedAt ?? new Date() } });
    this.publish(driver, 'RUNNING', true);
    const backend = await createBackend('cpu', network);
    const ctx: Context = { runId: row.id, model, dataset, network, images, request, backend };
    try {
      for (let index = 0; index < row.total; index++) {
        const image = existing.get(index);
        if (image && image.status !== 'PENDING') continue;
        while (driver.active.size >= this.options.window && !this.stopping && !driver.cancelled) await slot();
        if (this.stopping || driver.cancelled) break;
        if (image?.runId) this.track(driver, this.follow(driver, ctx, index, image.runId)); // re-attached after a restart
        else await this.startImage(driver, ctx, index);
      }
      while (driver.tasks.size > 0) await Promise.allSettled([...driver.tasks]);
    } finally {
      await backend.dispose().catch(() => undefined);
    }
    if (this.stopping || driver.cancelled) return; // a stop leaves it RUNNING for the next start; cancel() recorded CANCELLED
    await this.finish(driver, ctx);
  }

  private track(driver: Driver, task: Promise<void>): void {
    const tracked = task.catch((error: unknown) => {
      if (!this.stopping) console.error(`lipcert: dataset run ${driver.id}:`, error);
    });
    driver.tasks.add(tracked);
    void tracked.finally(() => driver.tasks.delete(tracked));
  }

  /** Image `index` as an input (its class from one forward pass) and an ordinary run, then followed; work on the model (a deletion waits for it). */
  private startImage(driver: Driver, ctx: Context, index: number): Promise<void> {
    return this.models.use(ctx.model.id, () => this.startImageOn(driver, ctx, index));
  }

  private async startImageOn(driver: Driver, ctx: Context, index: number): Promise<void> {
    const label = ctx.images.labels[index];
    const input = await this.inputs.addValues(ctx.model, ctx.network, ctx.images.image(index), { name: `${ctx.dataset.name} #${index}`, datasetId: ctx.dataset.id, backend: ctx.backend });
    const { eps, method, certificate, delta, seed, tolerance, backend } = ctx.request;
    const radius = ctx.request.radius && input.predictedClass === label; // no search on a misclassified image
    const key = { datasetRunId_index: { datasetRunId: ctx.runId, index } };
    if (eps.length === 0 && !radius) {
      // A misclassified image and no local bounds asked for: nothing to run, radius 0.
      const record = imageRecord(index, label, { class: input.predictedClass, margin: input.margin, local: [], seconds: 0 });
      await this.prisma.datasetImage.upsert({ where: key, create: { datasetRunId: ctx.runId, index, inputId: input.id, ...recordColumns(record) }, update: { inputId: input.id, ...recordColumns(record) } });
      this.imageDone(driver, record);
      return;
    }
    const run = await this.runs.start({ modelId: ctx.model.id, inputId: input.id, eps, radius, method, certificate, delta, seed, tolerance, backend });
    await this.prisma.datasetImage.upsert({
      where: key,
      create: { datasetRunId: ctx.runId, index, label, status: 'PENDING', inputId: input.id, runId: run.id, attempts: 1 },
      update: { status: 'PENDING', inputId: input.id, runId: run.id, attempts: { increment: 1 } },
    });
    this.track(driver, this.follow(driver, ctx, index, run.id));
  }

  /** Waits for an image's run to end (its events, after its current state), then records the image. */
  private async follow(driver: Driver, ctx: Context, index: number, runId: string): Promise<void> {
    driver.active.set(runId, index);
    const stream = this.runs.events.listen(runId); // before reading the state: miss nothing
    driver.streams.add(stream);
    try {
      if (driver.cancelled) await this.runs.cancel(runId).catch(() => undefined);
      const run = await this.runs.find(runId);
      let status: RunStatus = run ? this.runs.stateOf(run).status : 'FAILED';
      if (!isTerminal(status)) {
        for await (const event of stream) {
          if (isTerminal(event.status)) {
            status = event.status;
            break;
          }
        }
      }
      if (isTerminal(status)) await this.imageRunEnded(driver, ctx, index, runId);
    } finally {
      stream.close();
      driver.streams.delete(stream);
      driver.active.delete(runId);
      driver.wake();
    }
  }

  private async imageRunEnded(driver: Driver, ctx: Context, index: number, runId: string): Promise<void> {
    const label = ctx.images.labels[index];
    const key = { datasetRunId_index: { datasetRunId: ctx.runId, index } };
    const run = await this.runs.find(runId);
    if (run?.status === 'SUCCEEDED') {
      const stored = await this.prisma.result.findUnique({ where: { cacheKey: run.cacheKey } });
      if (!stored) throw new Error(`lipcert internal error: run ${runId} succeeded without a stored result`);
      const record = imageRecord(index, label, JSON.parse(stored.result) as AnalysisResult);
      if (ctx.request.radius && record.radius === null) {
        // The forward pass that chose the run's request and the run disagree on the class: no number rather than a wrong one.
        await this.imageFailed(driver, key, 'INTERNAL_SERVER_ERROR', `image ${index}: its run found class ${record.predictedClass} (the label) where the forward pass before it found another, so no radius was computed`);
        return;
      }
      const updated = await this.prisma.datasetImage.updateMany({ where: { datasetRunId: ctx.runId, index, runId, status: 'PENDING' }, data: { ...recordColumns(record), worker: run.worker } });
      if (updated.count === 1) this.imageDone(driver, record); // recorded once, however often its end is seen
      return;
    }
    const image = await this.prisma.datasetImage.findUnique({ where: key });
    if (driver.cancelled) {
      await this.prisma.datasetImage.updateMany({ where: { datasetRunId: ctx.runId, index, status: 'PENDING' }, data: { status: 'CANCELLED' } });
      return;
    }
    const retry = run && (run.status === 'CANCELLED' || run.errorCode === 'INTERRUPTED') && (image?.attempts ?? 0) < MAX_ATTEMPTS;
    if (retry && !this.stopping) {
      this.options.log(`dataset run ${ctx.runId}: image ${index}'s run ${runId} ended ${run.errorCode ?? run.status}; starting it again`);
      await this.startImage(driver, ctx, index);
      return;
    }
    await this.imageFailed(driver, key, run?.errorCode ?? 'NOT_FOUND', `image ${index}: ${run ? (run.errorMessage ?? run.status.toLowerCase()) : `its run ${runId} was deleted`}`);
  }

  private async imageFailed(driver: Driver, key: { datasetRunId_index: { datasetRunId: string; index: number } }, code: string, message: string): Promise<void> {
    await this.prisma.datasetImage.update({ where: key, data: { status: 'FAILED', errorCode: code, errorMessage: message } });
    driver.done++;
    this.publish(driver, 'RUNNING');
  }

  private imageDone(driver: Driver, record: ImageRecord): void {
    driver.done++;
    if (record.predictedClass === record.label) driver.correct++;
    this.publish(driver, 'RUNNING');
  }

  /** Every image ended: SUCCEEDED with the summary, or FAILED naming the first failed image. */
  private async finish(driver: Driver, ctx: Context): Promise<void> {
    const rows = await this.images(ctx.runId);
    const failed = rows.filter((r) => r.status === 'FAILED');
    if (failed.length > 0) {
      const first = failed[0];
      await this.end(driver, 'FAILED', { errorCode: first.errorCode ?? 'INTERNAL_SERVER_ERROR', errorMessage: `${failed.length} of ${rows.length} images failed; the first, ${first.errorMessage}` });
      return;
    }
    const records = rows.map(recordOf);
    if (rows.length !== driver.total || records.some((r) => r === null)) throw new Error(`lipcert internal error: dataset run ${ctx.runId} ended with ${records.filter(Boolean).length} of ${driver.total} images recorded`);
    await this.end(driver, 'SUCCEEDED', { summary: JSON.stringify(summarise(records as ImageRecord[])) });
    this.options.log(`dataset run ${ctx.runId}: ${rows.length} images of '${ctx.dataset.name}' on '${ctx.model.name}' done`);
  }

  private async end(driver: Driver, status: 'SUCCEEDED' | 'FAILED', data: { summary?: string; errorCode?: string; errorMessage?: string }): Promise<void> {
    await this.prisma.datasetRun.updateMany({ where: { id: driver.id, status: { in: ['QUEUED', 'RUNNING'] } }, data: { status, ...data, finishedAt: new Date() } });
    this.publish(driver, status, true);
  }

  private publish(driver: Driver, status: RunStatus, force = false): void {
    const now = Date.now();
    if (!force && driver.done < driver.total && now - driver.lastPublish < PROGRESS_EVENT_MS) return;
    driver.lastPublish = now;
    this.events.publish({ datasetRunId: driver.id, status, done: driver.done, total: driver.total, message: messageOf(status, driver.done, driver.total) });
  }
}

function messageOf(status: RunStatus, done: number, total: number): string {
  return status === 'QUEUED' ? 'queued' : `${done} of ${total} images ${status === 'RUNNING' ? 'done' : status.toLowerCase()}`;
}

/** A record's columns of its DatasetImage row (status DONE). */
function recordColumns(record: ImageRecord) {
  return {
    status: 'DONE',
    label: record.label,
    predictedClass: record.predictedClass,
    margin: record.margin,
    radius: record.radius,
    quality: record.quality,
    failureProbability: record.failureProbability ?? null,
    local: JSON.stringify(record.local),
    seconds: record.seconds,
  };
}
