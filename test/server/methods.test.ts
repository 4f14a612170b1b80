/**
 * The API speaks the engine's language (issue 13), on a fresh server with the MNIST fixture:
 * a default run is the tight method with probabilistic certificates (quality UPPER, between the
 * gradient-ascent lower bound and half the paper's bound, radius at least twice the paper's);
 * PAPER with ESTIMATE reproduces reference.json; the two never share a cache entry; a repeat of
 * either is cached; every bound says how it was obtained; a cache entry from before method and
 * certificate were choices is served as the paper's method with estimates; clear errors.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSchema, type GraphQLEnumType } from 'graphql';
import { ENGINE_VERSION } from '../../src/bounds/certify.js';
import { DEFAULTS } from '../../src/bounds/defaults.js';
import { startServer, type ServerHandle } from '../../src/server/server.js';
import { cacheKey } from '../../src/store/cache-key.js';
import { RUN_FIELDS, codeOf, collectSubscription, gql, importMnist8, reference, tempDataDir } from './client.js';

const ref = reference().models.mnist_lenet.images['8'];
const relativeError = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
const quiet = () => undefined;
const START = `mutation($m: ID!, $i: ID!, $eps: [Float!]!, $radius: Boolean, $method: Method, $certificate: Certificate, $delta: Float, $seed: Int) {
  startRun(modelId: $m, inputId: $i, eps: $eps, radius: $radius, method: $method, certificate: $certificate, delta: $delta, seed: $seed, backend: CPU) { ${RUN_FIELDS} }
}`;
const PROGRESS = `subscription($id: ID!) { runProgress(runId: $id) { status run { ${RUN_FIELDS} } } }`;

describe('startRun: method and certificate', () => {
  const data = tempDataDir();
  let server: ServerHandle;
  let ids: { m: string; i: string };

  /** Starts a run and follows it to its end; returns the start answer and the final run. */
  async function run(variables: Record<string, unknown>) {
    const started = await gql(server.url, START, { ...ids, ...variables });
    expect(started.errors).toBeUndefined();
    const { payloads, error } = await collectSubscription(server.wsUrl, PROGRESS, { id: started.data.startRun.id }, 110_000);
    expect(error).toBeUndefined();
    const final = payloads.at(-1)!.data.runProgress.run;
    expect(final.status).toBe('SUCCEEDED');
    return { started: started.data.startRun, final };
  }

  beforeAll(async () => {
    server = await startServer({ port: 0, dataDir: data.dir, log: quiet, backgroundBackend: 'cpu' });
    ids = await importMnist8(server.url);
  });
  afterAll(async () => {
    await server?.stop();
    data.remove();
  });

  test('schema.graphql states the defaults of src/bounds/defaults.ts', () => {
    const schema = buildSchema(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'schema.graphql'), 'utf8'));
    const args = schema.getMutationType()!.getFields().startRun.args;
    const arg = (name: string) => args.find((a) => a.name === name)!;
    const internal = (name: string) => (arg(name).type as GraphQLEnumType).getValues().find((v) => v.value === arg(name).defaultValue)!.name.toLowerCase();
    expect({ method: internal('method'), certificate: internal('certificate'), delta: arg('delta').defaultValue }).toEqual(DEFAULTS);
  });

  let defaultRun: any;
  test('a default run is the tight method with probabilistic certificates: UPPER bounds, tighter than the paper', async () => {
    const { started, final } = await run({ eps: [0.001], radius: true });
    expect(started).toMatchObject({ cached: false, method: 'TIGHT', certificate: 'PROBABILISTIC', delta: 1e-3, seed: null });
    const result = final.result;
    expect(result).toMatchObject({ method: 'TIGHT', certificate: 'PROBABILISTIC', delta: 1e-3 });
    const [local] = result.local;
    expect(local).toMatchObject({ eps: 0.001, method: 'TIGHT', quality: 'UPPER' });
    // Between the gradient-ascent lower bound and half the paper's bound.
    expect(local.bound).toBeGreaterThan(ref.lower_bound_gradient_ascent['0.001']);
    expect(local.bound).toBeLessThan(ref.local_bound_converged['0.001'] / 2);
    expect(local.failureProbability).toBeGreaterThan(0);
    expect(local.failureProbability).toBeLessThan(0.1);
    for (const layer of local.layers) if (layer.quality === 'UPPER') expect(layer.certificate).toMatch(/^(deterministic|probabilistic):/);
    expect(result.radius).toMatchObject({ method: 'TIGHT', quality: 'UPPER' });
    expect(result.radius.local).toBeGreaterThanOrEqual(2 * ref.certified_radius_local);
    expect(result.radius.failureProbability).toBeGreaterThan(0);
    // The margin is resolved in float32 (docs/soundness.md).
    expect(result.radius.marginResolved).toBe(true);
    expect(result.globalBound).toMatchObject({ method: 'TIGHT', certificate: 'PROBABILISTIC', quality: 'UPPER' });
    // The union bound over every certified number of the result.
    expect(result.failureProbability).toBeCloseTo(result.globalBound.failureProbability + local.failureProbability + result.radius.failureProbability, 12);
    defaultRun = final;
  });

  let paperRun: any;
  test('PAPER with ESTIMATE reproduces reference.json, and never shares the default run\'s cache entry', async () => {
    const { started, final } = await run({ eps: [0.001], radius: true, method: 'PAPER', certificate: 'ESTIMATE' });
    expect(started).toMatchObject({ cached: false, method: 'PAPER', certificate: 'ESTIMATE', delta: null });
    const result = final.result;
    expect(result).toMatchObject({ method: 'PAPER', certificate: 'ESTIMATE', failureProbability: null });
    expect(relativeError(result.local[0].bound, ref.local_bound_converged['0.001'])).toBeLessThan(1e-3);
    expect(result.local[0]).toMatchObject({ quality: 'ESTIMATE', method: 'PAPER', failureProbability: null });
    expect(relativeError(result.globalBound.bound, ref.global_bound)).toBeLessThan(1e-3);
    expect(result.globalBound).toMatchObject({ method: 'PAPER', certificate: 'ESTIMATE', quality: 'ESTIMATE' });
    expect(relativeError(result.radius.local, ref.certified_radius_local)).toBeLessThan(5e-3);
    expect(result.radius).toMatchObject({ method: 'PAPER', quality: 'ESTIMATE', failureProbability: null, marginResolved: true });
    const rows = await server.service.store.prisma.run.findMany({ where: { id: { in: [defaultRun.id, final.id] } } });
    expect(new Set(rows.map((r) => r.cacheKey)).size).toBe(2);
    paperRun = final;
  });

  test('a repeat of either is served from the cache', async () => {
    const computed = server.service.stats.runsComputed;
    const again = await gql(server.url, START, { ...ids, eps: [0.001], radius: true });
    expect(again.data.startRun).toMatchObject({ cached: true, status: 'SUCCEEDED', method: 'TIGHT' });
    expect(again.data.startRun.result).toEqual(defaultRun.result);
    const paper = await gql(server.url, START, { ...ids, eps: [0.001], radius: true, method: 'PAPER', certificate: 'ESTIMATE' });
    expect(paper.data.startRun).toMatchObject({ cached: true, status: 'SUCCEEDED', method: 'PAPER' });
    expect(paper.data.startRun.result).toEqual(paperRun.result);
    // Giving a default explicitly is the same request.
    const explicit = await gql(server.url, START, { ...ids, eps: [0.001], radius: true, method: 'TIGHT', certificate: 'PROBABILISTIC', delta: 1e-3 });
    expect(explicit.data.startRun.cached).toBe(true);
    expect(server.service.stats.runsComputed).toBe(computed);
  });

  test('the model\'s global bound says how it was obtained', async () => {
    const { data } = await gql(server.url, `{ models { globalBound globalBoundQuality globalBoundMethod globalBoundCertificate globalBoundFailureProbability globalBoundStatus } }`);
    const [model] = data.models;
    expect(model).toMatchObject({ globalBoundStatus: 'DONE', globalBoundQuality: 'UPPER', globalBoundMethod: 'TIGHT', globalBoundCertificate: 'PROBABILISTIC' });
    expect(model.globalBoundFailureProbability).toBeGreaterThan(0);
    expect(model.globalBound).toBeGreaterThanOrEqual(ref.global_bound * (1 - 1e-3));
  });

  test('a default run takes the model\'s global bound as its own (it does not depend on the input); a seeded run draws its own', async () => {
    const { data } = await gql(server.url, `{ models { globalBound globalBoundStatus globalBoundFailureProbability } }`);
    const [model] = data.models;
    expect(model.globalBoundStatus).toBe('DONE');
    expect(model.globalBoundFailureProbability).toBeGreaterThan(0); // probabilistic factors: a fresh draw would differ
    const reused = (await run({ eps: [0.003], radius: true })).final.result;
    expect(reused.globalBound.bound).toBe(model.globalBound);
    const seeded = (await run({ eps: [0.003], radius: true, seed: 11 })).final.result;
    expect(seeded.globalBound.bound).not.toBe(model.globalBound);
    expect(seeded.globalBound).toMatchObject({ method: 'TIGHT', certificate: 'PROBABILISTIC', quality: 'UPPER' });
  });

  test('a result cached before method and certificate were choices is served as the paper\'s method with estimates', async () => {
    const prisma = server.service.store.prisma;
    const [model, input] = await Promise.all([prisma.model.findUniqueOrThrow({ where: { id: ids.m } }), prisma.input.findUniqueOrThrow({ where: { id: ids.i } })]);
    // The key and the stored result as the server wrote them before (no method, certificate, quality of the radius).
    const key = cacheKey({ modelSha256: model.sha256, inputSha256: input.sha256, eps: [0.002], method: 'avant-morgansen-local', params: { radius: false, tolerance: 1e-6 }, engineVersion: ENGINE_VERSION });
    const layer = { index: 0, kind: 'dense', relu: false, name: 'fc', inputShape: [784], outputShape: [10], bound: 370, quality: 'estimate' };
    const legacy = { class: 8, margin: 51.7, logits: [], local: [{ eps: 0.002, bound: 370, quality: 'estimate', layers: [layer], seconds: 0.01 }], backend: 'cpu', adapter: 'test', tolerance: 1e-6, seconds: 0.01, engineVersion: ENGINE_VERSION };
    await prisma.result.create({ data: { cacheKey: key, modelSha256: model.sha256, inputSha256: input.sha256, engineVersion: ENGINE_VERSION, result: JSON.stringify(legacy), computeSeconds: 0.01 } });
    const paper = await gql(server.url, START, { ...ids, eps: [0.002], method: 'PAPER', certificate: 'ESTIMATE' });
    expect(paper.data.startRun).toMatchObject({ cached: true, method: 'PAPER', certificate: 'ESTIMATE' });
    expect(paper.data.startRun.result).toMatchObject({ method: 'PAPER', certificate: 'ESTIMATE', failureProbability: null });
    expect(paper.data.startRun.result.local[0]).toMatchObject({ bound: 370, method: 'PAPER', quality: 'ESTIMATE' });
    // The same eps with the defaults is another request.
    const tight = await gql(server.url, START, { ...ids, eps: [0.002] });
    expect(tight.data.startRun.cached).toBe(false);
    await gql(server.url, `mutation($id: ID!) { cancelRun(id: $id) { status } }`, { id: tight.data.startRun.id });
  });

  test('branchBudget: the refinement stage of the radius over the API; 0 is no stage; clear errors where it does not fit', async () => {
    const BUDGET = `mutation($m: ID!, $i: ID!, $radius: Boolean, $method: Method, $budget: Float) {
      startRun(modelId: $m, inputId: $i, eps: [0.001], radius: $radius, method: $method, branchBudget: $budget, backend: CPU) { id cached branchBudget result { radius { local refinement { evaluations seconds budgetSeconds fastRadius completed } } } }
    }`;
    const bad = async (variables: Record<string, unknown>, message: RegExp) => {
      const answer = await gql(server.url, BUDGET, { ...ids, radius: true, ...variables });
      expect(codeOf(answer)).toBe('BAD_USER_INPUT');
      expect(answer.errors![0]!.message).toMatch(message);
    };
    await bad({ budget: -1 }, /^branchBudget must be from 0 to 3600 seconds \(got -1\)$/);
    await bad({ budget: 1e9 }, /^branchBudget must be from 0 to 3600 seconds/);
    await bad({ budget: 5, radius: false }, /^branchBudget refines the certified radius: set radius: true$/);
    await bad({ budget: 5, method: 'PAPER' }, /^branchBudget is a stage of the TIGHT method/);
    // 0 is the default request: the default run's cache entry, no stage.
    const none = await gql(server.url, BUDGET, { ...ids, radius: true, budget: 0 });
    expect(none.data.startRun).toMatchObject({ cached: true, branchBudget: null });
    expect(none.data.startRun.result.radius).toEqual({ local: defaultRun.result.radius.local, refinement: null });
    // A budget: its own request; the stage reports itself and never shrinks the radius.
    const started = await gql(server.url, BUDGET, { ...ids, radius: true, budget: 5 });
    expect(started.data.startRun).toMatchObject({ cached: false, branchBudget: 5 });
    const { payloads, error } = await collectSubscription(server.wsUrl, `subscription($id: ID!) { runProgress(runId: $id) { status run { status branchBudget result { radius { local quality refinement { evaluations seconds budgetSeconds fastRadius completed refinedRadius branchAttempts branches emptyBranches } } } } } }`, { id: started.data.startRun.id }, 110_000);
    expect(error).toBeUndefined();
    const final = payloads.at(-1)!.data.runProgress.run;
    expect(final.status).toBe('SUCCEEDED');
    const radius = final.result.radius;
    expect(radius.quality).toBe('UPPER');
    expect(radius.refinement).toMatchObject({ budgetSeconds: 5 });
    // MNIST's fast sweeps bound every unit that may switch: a full sweep would repeat them (§6), so none runs.
    expect(radius.refinement.evaluations).toBe(0);
    expect(radius.refinement.seconds).toBeLessThan(5 + 60); // the budget bounds the stage (plus one interrupted layer)
    expect(radius.local).toBeGreaterThanOrEqual(radius.refinement.fastRadius);
    // A finished bisection leaves the rest of the budget to branching (docs/tightness.md §7), which reports itself.
    if (radius.refinement.completed) {
      expect(radius.refinement.refinedRadius).toBeGreaterThanOrEqual(radius.refinement.fastRadius);
      expect(radius.refinement.branchAttempts).toBeGreaterThanOrEqual(1);
      expect(radius.refinement.branches).toBeGreaterThanOrEqual(radius.refinement.emptyBranches);
      expect(radius.local).toBeGreaterThanOrEqual(radius.refinement.refinedRadius);
    } else {
      expect(radius.refinement.refinedRadius).toBeNull();
    }
  });

  test('delta and seed: part of the request where they matter, clear errors where they do not fit', async () => {
    const bad = async (variables: Record<string, unknown>, message: RegExp) => {
      const answer = await gql(server.url, START, { ...ids, eps: [0.001], ...variables });
      expect(codeOf(answer)).toBe('BAD_USER_INPUT');
      expect(answer.errors![0]!.message).toMatch(message);
    };
    await bad({ delta: 0 }, /^delta must be in \(0, 1\) \(got 0\)$/);
    await bad({ delta: 1.5 }, /^delta must be in \(0, 1\)/);
    await bad({ certificate: 'ESTIMATE', seed: 3 }, /^seed seeds probabilistic certificates and the lower-bound search; this run has neither/);
    expect(codeOf(await gql(server.url, START, { ...ids, eps: [0.001], method: 'CROWN' }))).toBe('BAD_USER_INPUT');
    // A seed fixes the certificates' starts: another request than the unseeded default; a delta with ESTIMATE is ignored.
    const seeded = await gql(server.url, START, { ...ids, eps: [0.001], radius: true, seed: 5 });
    expect(seeded.data.startRun).toMatchObject({ cached: false, seed: 5 });
    await gql(server.url, `mutation($id: ID!) { cancelRun(id: $id) { status } }`, { id: seeded.data.startRun.id });
    const estimate = await gql(server.url, START, { ...ids, eps: [0.001], radius: true, method: 'PAPER', certificate: 'ESTIMATE', delta: 0.25 });
    expect(estimate.data.startRun).toMatchObject({ cached: true, delta: null });
  });
});
