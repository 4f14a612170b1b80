/**
 * Runs that also search (issue 5): lower bounds on L(x0, ε) and attacks beside the certified
 * bounds, with their progress phases; the same request again from the cache; a request without
 * them keeps its old cache key; bad options and enum values as GraphQL errors; cancelling during
 * the search. MNIST fixture, small search budgets.
 */
import { ENGINE_VERSION } from '../../src/bounds/certify.js';
import { startServer, type ServerHandle } from '../../src/server/server.js';
import { cacheKey } from '../../src/store/cache-key.js';
import { codeOf, collectSubscription, gql, importMnist8, tempDataDir, waitFor } from './client.js';

const quiet = () => undefined;
const RESULT = `id status cached lowerBounds attacks error { code message }
  result {
    local { eps bound }
    radius { local }
    lowerBounds { eps method kind bound distance evaluations seconds }
    attacks { method kind perturbation adversarialClass perturbationLinf runs evaluations seconds }
  }`;
const START = `mutation($m: ID!, $i: ID!, $eps: [Float!]!, $radius: Boolean, $lower: Boolean, $samples: Int, $restarts: Int,
  $steps: Int, $seed: Int, $attacks: [AttackMethod!], $attackSteps: Int, $method: Method, $certificate: Certificate) {
  startRun(modelId: $m, inputId: $i, eps: $eps, radius: $radius, method: $method, certificate: $certificate, backend: CPU, lowerBounds: $lower, lowerSamples: $samples,
    lowerRestarts: $restarts, lowerSteps: $steps, seed: $seed, attacks: $attacks, attackSteps: $attackSteps) { ${RESULT} }
}`;
const PROGRESS = `subscription($id: ID!) { runProgress(runId: $id) { status progress message phase run { ${RESULT} } } }`;
const RUN = `query($id: ID!) { run(id: $id) { status message } }`;
/** Small budgets: the whole run takes about a second. */
const SMALL = { lower: true, samples: 20, restarts: 2, steps: 10, attacks: ['PGD'], attackSteps: 5 };

describe('runs with lower bounds and attacks', () => {
  const data = tempDataDir();
  let server: ServerHandle;
  let ids: { m: string; i: string };

  beforeAll(async () => {
    server = await startServer({ port: 0, dataDir: data.dir, log: quiet, backgroundBackend: 'cpu' });
    ids = await importMnist8(server.url);
  });
  afterAll(async () => {
    await server?.stop();
    data.remove();
  });

  test('lower bounds sit below the local bound, attacks above the certified radius; the same request is cached', async () => {
    const started = await gql(server.url, START, { ...ids, eps: [0.001], radius: true, ...SMALL });
    expect(started.errors).toBeUndefined();
    expect(started.data.startRun.lowerBounds).toBe(true);
    expect(started.data.startRun.attacks).toEqual(['PGD']);
    const { payloads } = await collectSubscription(server.wsUrl, PROGRESS, { id: started.data.startRun.id });
    const events = payloads.map((p) => p.data.runProgress);
    const phases = new Set(events.map((e) => e.phase));
    expect([...phases]).toEqual(expect.arrayContaining(['local', 'radius', 'lower', 'attack']));
    expect(events.find((e) => e.phase === 'attack').message).toMatch(/PGD/);
    const progress = events.map((e) => e.progress);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    const run = events.at(-1).run;
    expect(run.status).toBe('SUCCEEDED');

    const { local, radius, lowerBounds, attacks } = run.result;
    expect(lowerBounds.map((l: { method: string }) => l.method)).toEqual(['GRADIENT', 'RANDOM']);
    for (const l of lowerBounds) {
      expect(l).toMatchObject({ eps: 0.001, kind: 'LOWER' });
      expect(l.bound).toBeGreaterThan(0);
      expect(l.bound).toBeLessThanOrEqual(local[0].bound);
      expect(l.distance).toBeLessThanOrEqual(0.001 * (1 + 1e-6));
    }
    expect(attacks).toHaveLength(1);
    expect(attacks[0]).toMatchObject({ method: 'PGD', kind: 'UPPER' });
    expect(attacks[0].adversarialClass).not.toBe(8);
    expect(attacks[0].perturbation).toBeGreaterThanOrEqual(radius.local);

    // Again, with the attacks listed twice: served from the cache, nothing computed.
    const computed = server.service.stats.runsComputed;
    const again = await gql(server.url, START, { ...ids, eps: [0.001], radius: true, ...SMALL, attacks: ['PGD', 'PGD'] });
    expect(again.data.startRun.cached).toBe(true);
    expect(again.data.startRun.status).toBe('SUCCEEDED');
    expect(again.data.startRun.result).toEqual(run.result);
    expect(server.service.stats.runsComputed).toBe(computed);

    // Another seed is another request (cancelled: only its key matters here).
    const other = await gql(server.url, START, { ...ids, eps: [0.001], radius: true, ...SMALL, seed: 2 });
    expect(other.data.startRun.cached).toBe(false);
    await gql(server.url, `mutation($id: ID!) { cancelRun(id: $id) { status } }`, { id: other.data.startRun.id });
  });

  test('a run without searches keeps the cache key it had before them, and has none in its result', async () => {
    // The paper's method with estimates: the only computation before method and certificate were choices.
    const started = await gql(server.url, START, { ...ids, eps: [0.001], method: 'PAPER', certificate: 'ESTIMATE' });
    expect(started.data.startRun).toMatchObject({ lowerBounds: false, attacks: [] });
    const { payloads } = await collectSubscription(server.wsUrl, PROGRESS, { id: started.data.startRun.id });
    const run = payloads.at(-1)!.data.runProgress.run;
    expect(run.result).toMatchObject({ lowerBounds: null, attacks: null });

    const row = await server.service.store.prisma.run.findUniqueOrThrow({ where: { id: run.id }, include: { model: true, input: true } });
    expect(row.cacheKey).toBe(
      cacheKey({
        modelSha256: row.model.sha256,
        inputSha256: row.input.sha256,
        eps: [0.001],
        method: 'avant-morgansen-local',
        params: { radius: false, tolerance: 1e-6 },
        engineVersion: ENGINE_VERSION,
      }),
    );
  });

  test('bad enum values and search options: GraphQL errors with a code', async () => {
    const literal = await gql(server.url, `mutation($m: ID!, $i: ID!) { startRun(modelId: $m, inputId: $i, eps: [0.01], attacks: [CW]) { id } }`, ids);
    expect(codeOf(literal)).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(codeOf(await gql(server.url, START, { ...ids, eps: [0.01], attacks: ['CW'] }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await gql(server.url, START, { ...ids, eps: [0.01], attacks: ['pgd'] }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await gql(server.url, START, { ...ids, eps: [0.01], lower: true, samples: 0 }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await gql(server.url, START, { ...ids, eps: [0.01], lower: true, steps: 1e9 }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await gql(server.url, START, { ...ids, eps: [], radius: true, lower: true }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await gql(server.url, START, { ...ids, eps: [0.01], samples: 20 }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await gql(server.url, START, { ...ids, eps: [0.01], attackSteps: 5 }))).toBe('BAD_USER_INPUT');
    const about = await gql(server.url, '{ about { engineVersion } }');
    expect(about.errors).toBeUndefined();
  });

  test('a run is cancelled during its lower-bound search', async () => {
    const big = { lower: true, samples: 100_000, restarts: 1_000, steps: 50 };
    const started = (await gql(server.url, START, { ...ids, eps: [0.002], ...big })).data.startRun;
    await waitFor('the lower-bound search', async () => /lower bounds/.test((await gql(server.url, RUN, { id: started.id })).data.run.message));
    const cancelled = await gql(server.url, `mutation($id: ID!) { cancelRun(id: $id) { status error { code } } }`, { id: started.id });
    expect(cancelled.data.cancelRun).toEqual({ status: 'CANCELLED', error: { code: 'CANCELLED' } });
  });
});
