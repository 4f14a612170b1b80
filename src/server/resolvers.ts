/**
 * GraphQL resolvers for schema.graphql, typed by the generated `Resolvers` (codegen.ts): decoding
 * (base64) and one call into the service; field resolvers turn store rows into the API's types.
 * Enums map the API's names to the library's (the generated types use the library's). Every
 * resolver is wrapped so that a LipcertError reaches the client as a GraphQLError with
 * `extensions.code`: the one place where errors are mapped.
 */
import type { GraphQLFieldResolver } from 'graphql';
import { ENGINE_VERSION } from '../bounds/certify.js';
import { LipcertError } from '../errors.js';
import type { DatasetRunRow, RunRow } from '../store/db.js';
import { toGraphQLError } from './errors.js';
import type { Resolvers } from './generated/graphql.js';
import { recordOf, requestOfDatasetRun } from './dataset-runs.js';
import type { DatasetRunEventPayload, RunEventPayload } from './events.js';
import type { LayerDescription } from './models.js';
import { requestOf } from './run-request.js';
import { modelGlobalBound } from './run-result.js';
import type { LipcertService } from './service.js';

const BASE64 = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;

/** Decodes a base64 upload, rejecting one larger than the limit before decoding it. */
function decodeBase64(text: string, what: string, maxBytes: number): Uint8Array {
  const estimated = Math.floor((text.length * 3) / 4);
  if (estimated > maxBytes + 2) {
    throw new LipcertError('PAYLOAD_TOO_LARGE', `the ${what} is about ${estimated} bytes; the limit is ${maxBytes}`);
  }
  if (!BASE64.test(text)) throw new LipcertError('BAD_USER_INPUT', `the ${what} is not valid base64`);
  return Buffer.from(text, 'base64');
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function makeResolvers(service: LipcertService): Resolvers {
  const { models, inputs, runs, datasets, datasetRuns } = service;
  const summaryOf = (r: DatasetRunRow) => datasetRuns.summaryOf(r);
  const maxBytes = service.options.maxUploadBytes;

  const resolvers: Resolvers = {
    BoundQuality: { EXACT: 'exact', UPPER: 'upper', ESTIMATE: 'estimate' },
    Backend: { AUTO: 'auto', CPU: 'cpu', WEBGPU: 'webgpu' },
    Method: { TIGHT: 'tight', PAPER: 'paper' },
    Certificate: { DETERMINISTIC: 'deterministic', PROBABILISTIC: 'probabilistic', ESTIMATE: 'estimate' },
    // The library's names: stored results keep them, the API shows the enum names.
    AttackMethod: { FGSM: 'fgsm', IFGSM: 'ifgsm', PGD: 'pgd' },
    LowerBoundMethod: { GRADIENT: 'gradient', RANDOM: 'random' },
    SearchKind: { LOWER: 'lower', UPPER: 'upper' },

    Query: {
      models: () => models.list(),
      model: (_, { id }) => models.find(id),
      run: (_, { id }) => runs.find(id),
      runs: (_, args) => runs.list(args),
      about: () => ({ engineVersion: ENGINE_VERSION, concurrency: service.queue.concurrency, maxUploadBytes: maxBytes }),
      datasets: () => datasets.list(),
      dataset: (_, { id }) => datasets.find(id),
      datasetRun: (_, { id }) => datasetRuns.find(id),
      datasetRuns: (_, args) => datasetRuns.list(args),
    },

    Mutation: {
      importModel: (_, { name, onnxBase64 }) => service.importModel(name, decodeBase64(onnxBase64, 'ONNX model', maxBytes)),
      deleteModel: (_, { id }) => service.deleteModel(id),
      addInput: (_, args) => {
        const given = [args.npyBase64, args.pngBase64].filter((v) => v != null);
        if (given.length !== 1) throw new LipcertError('BAD_USER_INPUT', 'give exactly one of npyBase64 and pngBase64');
        const format = args.npyBase64 != null ? 'npy' : 'png';
        return service.addInput({
          modelId: args.modelId,
          name: args.name,
          bytes: decodeBase64(given[0]!, `${format} input`, maxBytes),
          format,
          mean: args.mean,
          std: args.std,
        });
      },
      startRun: (_, args) => runs.start(args),
      cancelRun: (_, { id }) => runs.cancel(id),
      importDataset: (_, { name, npzBase64, mean, std }) => datasets.import(name, decodeBase64(npzBase64, '.npz dataset', maxBytes), mean, std),
      startDatasetRun: (_, args) => datasetRuns.start(args),
      cancelDatasetRun: (_, { id }) => datasetRuns.cancel(id),
    },

    Subscription: {
      runProgress: {
        subscribe: async (_, { runId }) => {
          const stream = runs.events.listen(runId); // before reading the state: miss nothing
          const run = await runs.find(runId);
          if (!run) {
            stream.close();
            throw new LipcertError('NOT_FOUND', `no run with id '${runId}'`);
          }
          stream.startWith(runs.stateOf(run));
          return stream;
        },
        resolve: (payload: RunEventPayload) => payload,
      },
      datasetRunProgress: {
        subscribe: async (_, { id }) => {
          const stream = datasetRuns.events.listen(id); // before reading the state: miss nothing
          const row = await datasetRuns.find(id);
          if (!row) {
            stream.close();
            throw new LipcertError('NOT_FOUND', `no dataset run with id '${id}'`);
          }
          stream.startWith(await datasetRuns.stateOf(row));
          return stream;
        },
        resolve: (payload: DatasetRunEventPayload) => payload,
      },
    },

    DatasetRunEvent: {
      datasetRun: (event) => datasetRuns.get(event.datasetRunId),
    },

    Dataset: {
      inputShape: (d) => JSON.parse(d.itemShape),
      pixels: (d) => d.pixels.toUpperCase(),
      mean: (d) => (d.mean ? JSON.parse(d.mean) : null),
      std: (d) => (d.std ? JSON.parse(d.std) : null),
      createdAt: (d) => iso(d.createdAt)!,
      runs: (d) => datasetRuns.list({ datasetId: d.id, first: 500 }),
    },

    DatasetRun: {
      status: (r) => r.status as 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED',
      done: async (r) => (await datasetRuns.progressOf(r)).done,
      correct: async (r) => (await datasetRuns.progressOf(r)).correct,
      dataset: (r) => datasets.find(r.datasetId),
      model: (r) => models.find(r.modelId),
      eps: (r) => requestOfDatasetRun(r).eps,
      radius: (r) => requestOfDatasetRun(r).radius,
      method: (r) => requestOfDatasetRun(r).method,
      certificate: (r) => requestOfDatasetRun(r).certificate,
      delta: (r) => requestOfDatasetRun(r).delta,
      seed: (r) => requestOfDatasetRun(r).seed,
      tolerance: (r) => requestOfDatasetRun(r).tolerance,
      requestedBackend: (r) => requestOfDatasetRun(r).backend,
      accuracy: (r) => summaryOf(r)?.accuracy ?? null,
      certifiedAccuracy: (r) => summaryOf(r)?.certifiedAccuracy ?? null,
      medianRadius: (r) => summaryOf(r)?.medianRadius ?? null,
      medianRadiusCorrect: (r) => summaryOf(r)?.medianRadiusCorrect ?? null,
      radiusQuality: (r) => summaryOf(r)?.radiusQuality ?? null,
      failureProbabilityTotal: (r) => summaryOf(r)?.failureProbabilityTotal ?? null,
      workers: (r) => datasetRuns.workersOf(r.id),
      images: (r, { offset, first }) => datasetRuns.images(r.id, offset ?? 0, first),
      error: (r) => (r.errorCode ? { code: r.errorCode, message: r.errorMessage ?? '' } : null),
      createdAt: (r) => iso(r.createdAt)!,
      startedAt: (r) => iso(r.startedAt),
      finishedAt: (r) => iso(r.finishedAt),
    },

    DatasetImage: {
      quality: (i) => i.quality as 'exact' | 'upper' | 'estimate' | null,
      local: (i) => recordOf(i)?.local ?? [],
      run: (i) => (i.runId ? runs.find(i.runId) : null),
      error: (i) => (i.errorCode ? { code: i.errorCode, message: i.errorMessage ?? '' } : null),
    },

    RunEvent: {
      // null once the run is gone (deleted with its model): the event itself still says how it ended.
      run: (event) => runs.find(event.runId),
    },

    Model: {
      inputShape: (m) => JSON.parse(m.inputShape),
      outputShape: (m) => JSON.parse(m.outputShape),
      globalBoundQuality: (m) => m.globalQuality as 'exact' | 'upper' | 'estimate' | null,
      globalBoundMethod: (m) => modelGlobalBound(m)?.method ?? null,
      globalBoundCertificate: (m) => modelGlobalBound(m)?.certificate ?? null,
      globalBoundFailureProbability: (m) => modelGlobalBound(m)?.failureProbability ?? null,
      globalBoundStatus: (m) => m.globalStatus as 'PENDING' | 'RUNNING' | 'DONE' | 'FAILED',
      globalBoundError: (m) => m.globalError,
      layers: (m) => {
        const layers = JSON.parse(m.layers) as LayerDescription[];
        const global = modelGlobalBound(m);
        return layers.map((layer) => {
          const bound = global?.layers.find((l) => l.index === layer.index);
          // Models imported before graphs were chains without activations other than ReLU.
          const wiring = { inputs: layer.inputs ?? [layer.index - 1], activation: layer.activation ?? null };
          return { ...layer, ...wiring, globalBound: bound?.bound ?? null, globalBoundQuality: bound?.quality ?? null };
        });
      },
      inputs: (m) => inputs.of(m.id),
      createdAt: (m) => iso(m.createdAt)!,
    },

    Input: {
      shape: (i) => JSON.parse(i.shape),
      logits: (i) => JSON.parse(i.logits),
      createdAt: (i) => iso(i.createdAt)!,
      model: (i) => models.find(i.modelId),
    },

    Run: {
      status: (r) => runs.stateOf(r).status,
      progress: (r) => runs.stateOf(r).progress,
      message: (r) => runs.stateOf(r).message,
      model: (r) => models.find(r.modelId),
      input: (r) => inputs.find(r.inputId),
      eps: (r) => JSON.parse(r.eps),
      method: (r) => requestOf(r).method,
      certificate: (r) => requestOf(r).certificate,
      seed: (r) => requestOf(r).seed,
      requestedBackend: (r) => requestOf(r).backend,
      lowerBounds: (r) => r.lowerBounds !== null,
      attacks: (r) => requestOf(r).attack?.methods ?? [],
      error: (r) => (r.errorCode ? { code: r.errorCode, message: r.errorMessage ?? '' } : null),
      // The stored result's shape is the API's (run-result.ts); its enums are the library's names.
      result: (r) => runs.resultOf(r),
      timings: (r) => r,
    },

    RunTimings: {
      createdAt: (r: RunRow) => iso(r.createdAt)!,
      startedAt: (r: RunRow) => iso(r.startedAt),
      finishedAt: (r: RunRow) => iso(r.finishedAt),
      queuedSeconds: (r: RunRow) => {
        if (r.cached) return 0;
        return r.startedAt ? (r.startedAt.getTime() - r.createdAt.getTime()) / 1000 : null;
      },
      computeSeconds: (r: RunRow) => runs.computeSecondsOf(r),
    },
  };
  return wrapResolvers(resolvers);
}

/** Every resolver function: a thrown LipcertError becomes a GraphQLError carrying its code. */
function wrapResolvers<T extends object>(resolvers: T): T {
  const wrap = (fn: GraphQLFieldResolver<unknown, unknown>) =>
    async function wrapped(this: unknown, ...args: Parameters<typeof fn>) {
      try {
        return await fn.apply(this, args);
      } catch (error) {
        throw toGraphQLError(error);
      }
    };
  for (const fields of Object.values(resolvers) as Record<string, unknown>[]) {
    for (const [name, value] of Object.entries(fields)) {
      if (typeof value === 'function') fields[name] = wrap(value as GraphQLFieldResolver<unknown, unknown>);
      else if (value && typeof value === 'object' && 'subscribe' in value) {
        const sub = value as { subscribe: GraphQLFieldResolver<unknown, unknown> };
        sub.subscribe = wrap(sub.subscribe);
      }
    }
  }
  return resolvers;
}
