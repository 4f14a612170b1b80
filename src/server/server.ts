/**
 * startServer(): the lipcert GraphQL server on one port — Apollo Server 5 over express 5 for
 * queries and mutations at /graphql, graphql-ws on the same path for subscriptions, an offline
 * GraphiQL page at /, the web page at /app (dist/web, see web-app.ts), and the store (Prisma 7 + SQLite) under the data directory.
 * Raw-byte routes: POST /models and POST /datasets (uploads too large for a JSON string), and
 * GET /models/<sha256> (a model's ONNX bytes, for `lipcert worker` processes).
 * Before any GraphQL, a request passes the Host and Origin checks (host-check.ts), the API token
 * (token.ts) and the size and cost limits (query-limits.ts; ws-operations.ts for graphql-ws).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import { makeExecutableSchema } from '@graphql-tools/schema';
import express, { type NextFunction, type Request, type Response } from 'express';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { BackendName } from '../index.js';
import { LipcertError } from '../errors.js';
import { defaultResourceLimits, type ResourceLimits } from '../resources.js';
import { openStore } from '../store/db.js';
import { cors, type CorsOrigins } from './cors.js';
import { depthLimit } from './depth-limit.js';
import { toGraphQLError } from './errors.js';
import { graphiqlPage } from './graphiql.js';
import { preloadFixtures } from './preload.js';
import { makeResolvers } from './resolvers.js';
import { loadTypeDefs } from './schema.js';
import { RedisExecutor } from './redis-executor.js';
import { LipcertService } from './service.js';
import { hostCheck, verifyUpgrade, type AllowedHosts } from './host-check.js';
import { DEFAULT_MAX_COST, sourceGuard, queryCostPlugin, MAX_TOKENS } from './query-limits.js';
import { connectionAuthorised, exposureProblem, requireToken } from './token.js';
import { prepareOperation, resultWithCodes } from './ws-operations.js';
import { defaultWebDir, webApp } from './web-app.js';

export interface ServerOptions {
  /** TCP port; 0 picks a free one (default 4000). */
  port?: number;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Where the SQLite file and the ONNX models live (default ./data). */
  dataDir?: string;
  /** Import the fixture models and images before serving (default false). */
  preload?: boolean;
  /** Compute jobs at a time (default 1; `npm start` reads LIPCERT_CONCURRENCY, default the cores). */
  concurrency?: number;
  /** The compute threads' script (default: this build's run-thread.js, absent under TypeScript sources; null: none). */
  runThreadScript?: URL | null;
  /** Largest ONNX model or input file, decoded bytes (default 600 MB). */
  maxUploadBytes?: number;
  /** Deepest accepted query (default 12). */
  maxDepth?: number;
  /** Browser origins allowed to call the server: 'local' (default), '*' or a list. */
  corsOrigins?: CorsOrigins;
  /** Host names answered besides localhost and IP addresses (default none; '*' any). */
  allowedHosts?: AllowedHosts;
  /** API token every request must carry (default none: no authentication). */
  token?: string;
  /** Listen beyond loopback without a token (default false: refuse to start). */
  allowNoToken?: boolean;
  /** Most costly operation accepted, fields × list sizes (default DEFAULT_MAX_COST). */
  maxQueryCost?: number;
  /** Largest estimated peak memory of a model's analysis (default: defaultResourceLimits(), a fraction of the machine's memory). */
  resourceLimits?: ResourceLimits;
  /** Backend of the background global-bound jobs (default 'auto'). */
  backgroundBackend?: BackendName;
  /** The built web page served at /app (default dist/web at the package root). */
  webDir?: string;
  /** Redis URL: runs go through a BullMQ queue there, computed by `lipcert worker` processes (default: in this process). */
  redisUrl?: string;
  log?: (message: string) => void;
}

export interface ServerHandle {
  /** http://host:port/graphql */
  url: string;
  /** ws://host:port/graphql */
  wsUrl: string;
  port: number;
  service: LipcertService;
  stop(): Promise<void>;
}

export const DEFAULT_MAX_UPLOAD_BYTES = 600 * 1024 * 1024;
/** V8 cannot hold a string longer than about 2^29 characters: the most a JSON body can be. */
const MAX_JSON_BODY = 2 ** 29 - 64 * 1024;

function graphqlErrorBody(message: string, code: string) {
  return { errors: [{ message, extensions: { code } }] };
}

/** Only application/octet-stream: a browser cannot send that cross-site without a CORS preflight. */
function requireOctetStream(req: Request, res: Response, next: NextFunction): void {
  if (req.is('application/octet-stream')) return next();
  res.status(415).json(graphqlErrorBody('send the file\'s bytes with content-type application/octet-stream', 'BAD_USER_INPUT'));
}

/** A raw-upload route's answer: `{data: {field: ...}}`, or the error as a GraphQL error body. */
function rawUpload(field: string, handle: (req: Request) => Promise<Record<string, unknown>>) {
  return async (req: Request, res: Response) => {
    try {
      res.json({ data: { [field]: await handle(req) } });
    } catch (error) {
      const e = toGraphQLError(error);
      const code = String(e.extensions.code);
      res.status(code === 'INTERNAL_SERVER_ERROR' ? 500 : 400).json(graphqlErrorBody(e.message, code));
    }
  };
}

/** `?mean=0.49,0.48,0.45`: a list of numbers (refused when any is not a number), or undefined. */
function numberListParam(value: unknown, name: string): number[] | undefined {
  if (value === undefined || value === '') return undefined;
  const values = typeof value === 'string' ? value.split(',').map((v) => Number(v.trim())) : [Number.NaN];
  if (values.some((v) => !Number.isFinite(v))) throw new LipcertError('BAD_USER_INPUT', `${name} must be comma-separated numbers`);
  return values;
}

export async function startServer(options: ServerOptions = {}): Promise<ServerHandle> {
  const log = options.log ?? ((message: string) => console.log(`lipcert: ${message}`));
  const maxUploadBytes = options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  // base64 is 4/3 of the bytes; leave room for the rest of the request.
  const bodyLimit = Math.min(Math.ceil((maxUploadBytes * 4) / 3) + 1024 * 1024, MAX_JSON_BODY);
  const exposure = exposureProblem(options.host ?? '127.0.0.1', options.token, options.allowNoToken ?? false);
  if (exposure) throw new LipcertError('FORBIDDEN', exposure);

  const executor = options.redisUrl ? await RedisExecutor.connect(options.redisUrl) : undefined;
  const store = await openStore(options.dataDir ?? './data').catch(async (error: unknown) => {
    await executor?.close();
    throw error;
  });
  if (store.migrated.length > 0) log(`applied migrations ${store.migrated.join(', ')} in ${store.dataDir}`);
  const service = new LipcertService(store, {
    concurrency: options.concurrency ?? 1,
    maxUploadBytes,
    backgroundBackend: options.backgroundBackend ?? 'auto',
    inputBackend: 'cpu',
    resourceLimits: options.resourceLimits ?? defaultResourceLimits(),
    executor,
    runThreadScript: options.runThreadScript,
    log,
  });
  if (executor) log(`runs go to the BullMQ queue on Redis, computed by \`lipcert worker\` processes`);
  try {
    return await serve(service, options, { log, maxUploadBytes, bodyLimit });
  } catch (error) {
    await service.stop().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw error;
  }
}

async function serve(
  service: LipcertService,
  options: ServerOptions,
  { log, maxUploadBytes, bodyLimit }: { log: (message: string) => void; maxUploadBytes: number; bodyLimit: number },
): Promise<ServerHandle> {
  const store = service.store;
  const maxDepth = options.maxDepth ?? 12;
  await service.recover();
  if (options.preload) await preloadFixtures(service);

  const schema = makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers: makeResolvers(service) });
  const app = express();
  const httpServer: Server = createServer(app);
  const corsOrigins = options.corsOrigins ?? 'local';
  const allowedHosts = options.allowedHosts ?? [];
  const maxCost = options.maxQueryCost ?? DEFAULT_MAX_COST;
  // Host and Origin are checked at the upgrade: a refused page never gets a connection_ack.
  const wsServer = new WebSocketServer({ server: httpServer, path: '/graphql', maxPayload: bodyLimit, verifyClient: verifyUpgrade(corsOrigins, allowedHosts) });
  const wsLimits = { schema, rules: [depthLimit(maxDepth)], maxCost };
  const wsCleanup = useServer(
    {
      schema,
      onConnect: connectionAuthorised(options.token),
      onSubscribe: (_ctx, _id, payload) => prepareOperation(wsLimits, payload),
      onNext: (_ctx, _id, _payload, _args, result) => resultWithCodes(result),
    },
    wsServer,
  );

  const offlineLandingPage: ApolloServerPlugin = {
    async serverWillStart() {
      return {
        async drainServer() {
          await wsCleanup.dispose();
        },
        async renderLandingPage() {
          return { html: () => graphiqlPage(options.token !== undefined) };
        },
      };
    },
  };
  const apollo = new ApolloServer({
    schema,
    validationRules: [depthLimit(maxDepth)],
    parseOptions: { maxTokens: MAX_TOKENS },
    includeStacktraceInErrorResponses: false,
    plugins: [ApolloServerPluginDrainHttpServer({ httpServer }), offlineLandingPage, queryCostPlugin(maxCost)],
  });
  await apollo.start();

  app.use(hostCheck(allowedHosts)); // DNS rebinding: only the names this server answers to
  app.get('/', async (_req, res) => {
    res.type('html').send(await graphiqlPage(options.token !== undefined));
  });
  app.use('/app', webApp(options.webDir ?? defaultWebDir()));
  const allowOrigins = cors(corsOrigins);
  const authorised = requireToken(options.token);
  app.use('/graphql', allowOrigins, authorised, express.json({ limit: bodyLimit }), sourceGuard, expressMiddleware(apollo));
  // Models too large for a base64 string in a JSON body (V8 strings stop near 512 MB): raw bytes.
  app.options('/models', allowOrigins);
  const rawBody = express.raw({ type: 'application/octet-stream', limit: maxUploadBytes });
  const bodyOf = (req: Request) => (Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
  const nameOf = (req: Request) => (typeof req.query.name === 'string' ? req.query.name : '');
  app.post(
    '/models',
    allowOrigins,
    authorised,
    requireOctetStream,
    rawBody,
    rawUpload('importModel', async (req) => {
      const model = await service.importModel(nameOf(req), bodyOf(req));
      return { id: model.id, name: model.name, sha256: model.sha256 };
    }),
  );
  // Datasets too large for a JSON string: raw .npz bytes, ?name=N&mean=M[,M...]&std=S[,S...].
  app.options('/datasets', allowOrigins);
  app.post(
    '/datasets',
    allowOrigins,
    authorised,
    requireOctetStream,
    rawBody,
    rawUpload('importDataset', async (req) => {
      const dataset = await service.datasets.import(nameOf(req), bodyOf(req), numberListParam(req.query.mean, 'mean'), numberListParam(req.query.std, 'std'));
      return { id: dataset.id, name: dataset.name, sha256: dataset.sha256, count: dataset.count, inputShape: JSON.parse(dataset.itemShape) };
    }),
  );
  // A model's ONNX bytes by sha256, for `lipcert worker` processes (the token when there is one; no CORS).
  app.get('/models/:sha256', authorised, async (req: Request, res: Response) => {
    const sha256 = String(req.params.sha256);
    const model = /^[0-9a-f]{64}$/.test(sha256) ? await store.prisma.model.findUnique({ where: { sha256 } }) : null;
    if (!model) {
      res.status(404).json(graphqlErrorBody(`no model with sha256 '${sha256}'`, 'NOT_FOUND'));
      return;
    }
    res.type('application/octet-stream').sendFile(service.models.fileOf(sha256), (error) => {
      if (error && !res.headersSent) res.status(404).json(graphqlErrorBody(`the ONNX file of model '${model.name}' is missing from the data directory`, 'NOT_FOUND'));
    });
  });
  // Body-parser failures (too large, not JSON) answered as GraphQL errors, never a crash.
  app.use((error: { type?: string; status?: number; message?: string }, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    if (error.type === 'entity.too.large' || error.status === 413) {
      res.status(413).json(graphqlErrorBody(`the request is too large: uploads are limited to ${maxUploadBytes} bytes`, 'PAYLOAD_TOO_LARGE'));
    } else if (error.type === 'entity.parse.failed') {
      res.status(400).json(graphqlErrorBody('the request body is not valid JSON', 'BAD_REQUEST'));
    } else if (error.status && error.status < 500) {
      res.status(error.status).json(graphqlErrorBody(error.message ?? 'bad request', 'BAD_REQUEST'));
    } else {
      console.error('lipcert: request failed:', error);
      res.status(500).json(graphqlErrorBody('internal server error', 'INTERNAL_SERVER_ERROR'));
    }
  });

  const host = options.host ?? '127.0.0.1';
  try {
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(options.port ?? 4000, host, () => {
        httpServer.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await apollo.stop();
    throw error;
  }
  const port = (httpServer.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  const url = `http://${shown}:${port}/graphql`;
  log(`serving GraphQL at ${url} (GraphiQL at http://${shown}:${port}/, the web page at http://${shown}:${port}/app/), data in ${store.dataDir}`);

  let stopped: Promise<void> | null = null;
  return {
    url,
    wsUrl: url.replace(/^http/, 'ws'),
    port,
    service,
    stop() {
      stopped ??= (async () => {
        await service.stop();
        await apollo.stop();
        await store.close();
      })();
      return stopped;
    },
  };
}
