/**
 * The life cycle of runs: start (served from the cache, joined to the same request queued or
 * running, or queued), execute (one analyse() call by the executor, in this process or on a
 * worker: run-executor.ts; the result cached with the worker that computed it), cancel, recover
 * after a restart, stop; and the state subscribers see (in memory while a run is active, progress events
 * throttled, saved to the store now and then). What a run computes is decided by run-request.ts.
 */
import { randomUUID } from 'node:crypto';
import type { AnalysisProgress, AnalysisResult } from '../analysis/analyse.js';
import { CancelledError, LipcertError } from '../errors.js';
import type { ModelRow, RunRow, Store } from '../store/db.js';
import { found, runErrorOf } from './errors.js';
import { isTerminal, RunEvents, type RunEventPayload, type RunStatus } from './events.js';
import { float32Of, type Inputs } from './inputs.js';
import type { Models } from './models.js';
import type { JobQueue } from './queue.js';
import { overflowError } from './numbers.js';
import type { RunExecutor, RunStart } from './run-executor.js';
import { analysisShape, requestColumns, requestOf, reusableGlobalBound, runCacheKey, runRequest, type StartRunArgs } from './run-request.js';
import { describedResult } from './run-result.js';
import { apiTypes } from './schema.js';

const PROGRESS_EVENT_MS = 100;
const PROGRESS_SAVE_MS = 1000;
const MAX_PAGE = 500;

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

export class Runs {
  readonly events = new RunEvents();
  /** Counters for tests and logs: how much was actually computed. */
  readonly stats = { runsComputed: 0, cacheHits: 0, joined: 0 };
  private readonly live = new Map<string, LiveState>();
  /** Active runs by cache key (a duplicate request joins) and by run id. */
  private readonly activeByKey = new Map<string, ActiveRun>();
  private readonly activeById = new Map<string, ActiveRun>();
  /** startRun calls past their lookups but before their run exists, by key (joins them too). */
  private readonly starting = new Map<string, Promise<RunRow>>();
  private nextSeq = 1;
  private stopping = false;

  constructor(
    private readonly store: Store,
    private readonly queue: JobQueue,
    private readonly models: Models,
    private readonly inputs: Inputs,
    /** Where analyses are computed: this process, or workers through Redis (run-executor.ts). */
    private readonly executor: RunExecutor,
  ) {}

  private get prisma() {
    return this.store.prisma;
  }

  /** After a start: runs left RUNNING by a crash are FAILED with a reason; QUEUED runs are queued again, oldest first. */
  async recover(): Promise<{ interrupted: number; requeued: number }> {
    const max = await this.prisma.run.aggregate({ _max: { seq: true } });
    this.nextSeq = (max._max.seq ?? 0) + 1;
    // A run on a durable executor (a job in Redis) may still be computing or done: it is picked up again.
    if (this.executor.durable) await this.prisma.run.updateMany({ where: { status: 'RUNNING' }, data: { status: 'QUEUED', message: 'queued again after a server restart' } });
    const interrupted = await this.prisma.run.updateMany({
      where: { status: 'RUNNING' },
      data: {
        status: 'FAILED',
        errorCode: 'INTERRUPTED',
        errorMessage: 'the server stopped while this run was running (crash or kill); start it again',
        finishedAt: new Date(),
      },
    });
    const queued = await this.prisma.run.findMany({ where: { status: 'QUEUED' }, orderBy: { seq: 'asc' } });
    for (const run of queued) this.enqueue(run);
    return { interrupted: interrupted.count, requeued: queued.length };
  }

  find(id: string): Promise<RunRow | null> {
    return this.prisma.run.findUnique({ where: { id } });
  }

  async get(id: string): Promise<RunRow> {
    return found(await this.find(id), 'run', id);
  }

  /** The state of a run as subscribers see it: in memory while it is active, else from the store. */
  stateOf(run: RunRow): RunEventPayload {
    const live = this.live.get(run.id);
    if (live) return { runId: run.id, status: live.status, progress: live.progress, message: live.message, phase: live.phase };
    return { runId: run.id, status: run.status as RunStatus, progress: run.progress, message: run.message, phase: null };
  }

  async list(args: { modelId?: string | null; status?: string | null; first?: number | null; after?: string | null }) {
    const first = args.first ?? 20;
    if (!Number.isInteger(first) || first < 0 || first > MAX_PAGE) throw new LipcertError('BAD_USER_INPUT', `\`first\` must be an integer from 0 to ${MAX_PAGE}`);
    const where: { modelId?: string; status?: string } = {};
    if (args.modelId) where.modelId = args.modelId;
    if (args.status) where.status = args.status;
    let before: number | undefined;
    if (args.after) {
      const decoded = /^run:(\d+)$/.exec(Buffer.from(args.after, 'base64').toString('utf8'));
      if (!decoded) throw new LipcertError('BAD_USER_INPUT', '`after` is not a cursor from this server');
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
   * Starts a run and returns at once: served from the cache (`cached: true`), joined, or queued.
   * A deletion of the model waits for this call; once it has begun, the model is NOT_FOUND.
   */
  async start(args: StartRunArgs): Promise<RunRow> {
    if (this.stopping) throw new LipcertError('BACKEND_UNAVAILABLE', 'the server is stopping');
    return this.models.use(args.modelId, (model) => this.startOn(model, args));
  }

  private async startOn(model: ModelRow, args: StartRunArgs): Promise<RunRow> {
    const input = await this.inputs.find(args.inputId);
    if (!input || input.modelId !== model.id) throw new LipcertError('NOT_FOUND', `model '${model.id}' has no input with id '${args.inputId}'`);
    const request = runRequest(args, model.globalBound);
    const key = runCacheKey(request, model.sha256, input.sha256);
    const active = this.activeByKey.get(key);
    if (active) {
      this.stats.joined++;
      return this.get(active.runId);
    }
    const starting = this.starting.get(key);
    if (starting) {
      this.stats.joined++;
      return starting;
    }
    const columns = { modelId: model.id, inputId: input.id, cacheKey: key, ...requestColumns(request) };
    const created = this.create(columns, () => this.models.checkResources(model, analysisShape(request)));
    this.starting.set(key, created);
    try {
      return await created;
    } finally {
      this.starting.delete(key);
    }
  }

  /** A run served from the cache, or, when `fits` (the resource check) passes, a queued one. */
  private async create(columns: { modelId: string; inputId: string; cacheKey: string } & ReturnType<typeof requestColumns>, fits: () => Promise<void>): Promise<RunRow> {
    const hit = await this.prisma.result.findUnique({ where: { cacheKey: columns.cacheKey } });
    if (!hit) await fits();
    const base = { ...columns, id: randomUUID(), seq: this.nextSeq++ };
    if (hit) {
      this.stats.cacheHits++;
      const stored = JSON.parse(hit.result) as AnalysisResult;
      const now = new Date();
      return this.prisma.run.create({
        data: { ...base, status: 'SUCCEEDED', progress: 1, message: 'served from the cache', cached: true, backend: stored.backend, adapter: stored.adapter, worker: hit.worker, startedAt: now, finishedAt: now },
      });
    }
    const run = await this.prisma.run.create({ data: { ...base, status: 'QUEUED', message: 'queued' } });
    this.enqueue(run);
    return run;
  }

  private enqueue(run: RunRow): void {
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
  async cancel(id: string): Promise<RunRow> {
    const run = await this.get(id);
    if (isTerminal(run.status as RunStatus) && !this.activeById.has(id)) return run;
    const where = this.queue.cancel(id, new CancelledError('cancelled by the user'));
    if (where === 'running') {
      // The job records CANCELLED as soon as the analysis notices the abort.
      await this.activeById.get(id)?.settled;
    } else {
      await this.prisma.run.updateMany({
        where: { id },
        data: { status: 'CANCELLED', errorCode: 'CANCELLED', errorMessage: 'cancelled before it started', finishedAt: new Date() },
      });
      this.finishActive(id);
      this.events.publish({ runId: id, status: 'CANCELLED', progress: run.progress, message: 'cancelled', phase: null });
    }
    return this.get(id);
  }

  /** Cancels every active run of a model and waits until each has settled (before the model is deleted). */
  async cancelAllOf(modelId: string): Promise<void> {
    const active = [...this.activeById.values()].filter((a) => a.modelId === modelId);
    for (const a of active) await this.cancel(a.runId);
  }

  /** Ends the subscriptions still open on runs deleted with their model. */
  forgetDeleted(runIds: string[]): void {
    for (const runId of runIds) {
      if (this.events.listenerCount(runId) > 0) this.events.publish({ runId, status: 'CANCELLED', progress: 0, message: 'deleted with its model', phase: null });
    }
  }

  /** Runs one job; if its bookkeeping itself fails (the store), the run still ends FAILED for its subscribers. */
  private async execute(runId: string, signal: AbortSignal): Promise<void> {
    try {
      await this.compute(runId, signal);
    } catch (error) {
      console.error(`lipcert: run ${runId} could not be recorded:`, error);
      const failure = runErrorOf(error);
      await this.prisma.run
        .updateMany({ where: { id: runId }, data: { status: 'FAILED', errorCode: failure.code, errorMessage: failure.message, finishedAt: new Date() } })
        .catch(() => undefined);
      if (this.activeById.has(runId)) {
        this.finishActive(runId);
        this.events.publish({ runId, status: 'FAILED', progress: 0, message: failure.message, phase: null });
      }
    }
  }

  /** One analysis: RUNNING → SUCCEEDED (result cached) | FAILED | CANCELLED, or QUEUED again at a stop. */
  private async compute(runId: string, signal: AbortSignal): Promise<void> {
    const run = await this.prisma.run.findUnique({ where: { id: runId }, include: { model: true, input: true } });
    if (!run) {
      this.finishActive(runId);
      return;
    }
    const live = this.live.get(runId) ?? { status: 'QUEUED', progress: 0, message: '', phase: null, lastPublish: 0, lastSave: 0 };
    this.live.set(runId, live);

    let final: { status: RunStatus; message: string; progress: number };
    try {
      this.stats.runsComputed++;
      const request = requestOf(run);
      const { result, worker } = await this.executor.execute({ runId, model: run.model, input: float32Of(run.input.data), request, globalBound: reusableGlobalBound(run.model, request) }, signal, {
        started: (start) => this.markStarted(runId, live, start),
        progress: (event) => this.onProgress(runId, live, event),
      });
      // Before JSON turns an overflow (±Infinity, NaN) into null: no SUCCEEDED run without its numbers.
      const overflow = overflowError(apiTypes(), 'CertifyResult', describedResult(result, null));
      if (overflow) throw overflow;
      await this.prisma.result.upsert({
        where: { cacheKey: run.cacheKey },
        create: {
          cacheKey: run.cacheKey,
          modelSha256: run.model.sha256,
          inputSha256: run.input.sha256,
          engineVersion: result.engineVersion,
          result: JSON.stringify(result),
          computeSeconds: result.seconds,
          worker,
        },
        update: {},
      });
      final = { status: 'SUCCEEDED', message: 'done', progress: 1 };
      await this.prisma.run.updateMany({ where: { id: runId }, data: { ...final, finishedAt: new Date(), backend: result.backend, adapter: result.adapter, worker } });
    } catch (error) {
      final = await this.recordEnd(runId, error, signal, live.progress);
    }
    this.finishActive(runId);
    this.events.publish({ runId, ...final, phase: null });
  }

  /** A worker starts the run: RUNNING (once), and which worker, backend and adapter compute it. */
  private async markStarted(runId: string, live: LiveState, start: RunStart): Promise<void> {
    const columns = { worker: start.worker, ...(start.backend ? { backend: start.backend, adapter: start.adapter } : {}) };
    if (live.status === 'RUNNING') {
      await this.prisma.run.updateMany({ where: { id: runId, status: 'RUNNING' }, data: columns });
      return;
    }
    Object.assign(live, { status: 'RUNNING', progress: 0, message: 'starting', phase: null });
    await this.prisma.run.updateMany({ where: { id: runId, status: 'QUEUED' }, data: { status: 'RUNNING', startedAt: new Date(), progress: 0, message: 'starting', ...columns } });
    this.publish(runId, live);
  }

  /** How a run that threw ends: queued again at a stop, CANCELLED, or FAILED with its error. */
  private async recordEnd(runId: string, error: unknown, signal: AbortSignal, progress: number): Promise<{ status: RunStatus; message: string; progress: number }> {
    const code = error instanceof LipcertError ? error.code : undefined;
    let final: { status: RunStatus; message: string; progress: number };
    let data: Record<string, unknown>;
    if (this.stopping) {
      // A clean stop: the run starts again at the next start.
      final = { status: 'QUEUED', message: 'interrupted by a server stop; queued again for the next start', progress: 0 };
      data = { ...final, startedAt: null, backend: null, adapter: null };
    } else if (signal.aborted || code === 'CANCELLED') {
      final = { status: 'CANCELLED', message: 'cancelled', progress };
      data = { ...final, errorCode: 'CANCELLED', errorMessage: 'cancelled while running', finishedAt: new Date() };
    } else {
      const failure = runErrorOf(error);
      if (failure.code === 'INTERNAL_SERVER_ERROR') console.error(`lipcert: run ${runId} failed:`, error);
      final = { status: 'FAILED', message: failure.message, progress };
      data = { ...final, errorCode: failure.code, errorMessage: failure.message, finishedAt: new Date() };
    }
    await this.prisma.run.updateMany({ where: { id: runId }, data }).catch(() => undefined);
    return final;
  }

  private onProgress(runId: string, live: LiveState, event: AnalysisProgress): void {
    const phaseChanged = event.phase !== live.phase;
    live.progress = Math.min(1, Math.max(0, event.fraction));
    live.message = event.message;
    live.phase = event.phase;
    const now = Date.now();
    if (phaseChanged || now - live.lastPublish >= PROGRESS_EVENT_MS) this.publish(runId, live, now);
    if (now - live.lastSave >= PROGRESS_SAVE_MS) {
      live.lastSave = now;
      void this.prisma.run
        .updateMany({ where: { id: runId, status: 'RUNNING' }, data: { progress: live.progress, message: live.message } })
        .catch(() => undefined);
    }
  }

  private publish(runId: string, live: LiveState, now = Date.now()): void {
    live.lastPublish = now;
    this.events.publish({ runId, status: live.status, progress: live.progress, message: live.message, phase: live.phase });
  }

  /** The stored result of a succeeded run in the API's terms (with its model's global bound where it computed none). */
  async resultOf(run: RunRow) {
    if (run.status !== 'SUCCEEDED') return null;
    const row = await this.prisma.result.findUnique({ where: { cacheKey: run.cacheKey } });
    if (!row) return null;
    const stored = JSON.parse(row.result) as AnalysisResult;
    return describedResult(stored, stored.global ? null : await this.models.find(run.modelId));
  }

  async computeSecondsOf(run: RunRow): Promise<number | null> {
    if (run.status !== 'SUCCEEDED') return null;
    const row = await this.prisma.result.findUnique({ where: { cacheKey: run.cacheKey }, select: { computeSeconds: true } });
    return row?.computeSeconds ?? null;
  }

  /** From now on an aborted run goes back to the queue; forgets the runs still active after the queue stopped. */
  beginStop(): void {
    this.stopping = true;
  }

  forgetActive(): void {
    // Runs that never started stay QUEUED in the store.
    for (const runId of [...this.activeById.keys()]) this.finishActive(runId);
  }
}
