/**
 * Datasets: at /app/datasets, import a labelled test set (.npz with x and y, normalised by a preset
 * or a mean/std given here), certify its first N images on a model (eps, radius, method), and list
 * past dataset runs; at /app/datasets/runs/<id>, one dataset run: live progress from the
 * datasetRunProgress subscription (the images reloaded as they finish), cancel, then the certified
 * accuracy as the step function it is, a histogram of the radii and the per-image table, each
 * image linking to its own run's page. Every number says what it is.
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, asApiError, gql, subscribe, uploadDatasetBytes } from '../api';
import { AccuracyChart, RadiusHistogram } from '../components/charts';
import { CachedBadge, Card, Dropzone, Empty, Facts, FieldError, Link, MethodBadge, ProgressBar, QualityBadge, Spinner, StatusBadge } from '../components/ui';
import { DEFAULT_CERTIFICATE, DEFAULT_METHOD } from '../../../src/bounds/defaults';
import { CERTIFICATE_CHOICES, METHOD_CHOICES, dateTime, epsList, num, percent, seconds, shape, shortId } from '../format';
import { PRESETS, readBase64 } from '../images';
import {
  CANCEL_DATASET_RUN,
  DATASET_RUN,
  DATASET_RUN_PROGRESS,
  DATASETS,
  IMPORT_DATASET,
  START_DATASET_RUN,
  isTerminal,
  type Certificate,
  type Dataset,
  type DatasetImage,
  type DatasetRun,
  type DatasetRunSummary,
  type Method,
} from '../queries';
import type { DatasetsQuery } from '../generated/graphql';
import { href, navigate } from '../router';
import { Choice, parseNumbers } from './certify';
import { Tile } from './run';

/** Datasets above this size go as raw bytes (POST /datasets), not as a base64 string in JSON. */
const RAW_UPLOAD_BYTES = 64 * 1024 * 1024;
/** While a dataset run is going, its images are read again at most this often. */
const RELOAD_MS = 1000;

type Models = DatasetsQuery['models'];

export function DatasetsPage() {
  const [state, setState] = useState<DatasetsQuery | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [selected, setSelected] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const data = await gql(DATASETS);
      setState(data);
      setSelected((current) => current ?? data.datasets.at(-1)?.id ?? null);
      setError(null);
    } catch (e) {
      setError(asApiError(e));
    }
  }, []);
  useEffect(() => void load(), [load]);

  const dataset = state?.datasets.find((d) => d.id === selected) ?? null;
  return (
    <div class="layout-sidebar">
      <aside>
        <ImportCard
          onImported={(id) => {
            setSelected(id);
            void load();
          }}
        />
        <Card title="Datasets">
          <FieldError error={error} />
          {state && state.datasets.length === 0 && <Empty>No datasets yet.</Empty>}
          <ul class="model-list" data-testid="datasets">
            {state?.datasets.map((d) => (
              <li key={d.id}>
                <a href="#" class={d.id === selected ? 'active' : ''} onClick={(e) => (e.preventDefault(), setSelected(d.id))}>
                  <span class="model-name">{d.name}</span>
                  <span class="model-meta">
                    {d.count} × {shape(d.inputShape)} · {d.pixels.toLowerCase()}
                    {d.mean ? ` · mean ${d.mean.map((m) => num(m)).join(',')} std ${d.std?.map((s) => num(s)).join(',') ?? '1'}` : ''}
                  </span>
                </a>
              </li>
            ))}
          </ul>
        </Card>
      </aside>
      <div class="main-column">
        {dataset && state ? <StartCard key={dataset.id} dataset={dataset} models={state.models} /> : <Card title="Certify a dataset"><Empty>Import a dataset first.</Empty></Card>}
        <PastRuns runs={state?.datasetRuns ?? null} />
      </div>
    </div>
  );
}

function ImportCard({ onImported }: { onImported(id: string): void }) {
  const [presetId, setPresetId] = useState('fashion-mnist');
  const [meanText, setMeanText] = useState('');
  const [stdText, setStdText] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  function normalisation(): { mean: number[] | null; std: number[] | null } | string {
    if (presetId === 'as-given') return { mean: null, std: null };
    if (presetId !== 'custom') {
      const preset = PRESETS.find((p) => p.id === presetId)!;
      return { mean: preset.mean, std: preset.std };
    }
    const mean = parseNumbers(meanText);
    const std = parseNumbers(stdText);
    if (typeof mean === 'string') return `mean: ${mean}`;
    if (typeof std === 'string') return `std: ${std}`;
    return { mean, std };
  }

  async function importFile(file: File) {
    setError(null);
    const norm = normalisation();
    if (typeof norm === 'string') {
      setError(new ApiError('BAD_USER_INPUT', norm));
      return;
    }
    setBusy(true);
    const name = file.name.replace(/\.npz$/i, '') || 'dataset';
    try {
      const id =
        file.size > RAW_UPLOAD_BYTES
          ? (await uploadDatasetBytes(name, file, norm.mean, norm.std)).id
          : (await gql(IMPORT_DATASET, { name, npz: await readBase64(file), mean: norm.mean, std: norm.std })).importDataset.id;
      onImported(id);
    } catch (e) {
      setError(asApiError(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Card title="Import a dataset" step={1}>
      <label class="field">
        <span>Normalisation (uint8 pixels are first scaled to [0, 1])</span>
        <select data-testid="dataset-preset" value={presetId} onChange={(e) => setPresetId(e.currentTarget.value)}>
          {PRESETS.map((p) => (
            <option key={p.id} value={p.id}>
              {p.label} (mean {p.mean.join(', ')}; std {p.std.join(', ')})
            </option>
          ))}
          <option value="custom">mean and std given here</option>
          <option value="as-given">none: floats as given</option>
        </select>
      </label>
      {presetId === 'custom' && (
        <div class="field-row">
          <label class="field">
            <span>mean</span>
            <input type="text" data-testid="dataset-mean" value={meanText} onInput={(e) => setMeanText(e.currentTarget.value)} />
          </label>
          <label class="field">
            <span>std</span>
            <input type="text" data-testid="dataset-std" value={stdText} onInput={(e) => setStdText(e.currentTarget.value)} />
          </label>
        </div>
      )}
      <Dropzone
        accept=".npz,application/zip"
        label={busy ? 'Importing…' : 'Drop an .npz here or choose a file'}
        hint="numpy.savez with x [N,C,H,W] or [N,H,W,C] and integer labels y"
        busy={busy}
        testId="dataset-file"
        onFile={importFile}
      />
      <FieldError error={error} id="dataset-error" />
    </Card>
  );
}

function StartCard({ dataset, models }: { dataset: Dataset; models: Models }) {
  const [modelId, setModelId] = useState(models.at(-1)?.id ?? '');
  const [limitText, setLimitText] = useState(String(Math.min(dataset.count, 100)));
  const [epsText, setEpsText] = useState('0.001');
  const [radius, setRadius] = useState(true);
  const [method, setMethod] = useState<Method>(DEFAULT_METHOD.toUpperCase() as Method);
  const [certificate, setCertificate] = useState<Certificate>(DEFAULT_CERTIFICATE.toUpperCase() as Certificate);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  async function start() {
    setError(null);
    const eps = epsText.trim() ? parseNumbers(epsText) : [];
    if (typeof eps === 'string') {
      setError(new ApiError('BAD_USER_INPUT', `eps: ${eps}`));
      return;
    }
    const limit = Number(limitText);
    setBusy(true);
    try {
      const { startDatasetRun } = await gql(START_DATASET_RUN, { model: modelId, dataset: dataset.id, eps, radius, limit, method, certificate });
      navigate(href({ page: 'dataset-run', datasetRunId: startDatasetRun.id }));
    } catch (e) {
      setError(asApiError(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Card title={`Certify “${dataset.name}”`} step={2}>
      <div class="run-form">
        <Facts
          rows={[
            ['Images', String(dataset.count)],
            ['Image shape', shape(dataset.inputShape)],
            ['Pixels', dataset.pixels === 'UINT8' ? 'uint8, scaled to [0, 1]' : 'floats'],
            ['Normalisation', dataset.mean || dataset.std ? `(x − ${dataset.mean?.join(', ') ?? 0}) / ${dataset.std?.join(', ') ?? 1}` : 'none'],
          ]}
        />
        <div class="field-row">
          <label class="field">
            <span>Model</span>
            <select data-testid="dataset-model" value={modelId} onChange={(e) => setModelId(e.currentTarget.value)}>
              {models.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.name} ({shape(m.inputShape)} → {shape(m.outputShape)})
                </option>
              ))}
            </select>
          </label>
          <label class="field narrow">
            <span>First N images</span>
            <input type="number" min={1} max={dataset.count} data-testid="dataset-limit" value={limitText} onInput={(e) => setLimitText(e.currentTarget.value)} />
          </label>
        </div>
        <label class="field wide">
          <span>ε of the local bounds per image (optional), separated by commas</span>
          <input type="text" data-testid="dataset-eps" value={epsText} onInput={(e) => setEpsText(e.currentTarget.value)} />
        </label>
        <label class="check">
          <input type="checkbox" data-testid="dataset-radius" checked={radius} onChange={(e) => setRadius(e.currentTarget.checked)} />
          <span>
            Certified radius of each correctly classified image <span class="muted">(for certified accuracy; a misclassified image has radius 0)</span>
          </span>
        </label>
        <div class="field-row">
          <Choice<Method> label="Method" testId="dataset-method" value={method} choices={METHOD_CHOICES} onChange={setMethod} />
          <Choice<Certificate> label="Spectral norms" testId="dataset-certificate" value={certificate} choices={CERTIFICATE_CHOICES} onChange={setCertificate} />
        </div>
        <FieldError error={error} id="dataset-run-error" />
        <div class="run-actions">
          <button class="primary" data-testid="start-dataset-run" disabled={busy || !modelId} onClick={start}>
            {busy ? <Spinner /> : null} Certify the images
          </button>
          <span class="muted small">Each image is an ordinary run: images certified before with the same settings come from the cache.</span>
        </div>
      </div>
    </Card>
  );
}

function PastRuns({ runs }: { runs: DatasetRunSummary[] | null }) {
  return (
    <Card title="Dataset runs">
      {!runs && (
        <p class="loading">
          <Spinner /> Loading…
        </p>
      )}
      {runs && runs.length === 0 && <Empty>No dataset runs yet.</Empty>}
      {runs && runs.length > 0 && (
        <div class="table-scroll">
          <table class="data" data-testid="dataset-runs">
            <thead>
              <tr>
                <th>Run</th>
                <th>Created</th>
                <th>Dataset</th>
                <th>Model</th>
                <th>Method</th>
                <th>Status</th>
                <th class="num">Images</th>
                <th class="num">Accuracy</th>
                <th class="num">Median radius</th>
              </tr>
            </thead>
            <tbody>
              {runs.map((r) => (
                <tr key={r.id}>
                  <td>
                    <Link href={href({ page: 'dataset-run', datasetRunId: r.id })} class="mono">
                      {shortId(r.id)}
                    </Link>
                  </td>
                  <td class="muted nowrap">{dateTime(r.createdAt)}</td>
                  <td>{r.dataset?.name ?? <span class="muted">deleted</span>}</td>
                  <td>{r.model?.name ?? <span class="muted">deleted</span>}</td>
                  <td>
                    <MethodBadge method={r.method} certificate={r.certificate} />
                  </td>
                  <td>
                    <StatusBadge status={r.status} />
                  </td>
                  <td class="num">
                    {r.done} / {r.total}
                  </td>
                  <td class="num">{r.accuracy == null ? '—' : percent(r.accuracy)}</td>
                  <td class="num nowrap">
                    {num(r.medianRadius)} <QualityBadge quality={r.radiusQuality} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}

export function DatasetRunPage({ datasetRunId }: { datasetRunId: string }) {
  const [run, setRun] = useState<DatasetRun | null>(null);
  const [done, setDone] = useState<number | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [cancelError, setCancelError] = useState<ApiError | null>(null);
  const [cancelling, setCancelling] = useState(false);
  const lastLoad = useRef(0);

  useEffect(() => {
    let stopped = false;
    let unsubscribe: (() => void) | null = null;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const fetchRun = async () => {
      lastLoad.current = Date.now();
      const { datasetRun } = await gql(DATASET_RUN, { id: datasetRunId });
      if (!datasetRun) throw new ApiError('NOT_FOUND', `there is no dataset run ${datasetRunId}`);
      if (!stopped) setRun(datasetRun);
      return datasetRun;
    };
    /** The images again, at most every RELOAD_MS while events come in. */
    const reloadSoon = () => {
      if (timer) return;
      timer = setTimeout(() => {
        timer = null;
        void fetchRun().catch(() => undefined);
      }, Math.max(0, RELOAD_MS - (Date.now() - lastLoad.current)));
    };
    (async () => {
      try {
        const first = await fetchRun();
        if (stopped || isTerminal(first.status)) return;
        unsubscribe = subscribe(DATASET_RUN_PROGRESS, { id: datasetRunId }, {
          next: ({ datasetRunProgress: event }) => {
            if (stopped) return;
            setDone(event.done);
            if (isTerminal(event.status)) void fetchRun().catch(() => undefined);
            else reloadSoon();
          },
          error: () => {
            // No live connection: read the run every second until it ends.
            if (stopped) return;
            const poll = setInterval(async () => {
              const latest = await fetchRun().catch(() => null);
              if (stopped || (latest && isTerminal(latest.status))) clearInterval(poll);
            }, RELOAD_MS);
          },
          complete: () => !stopped && void fetchRun().catch(() => undefined),
        });
      } catch (e) {
        if (!stopped) setError(asApiError(e));
      }
    })();
    return () => {
      stopped = true;
      unsubscribe?.();
      if (timer) clearTimeout(timer);
    };
  }, [datasetRunId]);

  async function cancel() {
    setCancelling(true);
    setCancelError(null);
    try {
      await gql(CANCEL_DATASET_RUN, { id: datasetRunId });
    } catch (e) {
      setCancelError(asApiError(e));
    } finally {
      setCancelling(false);
    }
  }

  if (!run) {
    return (
      <Card title={`Dataset run ${shortId(datasetRunId)}`}>
        {error ? <FieldError error={error} /> : <p class="loading"><Spinner /> Loading the dataset run…</p>}
      </Card>
    );
  }
  const finished = Math.max(done ?? 0, run.done);
  return (
    <div class="run-page" data-status={run.status} data-testid="dataset-run">
      <Card
        title={
          <>
            Dataset run <code class="run-id">{shortId(run.id)}</code> <StatusBadge status={run.status} />
          </>
        }
        actions={
          !isTerminal(run.status) && (
            <button class="danger" data-testid="cancel-dataset-run" disabled={cancelling} onClick={cancel}>
              {cancelling ? <Spinner /> : null} Cancel
            </button>
          )
        }
      >
        <Facts
          rows={[
            ['Dataset', run.dataset ? `${run.dataset.name} (first ${run.total} of ${run.dataset.count})` : <span class="muted">deleted</span>],
            ['Model', run.model ? <Link href={href({ page: 'certify', modelId: run.model.id })}>{run.model.name}</Link> : <span class="muted">deleted</span>],
            ['ε', run.eps.length ? <span class="mono">{epsList(run.eps, 6)}</span> : <span class="muted">none</span>],
            ['Method', <MethodBadge method={run.method} certificate={run.certificate} />],
            ['Certified radius', run.radius ? 'of each correctly classified image' : 'not asked for'],
            ['Computed by', run.workers.length ? run.workers.join(', ') : '—'],
            ['Created', dateTime(run.createdAt)],
          ]}
        />
        <div class="run-progress" data-testid="dataset-progress">
          <ProgressBar fraction={run.total ? finished / run.total : 0} status={run.status} label="images done" />
          <p class="progress-message muted" data-testid="dataset-progress-message">
            {finished} of {run.total} images done{run.status === 'RUNNING' ? `, ${run.correct} classified correctly so far` : ''}
          </p>
        </div>
        <FieldError error={cancelError ?? error} />
        {run.error && run.status !== 'SUCCEEDED' && (
          <div class={`callout ${run.status === 'CANCELLED' ? 'warn' : 'error'}`} role="alert" data-testid="dataset-run-error">
            <strong>{run.status === 'CANCELLED' ? 'Cancelled' : 'The dataset run failed'}</strong>
            <span class="code">{run.error.code}</span> {run.error.message}
          </div>
        )}
      </Card>
      {run.status === 'SUCCEEDED' && <Summary run={run} />}
      <ImagesCard images={run.images} />
    </div>
  );
}

function Summary({ run }: { run: DatasetRun }) {
  const what =
    run.radiusQuality === 'ESTIMATE'
      ? 'radii from spectral norm estimates: estimates of the method’s radius, not certificates'
      : run.failureProbabilityTotal
        ? `radii certified by probabilistic certificates: the expected number of images wrongly counted as certified is at most ${num(run.failureProbabilityTotal, 3)}`
        : run.radiusQuality === 'UPPER'
          ? 'radii certified by deterministic certificates'
          : 'no positive radius';
  return (
    <>
      <div class="tiles-row" data-testid="dataset-summary">
        <Tile label="Accuracy" value={run.accuracy == null ? '—' : percent(run.accuracy)} note={`${run.correct} of ${run.total} classified correctly`} testId="dataset-accuracy" />
        {run.certifiedAccuracy && run.eps.length > 0 && (
          <Tile
            label={`Certified accuracy at r = ${num(run.eps[0])}`}
            value={percent(accuracyAt(run.certifiedAccuracy, run.eps[0]!))}
            badge={<QualityBadge quality={run.radiusQuality} />}
            note="correct and certified"
          />
        )}
        <Tile label="Median radius" value={num(run.medianRadius)} badge={<QualityBadge quality={run.radiusQuality} />} note="over all images (misclassified: 0)" testId="dataset-median-radius" />
      </div>
      <div class="grid-2">
        {run.certifiedAccuracy && (
          <Card title="Certified accuracy against the radius">
            <AccuracyChart curve={run.certifiedAccuracy} quality={run.radiusQuality} />
            <p class="caption" data-testid="accuracy-caption">
              The fraction of all {run.total} images that are classified correctly and certified at radius r (their certified radius is at least r),
              exactly, as a step function; {what}.
            </p>
          </Card>
        )}
        <Card title="Certified radii">
          <RadiusHistogram images={run.images} />
          <p class="caption">Images by certified radius; the misclassified ones (radius 0, nothing certified) on the left.</p>
        </Card>
      </div>
    </>
  );
}

/** The curve's value at r (the next listed radius at or above r; 0 beyond the last). */
function accuracyAt(curve: { radius: number; accuracy: number }[], r: number): number {
  if (r <= 0) return curve[0]?.accuracy ?? 0;
  return curve.find((p) => p.radius >= r)?.accuracy ?? 0;
}

function ImagesCard({ images }: { images: DatasetImage[] }) {
  return (
    <Card title="Images">
      {images.length === 0 && <Empty>No image has started yet.</Empty>}
      {images.length > 0 && (
        <div class="table-scroll">
          <table class="data" data-testid="dataset-images">
            <thead>
              <tr>
                <th class="num">#</th>
                <th class="num">Label</th>
                <th class="num">Predicted</th>
                <th class="num">Margin</th>
                <th class="num">Certified radius</th>
                <th>Worker</th>
                <th class="num">Compute</th>
                <th>Run</th>
              </tr>
            </thead>
            <tbody>
              {images.map((im) => (
                <tr key={im.index} data-status={im.status}>
                  <td class="num">{im.index}</td>
                  <td class="num">{im.label}</td>
                  <td class={`num ${im.predictedClass !== null && im.predictedClass !== im.label ? 'text-error' : ''}`}>{im.predictedClass ?? '—'}</td>
                  <td class="num">{num(im.margin)}</td>
                  <td class="num nowrap">
                    {im.status === 'DONE' ? (
                      <>
                        {num(im.radius)} <QualityBadge quality={im.quality} failureProbability={im.failureProbability} />
                      </>
                    ) : im.error ? (
                      <span class="small text-error" title={im.error.message}>
                        {im.error.code}
                      </span>
                    ) : (
                      <span class="muted">{im.status.toLowerCase()}</span>
                    )}
                  </td>
                  <td class="mono small">{im.worker ?? '—'}</td>
                  <td class="num muted">{seconds(im.seconds)}</td>
                  <td>
                    {im.run ? (
                      <>
                        <Link href={href({ page: 'run', runId: im.run.id })} class="mono">
                          {shortId(im.run.id)}
                        </Link>{' '}
                        {im.run.cached && <CachedBadge />}
                      </>
                    ) : (
                      <span class="muted">none</span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}
