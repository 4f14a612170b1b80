/** Past runs, newest first, filtered by model and status (kept in the URL), a page at a time. */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, asApiError, gql } from '../api';
import { CachedBadge, Card, Empty, FieldError, Link, MethodBadge, QualityBadge, Spinner, StatusBadge } from '../components/ui';
import { dateTime, epsList, num, percent, seconds, shortId } from '../format';
import { MODELS, RUNS, RUN_STATUSES, type ModelSummary, type RunPage as Page, type RunRow, type RunStatus } from '../queries';
import { href, navigate } from '../router';
import { STATUS_LABEL } from '../format';

const PAGE_SIZE = 25;

export function RunsPage({ modelId, status }: { modelId: string | null; status: string | null }) {
  const [models, setModels] = useState<ModelSummary[]>([]);
  const [rows, setRows] = useState<RunRow[] | null>(null);
  const [page, setPage] = useState<Omit<Page, 'nodes'> | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);

  useEffect(() => {
    gql(MODELS).then((d) => setModels(d.models), () => undefined);
  }, []);

  async function load(after: string | null) {
    const { runs } = await gql(RUNS, { model: modelId, status: status as RunStatus | null, first: PAGE_SIZE, after });
    const { nodes, ...rest } = runs;
    setPage(rest);
    return nodes;
  }

  useEffect(() => {
    setRows(null);
    setError(null);
    load(null).then(setRows, (e) => setError(asApiError(e)));
  }, [modelId, status]);

  async function more() {
    if (!page?.endCursor) return;
    setLoadingMore(true);
    try {
      const next = await load(page.endCursor);
      setRows((r) => [...(r ?? []), ...next]);
    } catch (e) {
      setError(asApiError(e));
    } finally {
      setLoadingMore(false);
    }
  }

  const filter = (change: { modelId?: string | null; status?: string | null }) =>
    navigate(href({ page: 'runs', modelId: change.modelId !== undefined ? change.modelId : modelId, status: change.status !== undefined ? change.status : status }), true);

  return (
    <Card
      title="Runs"
      actions={
        <div class="filters">
          <label class="field inline">
            <span>Model</span>
            <select data-testid="filter-model" value={modelId ?? ''} onChange={(e) => filter({ modelId: e.currentTarget.value || null })}>
              <option value="">all models</option>
              {models.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.name}
                </option>
              ))}
            </select>
          </label>
          <label class="field inline">
            <span>Status</span>
            <select data-testid="filter-status" value={status ?? ''} onChange={(e) => filter({ status: e.currentTarget.value || null })}>
              <option value="">any status</option>
              {RUN_STATUSES.map((s) => (
                <option key={s} value={s}>
                  {STATUS_LABEL[s]}
                </option>
              ))}
            </select>
          </label>
        </div>
      }
    >
      <FieldError error={error} />
      {!rows && !error && (
        <p class="loading">
          <Spinner /> Loading runs…
        </p>
      )}
      {rows && rows.length === 0 && <Empty>No runs match. Start one from the certify page.</Empty>}
      {rows && rows.length > 0 && (
        <div class="table-scroll">
          <table class="data runs" data-testid="runs-table">
            <thead>
              <tr>
                <th>Run</th>
                <th>Created</th>
                <th>Model</th>
                <th>Input</th>
                <th>ε</th>
                <th>Method</th>
                <th>Status</th>
                <th class="num">L at largest ε</th>
                <th class="num">Certified radius</th>
                <th class="num">Compute</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((run) => {
                const last = run.result?.local.length ? [...run.result.local].sort((a, b) => a.eps - b.eps).at(-1)! : null;
                return (
                  <tr key={run.id}>
                    <td>
                      <Link href={href({ page: 'run', runId: run.id })} class="mono">
                        {shortId(run.id)}
                      </Link>
                    </td>
                    <td class="muted nowrap">{dateTime(run.timings.createdAt)}</td>
                    <td>{run.model?.name ?? <span class="muted">deleted</span>}</td>
                    <td>{run.input ? `${run.input.name ?? shortId(run.input.id)} (class ${run.input.predictedClass})` : <span class="muted">deleted</span>}</td>
                    <td class="mono small">{epsList(run.eps)}</td>
                    <td>
                      <MethodBadge method={run.method} certificate={run.certificate} />
                    </td>
                    <td class="nowrap">
                      <StatusBadge status={run.status} /> {run.cached && <CachedBadge />}
                      {run.status === 'RUNNING' && <span class="muted small"> {percent(run.progress)}</span>}
                      {run.error && run.status === 'FAILED' && (
                        <div class="small text-error" title={run.error.message}>
                          {run.error.code}
                        </div>
                      )}
                    </td>
                    <td class="num nowrap">
                      {last ? (
                        <>
                          {num(last.bound)} <QualityBadge quality={last.quality} />
                        </>
                      ) : (
                        '—'
                      )}
                    </td>
                    <td class="num nowrap">
                      {run.result?.radius ? (
                        <>
                          {num(run.result.radius.local)} <QualityBadge quality={run.result.radius.quality} />
                        </>
                      ) : run.radius ? (
                        '—'
                      ) : (
                        <span class="muted">not asked</span>
                      )}
                    </td>
                    <td class="num muted">{seconds(run.timings.computeSeconds)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {page && (
        <div class="table-foot">
          <span class="muted small">
            {rows?.length ?? 0} of {page.totalCount} runs
          </span>
          {page.hasNextPage && (
            <button onClick={more} disabled={loadingMore}>
              {loadingMore ? <Spinner /> : null} Load more
            </button>
          )}
        </div>
      )}
    </Card>
  );
}
