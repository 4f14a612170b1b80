/**
 * GraphQL resolvers for schema.graphql: argument checks and decoding (base64), then one call into
 * LipcertService; field resolvers turn store rows into the API's types. Every resolver is wrapped
 * so that a LipcertError reaches the client as a GraphQLError with `extensions.code`.
 */
import type { GraphQLFieldResolver } from 'graphql';
import { ENGINE_VERSION, type AttackMethod, type BackendName, type NetworkBound } from '../index.js';
import type { InputRow, ModelRow, RunRow } from '../store/db.js';
import { toGraphQLError, userError } from './errors.js';
import type { RunEventPayload } from './events.js';
import type { AttackSearchOptions, LayerDescription, LipcertService, StartRunArgs } from './service.js';

const BASE64 = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;

/** Decodes a base64 upload, rejecting one larger than the limit before decoding it. */
function decodeBase64(text: string, what: string, maxBytes: number): Uint8Array {
  const estimated = Math.floor((text.length * 3) / 4);
  if (estimated > maxBytes + 2) {
    throw userError('PAYLOAD_TOO_LARGE', `the ${what} is about ${estimated} bytes; the limit is ${maxBytes}`);
  }
  if (!BASE64.test(text)) throw userError('BAD_USER_INPUT', `the ${what} is not valid base64`);
  return Buffer.from(text, 'base64');
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function makeResolvers(service: LipcertService) {
  const maxBytes = service.options.maxUploadBytes;

  const resolvers = {
    BoundQuality: { EXACT: 'exact', UPPER: 'upper', ESTIMATE: 'estimate' },
    Backend: { AUTO: 'auto', CPU: 'cpu', WEBGPU: 'webgpu' },
    // The library's names: stored results keep them, the API shows the enum names.
    AttackMethod: { FGSM: 'fgsm', IFGSM: 'ifgsm', PGD: 'pgd' },
    LowerBoundMethod: { GRADIENT: 'gradient', RANDOM: 'random' },
    SearchKind: { LOWER: 'lower', UPPER: 'upper' },

    Query: {
      models: () => service.listModels(),
      model: (_: unknown, { id }: { id: string }) => service.findModel(id),
      run: (_: unknown, { id }: { id: string }) => service.findRun(id),
      runs: (_: unknown, args: { modelId?: string; status?: string; first?: number; after?: string }) => service.listRuns(args),
      about: () => ({
        engineVersion: ENGINE_VERSION,
        concurrency: service.queue.concurrency,
        maxUploadBytes: maxBytes,
      }),
    },

    Mutation: {
      importModel: (_: unknown, { name, onnxBase64 }: { name: string; onnxBase64: string }) =>
        service.importModel(name, decodeBase64(onnxBase64, 'ONNX model', maxBytes)),
      deleteModel: (_: unknown, { id }: { id: string }) => service.deleteModel(id),
      addInput: (
        _: unknown,
        args: { modelId: string; name?: string; npyBase64?: string; pngBase64?: string; mean?: number[]; std?: number[] },
      ) => {
        const given = [args.npyBase64, args.pngBase64].filter((v) => v != null);
        if (given.length !== 1) throw userError('BAD_USER_INPUT', 'give exactly one of npyBase64 and pngBase64');
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
      startRun: (
        _: unknown,
        args: Omit<StartRunArgs, 'radius' | 'backend'> & { radius?: boolean | null; backend?: BackendName | null; lowerBounds?: boolean | null },
      ) =>
        service.startRun({
          ...args,
          radius: args.radius ?? false,
          backend: args.backend ?? 'auto',
          lowerBounds: args.lowerBounds ?? false,
        }),
      cancelRun: (_: unknown, { id }: { id: string }) => service.cancelRun(id),
    },

    Subscription: {
      runProgress: {
        subscribe: async (_: unknown, { runId }: { runId: string }) => {
          const stream = service.events.listen(runId); // before reading the state: miss nothing
          const run = await service.findRun(runId);
          if (!run) {
            stream.close();
            throw userError('NOT_FOUND', `no run with id '${runId}'`);
          }
          stream.startWith(service.stateOf(run));
          return stream;
        },
        resolve: (payload: RunEventPayload) => payload,
      },
    },

    RunEvent: {
      run: (event: RunEventPayload) => service.getRun(event.runId),
    },

    Model: {
      inputShape: (m: ModelRow) => JSON.parse(m.inputShape),
      outputShape: (m: ModelRow) => JSON.parse(m.outputShape),
      globalBoundQuality: (m: ModelRow) => m.globalQuality,
      globalBoundStatus: (m: ModelRow) => m.globalStatus,
      globalBoundError: (m: ModelRow) => m.globalError,
      layers: (m: ModelRow) => {
        const layers = JSON.parse(m.layers) as LayerDescription[];
        const global = m.globalResult ? (JSON.parse(m.globalResult) as NetworkBound) : null;
        return layers.map((layer) => {
          const bound = global?.layers.find((l) => l.index === layer.index);
          return { ...layer, globalBound: bound?.bound ?? null, globalBoundQuality: bound?.quality ?? null };
        });
      },
      inputs: (m: ModelRow) => service.inputsOf(m.id),
      createdAt: (m: ModelRow) => iso(m.createdAt),
    },

    Input: {
      shape: (i: InputRow) => JSON.parse(i.shape),
      logits: (i: InputRow) => JSON.parse(i.logits),
      createdAt: (i: InputRow) => iso(i.createdAt),
      model: (i: InputRow) => service.findModel(i.modelId),
    },

    Run: {
      status: (r: RunRow) => service.stateOf(r).status,
      progress: (r: RunRow) => service.stateOf(r).progress,
      message: (r: RunRow) => service.stateOf(r).message,
      model: (r: RunRow) => service.findModel(r.modelId),
      input: (r: RunRow) => service.findInput(r.inputId),
      eps: (r: RunRow) => JSON.parse(r.eps),
      lowerBounds: (r: RunRow) => r.lowerBounds !== null,
      attacks: (r: RunRow): AttackMethod[] => (r.attacks ? (JSON.parse(r.attacks) as AttackSearchOptions).methods : []),
      error: (r: RunRow) => (r.errorCode ? { code: r.errorCode, message: r.errorMessage ?? '' } : null),
      result: (r: RunRow) => service.resultOf(r),
      timings: (r: RunRow) => r,
    },

    RunTimings: {
      createdAt: (r: RunRow) => iso(r.createdAt),
      startedAt: (r: RunRow) => iso(r.startedAt),
      finishedAt: (r: RunRow) => iso(r.finishedAt),
      queuedSeconds: (r: RunRow) => {
        if (r.cached) return 0;
        return r.startedAt ? (r.startedAt.getTime() - r.createdAt.getTime()) / 1000 : null;
      },
      computeSeconds: (r: RunRow) => service.computeSecondsOf(r),
    },
  };
  return wrapResolvers(resolvers);
}

/** Every resolver function: a thrown LipcertError becomes a GraphQLError carrying its code. */
function wrapResolvers<T extends Record<string, Record<string, unknown>>>(resolvers: T): T {
  const wrap = (fn: GraphQLFieldResolver<unknown, unknown>) =>
    async function wrapped(this: unknown, ...args: Parameters<typeof fn>) {
      try {
        return await fn.apply(this, args);
      } catch (error) {
        throw toGraphQLError(error);
      }
    };
  for (const fields of Object.values(resolvers)) {
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
