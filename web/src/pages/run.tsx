/**
 * One run at /app/runs/<id>: live progress from the runProgress subscription (polling if the
 * WebSocket fails), cancel, then the results: L(ε) on log-log axes, per-layer bars, the certified
 * radius beside attack perturbations, the bounds table and the timings. Every number says what
 * it is. A failed or cancelled run shows its error and whatever it has.
 */
import type { ComponentChildren } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, asApiError, gql, subscribe } from '../api';
import { LayerChart, LipschitzChart } from '../components/charts';
import { CachedBadge, Card, Facts, FieldError, KindBadge, Link, MethodBadge, ProgressBar, QualityBadge, Spinner, StatusBadge } from '../components/ui';
import { CERTIFICATE_LABEL, METHOD_LABEL, dateTime, epsList, num, seconds, shortId, weakestQuality } from '../format';
import { CANCEL_RUN, RUN, RUN_PROGRESS, isTerminal, type AttackEntry, type CertifyResult, type LowerBoundEntry, type Run } from '../queries';
import { href } from '../router';
import { Thumbnail } from './certify';

const POLL_MS = 1000;

interface Live {
  progress: number;
  message: string;
  phase: string | null;
}

export function RunPage({ runId }: { runId: string }) {
  const [run, setRun] = useState<Run | null>(null);
  const [live, setLive] = useState<Live | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [cancelError, setCancelError] = useState<ApiError | null>(null);
  const [cancelling, setCancelling] = useState(false);

  useEffect(() => {
    let stopped = false;
    let unsubscribe: (() => void) | null = null;
    let poll: ReturnType<typeof setInterval> | null = null;

    const fetchRun = async () => {
      const { run } = await gql(RUN, { id: runId });
      if (!run) throw new ApiError('NOT_FOUND', `there is no run ${runId}`);
      if (!stopped) setRun(run);
      return run;
    };
    const startPolling = () => {
      poll ??= setInterval(async () => {
        try {
          const run = await fetchRun();
          setLive({ progress: run.progress, message: run.message, phase: null });
          if (isTerminal(run.status) && poll) clearInterval(poll);
        } catch {
          // The next tick tries again.
        }
      }, POLL_MS);
    };

    (async () => {
      try {
        const first = await fetchRun();
        if (stopped || isTerminal(first.status)) return;
        unsubscribe = subscribe(RUN_PROGRESS, { id: runId }, {
          next: ({ runProgress: event }) => {
            if (stopped) return;
            setLive({ progress: event.progress, message: event.message, phase: event.phase });
            if (event.run) setRun(event.run);
            else setError(new ApiError('NOT_FOUND', `run ${shortId(runId)} was deleted with its model`));
          },
          error: () => {
            if (!stopped) startPolling();
          },
          complete: () => {
            // The last event carried the final state; read it once more in case an event was missed.
            if (!stopped) void fetchRun().catch(() => undefined);
          },
        });
      } catch (e) {
        if (!stopped) setError(asApiError(e));
      }
    })();
    return () => {
      stopped = true;
      unsubscribe?.();
      if (poll) clearInterval(poll);
    };
  }, [runId]);

  async function cancel() {
    setCancelling(true);
    setCancelError(null);
    try {
      await gql(CANCEL_RUN, { id: runId });
    } catch (e) {
      setCancelError(asApiError(e));
    } finally {
      setCancelling(false);
    }
  }

  if (error) {
    return (
      <Card title={`Run ${shortId(runId)}`}>
        <FieldError error={error} />
        <p>
          <Link href={href({ page: 'runs', modelId: null, status: null })}>All runs →</Link>
        </p>
      </Card>
    );
  }
  if (!run) {
    return (
      <Card title={`Run ${shortId(runId)}`}>
        <p class="loading">
          <Spinner /> Loading the run…
        </p>
      </Card>
    );
  }

  const progress = isTerminal(run.status) && run.status === 'SUCCEEDED' ? 1 : (live?.progress ?? run.progress);
  const message = live?.message ?? run.message;
  const phase = live?.phase;
  return (
    <div class="run-page" data-status={run.status}>
      <Card
        title={
          <>
            Run <code class="run-id">{shortId(run.id)}</code> <StatusBadge status={run.status} /> {run.cached && <CachedBadge />}
          </>
        }
        actions={
          !isTerminal(run.status) && (
            <button class="danger" data-testid="cancel-run" disabled={cancelling} onClick={cancel}>
              {cancelling ? <Spinner /> : null} Cancel
            </button>
          )
        }
      >
        <div class="run-head">
          <Thumbnail inputId={run.inputId} large />
          <Facts
            rows={[
              ['Model', run.model ? <Link href={href({ page: 'certify', modelId: run.model.id })}>{run.model.name}</Link> : <span class="muted">deleted</span>],
              ['Input', run.input ? `${run.input.name ?? shortId(run.input.id)} · class ${run.input.predictedClass}` : <span class="muted">deleted</span>],
              ['ε', <span class="mono">{epsList(run.eps, 8)}</span>],
              ['Method', <span data-testid="run-method"><MethodBadge method={run.method} certificate={run.certificate} />{run.delta != null && <span class="muted small"> δ = {num(run.delta)} per norm</span>}</span>],
              ['Certified radius', run.radius ? 'asked for' : 'not asked for'],
              ['Backend', run.backend ? `${run.backend}${run.adapter ? ` · ${run.adapter}` : ''}` : run.requestedBackend.toLowerCase()],
              ['Created', dateTime(run.timings.createdAt)],
            ]}
          />
        </div>
        <div class="run-progress" data-testid="progress">
          <ProgressBar fraction={progress} status={run.status} />
          <p class="progress-message muted">
            {phase && <span class="phase">{phase}</span>}
            {run.status === 'SUCCEEDED' ? (run.cached ? 'served from the cache' : 'done') : message || run.status.toLowerCase()}
          </p>
        </div>
        <FieldError error={cancelError} />
        {run.error && run.status !== 'SUCCEEDED' && (
          <div class={`callout ${run.status === 'CANCELLED' ? 'warn' : 'error'}`} role="alert" data-testid="run-error">
            <strong>{run.status === 'CANCELLED' ? 'Cancelled' : 'The run failed'}</strong>
            <span class="code">{run.error.code}</span> {run.error.message}
          </div>
        )}
      </Card>
      {run.result && <Results run={run} result={run.result} />}
    </div>
  );
}

function Results({ run, result }: { run: Run; result: CertifyResult }) {
  const lower = result.lowerBounds ?? [];
  const attacks = result.attacks ?? [];
  const local = useMemo(() => [...result.local].sort((a, b) => a.eps - b.eps), [result]);
  const localQuality = weakestQuality(local.map((l) => l.quality));
  return (
    <>
      <div class="tiles-row" data-testid="summary">
        <Tile label="Predicted class" value={String(result.class)} />
        <Tile label="Margin δ" note="top-1 − top-2 logit" value={num(result.margin)} />
        <Tile
          label="Global bound"
          value={result.globalBound ? num(result.globalBound.bound) : '—'}
          testId="global-bound"
          badge={result.globalBound ? <><QualityBadge quality={result.globalBound.quality} failureProbability={result.globalBound.failureProbability} /> <MethodBadge method={result.globalBound.method} certificate={result.globalBound.certificate} /></> : undefined}
          note={result.globalBound ? 'product of layer bounds' : 'not known yet for this model'}
        />
        {result.radius && (
          <Tile
            label="Certified radius"
            value={num(result.radius.local)}
            testId="certified-radius"
            badge={<><QualityBadge quality={result.radius.quality} failureProbability={result.radius.failureProbability} /> <MethodBadge method={result.radius.method} certificate={result.certificate} /></>}
            note="from the local bound (ℓ₂)"
          />
        )}
      </div>
      <div class="grid-2">
        <Card title="Lipschitz bound against ε" class="span-2">
          <LipschitzChart result={result} lower={lower} />
          <p class="caption">
            Local bound L(x₀, ε) by {result.method === 'TIGHT' ? 'the ' : ''}{METHOD_LABEL[result.method]} with {CERTIFICATE_LABEL[result.certificate]} ({localQuality === 'ESTIMATE' ? `spectral norms estimated to a relative tolerance of ${num(result.tolerance)}` : localQuality ? `guaranteed${result.failureProbability ? `, every certified number of this run failing with probability at most ${num(result.failureProbability, 3)} in all` : ''}` : 'none asked for'}) against the
            global bound; lower bounds {lower.length ? 'are ratios found by search (L is at least this)' : 'were not computed by this server'}. Below the dotted
            threshold δ/(√2·ε), no perturbation of size ε changes the class.
          </p>
        </Card>
        <Card title="Per-layer local bounds">
          <LayerChart result={result} />
        </Card>
        <RadiusCard result={result} attacks={attacks} />
      </div>
      <BoundsTable result={result} lower={lower} />
      <TimingsCard run={run} result={result} />
    </>
  );
}

export function Tile(props: { label: string; value: string; note?: string; badge?: ComponentChildren; testId?: string }) {
  return (
    <div class="tile-stat" data-testid={props.testId}>
      <span class="tile-label">{props.label}</span>
      <span class="tile-value number">{props.value}</span>
      <span class="tile-note">
        {props.badge} {props.note}
      </span>
    </div>
  );
}

interface RadiusRow {
  what: string;
  detail: string;
  value: number;
  badge: ComponentChildren;
  kind: 'certified' | 'attack' | 'bracket';
}

function RadiusCard({ result, attacks }: { result: CertifyResult; attacks: AttackEntry[] }) {
  const rows: RadiusRow[] = [];
  const r = result.radius;
  if (r) {
    rows.push({
      what: 'Certified radius (local bound)',
      detail: `no perturbation this small changes the class (${METHOD_LABEL[r.method]})`,
      value: r.local,
      badge: <QualityBadge quality={r.quality} failureProbability={r.failureProbability} />,
      kind: 'certified',
    });
    rows.push({
      what: 'Certified radius (global bound)',
      detail: 'δ / (√2 · L_global)',
      value: r.global,
      badge: <QualityBadge quality={r.globalQuality ?? result.globalBound?.quality} failureProbability={result.globalBound?.failureProbability} />,
      kind: 'certified',
    });
    rows.push({
      what: 'Local criterion failed at',
      detail: 'end of the bisection bracket, not an attack',
      value: r.localUpper,
      badge: <span class="badge quality">bracket</span>,
      kind: 'bracket',
    });
  }
  for (const a of attacks) {
    if (a.perturbation == null) continue;
    rows.push({
      what: `Attack: ${a.method.toUpperCase()}`,
      detail: a.adversarialClass != null ? `smallest perturbation found, to class ${a.adversarialClass}` : 'smallest perturbation found',
      value: a.perturbation,
      badge: <KindBadge kind="attack" title="An adversarial point at this distance exists, so the minimal perturbation is no larger" />,
      kind: 'attack',
    });
  }
  const failed = attacks.filter((a) => a.perturbation == null);
  const values = rows.map((x) => x.value).filter((v) => v > 0);
  const lo = Math.log10(Math.min(...values) / 1.5);
  const hi = Math.log10(Math.max(...values) * 1.2);
  const width = (v: number) => (v > 0 ? Math.max(2, ((Math.log10(v) - lo) / (hi - lo || 1)) * 100) : 0);
  return (
    <Card title="Certified radius and attacks">
      {rows.length === 0 ? (
        <p class="muted">This run did not ask for the certified radius. Start one with “Certified radius” checked.</p>
      ) : (
        <table class="data radius-table" data-testid="radius-table">
          <thead>
            <tr>
              <th>ℓ₂ perturbation</th>
              <th class="num">size</th>
              <th class="bar-col" aria-label="log scale" />
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.what}>
                <td>
                  <div>{row.what}</div>
                  <div class="muted small">
                    {row.badge} {row.detail}
                  </div>
                </td>
                <td class="num">{num(row.value)}</td>
                <td class="bar-col">
                  <span class={`hbar hbar-${row.kind}`} style={{ width: `${width(row.value)}%` }} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {r && <p class="caption">Bisection: {r.evaluations} local-bound evaluations to a relative width of {num(r.relativeTolerance)}; bars on a log scale.</p>}
      {r?.refinement && (
        <p class="caption" data-testid="refinement">
          Refinement stage: {r.refinement.evaluations} full sweeps in {num(r.refinement.seconds)} s of a {num(r.refinement.budgetSeconds)} s budget
          {r.refinement.completed ? ', finished' : ', stopped by the budget'}; the fast search had certified {num(r.refinement.fastRadius)}.
          {r.refinement.refinedRadius != null && ` Branching: ${r.refinement.branchAttempts} eps tried, ${r.refinement.branches} branches bounded (${r.refinement.emptyBranches} empty), from the full sweeps' ${num(r.refinement.refinedRadius)}.`}
        </p>
      )}
      {r?.marginResolved === false && <p class="caption" data-testid="margin-unresolved">The top-1 margin is below what float32 arithmetic resolves: the computed class may not be the exact network's, so nothing is certified.</p>}
      {attacks.length === 0 && r && <p class="caption">No attack results from this server: the minimal adversarial perturbation lies above the certified radius.</p>}
      {failed.length > 0 && <p class="caption">No adversarial point found by {failed.map((a) => a.method.toUpperCase()).join(', ')}.</p>}
    </Card>
  );
}

function BoundsTable({ result, lower }: { result: CertifyResult; lower: LowerBoundEntry[] }) {
  const local = [...result.local].sort((a, b) => a.eps - b.eps);
  const lowerAt = (eps: number) => lower.filter((l) => Math.abs(l.eps - eps) <= 1e-12 * Math.max(1, eps)).sort((a, b) => b.bound - a.bound)[0];
  return (
    <Card title="Local bounds">
      <div class="table-scroll">
        <table class="data" data-testid="bounds-table">
          <thead>
            <tr>
              <th class="num">ε</th>
              <th class="num">L(x₀, ε)</th>
              <th>what it is</th>
              {lower.length > 0 && <th class="num">lower bound (search)</th>}
              <th class="num">√2·ε·L</th>
              <th>class certified within ε</th>
              <th class="num">time</th>
            </tr>
          </thead>
          <tbody>
            {local.map((l) => {
              const g = Math.SQRT2 * l.eps * l.bound;
              const lb = lowerAt(l.eps);
              return (
                <tr key={l.eps}>
                  <td class="num mono">{num(l.eps)}</td>
                  <td class="num">
                    <strong>{num(l.bound)}</strong>
                  </td>
                  <td>
                    <QualityBadge quality={l.quality} failureProbability={l.failureProbability} /> <MethodBadge method={l.method} />
                  </td>
                  {lower.length > 0 && <td class="num">{lb ? <>{num(lb.bound)} <span class="muted small">{lb.method}</span></> : '—'}</td>}
                  <td class="num">{num(g)}</td>
                  <td>{g < result.margin ? <span class="yes">yes (√2·ε·L &lt; δ = {num(result.margin)})</span> : <span class="no">not by this bound</span>}</td>
                  <td class="num muted">{seconds(l.seconds)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </Card>
  );
}

function TimingsCard({ run, result }: { run: Run; result: CertifyResult }) {
  const rows: [string, ComponentChildren][] = [
    ['Waiting in the queue', seconds(run.timings.queuedSeconds)],
    [
      'Computation (engine)',
      <>
        {seconds(run.timings.computeSeconds ?? result.seconds)} {run.cached && <span class="muted small">when it was first computed</span>}
      </>,
    ],
  ];
  if (result.globalBound) {
    rows.push([
      'Global bound',
      <>
        {seconds(result.globalBound.seconds)} {!run.radius && <span class="muted small">computed with the model, not by this run</span>}
      </>,
    ]);
  }
  if (result.radius) rows.push(['Certified radius search', seconds(result.radius.seconds)]);
  rows.push(['Local bounds, all ε', seconds(result.local.reduce((s, l) => s + l.seconds, 0))]);
  rows.push(['Started · finished', `${dateTime(run.timings.startedAt)} · ${dateTime(run.timings.finishedAt)}`]);
  rows.push(['Backend', `${result.backend}${result.adapter ? ` · ${result.adapter}` : ''}`]);
  rows.push(['Engine', result.engineVersion]);
  return (
    <Card title={<>Timings {run.cached && <CachedBadge />}</>}>
      <Facts rows={rows} />
    </Card>
  );
}
