/**
 * The certify page: import a model (drop zone or picker) and read its layers, add an input (PNG with
 * a normalisation preset, or .npy) and see its class and margin, then start a run with an eps list
 * or a log-spaced sweep. Starting a run opens the run's own page.
 */
import { useCallback, useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, asApiError, gql, uploadModelBytes } from '../api';
import { Card, Dropzone, Empty, Facts, FieldError, Link, MethodBadge, QualityBadge, Spinner } from '../components/ui';
import { DEFAULT_CERTIFICATE, DEFAULT_DELTA, DEFAULT_METHOD } from '../../../src/bounds/defaults';
import { CERTIFICATE_CHOICES, METHOD_CHOICES } from '../format';
import { integer, logspace, num, shape, shortId } from '../format';
import { PRESETS, loadThumbnail, npyPreview, parseNpy, pngPreview, presetFor, readBase64, saveThumbnail } from '../images';
import {
  ADD_INPUT,
  IMPORT_MODEL,
  MODEL,
  MODELS,
  MODEL_STATUS,
  START_RUN,
  type AttackMethod,
  type Backend,
  type Certificate,
  type Method,
  type Input,
  type Model,
  type ModelLayer,
  type ModelSummary,
} from '../queries';
import { graphGutter, readsLabel } from '../graph';
import { href, navigate } from '../router';
import type { AddInputMutationVariables } from '../generated/graphql';

/** Models above this size go as raw bytes (POST /models), not as a base64 string in JSON. */
const RAW_UPLOAD_BYTES = 64 * 1024 * 1024;

/** A form field's number: null when left empty, an ApiError (named by `label`) when it is not a number. */
function optionalNumber(text: string, label = ''): number | null | ApiError {
  if (!text.trim()) return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : new ApiError('BAD_USER_INPUT', `${label}“${text}” is not a number`);
}

export function CertifyPage({ modelId }: { modelId: string | null }) {
  const [models, setModels] = useState<ModelSummary[] | null>(null);
  const [listError, setListError] = useState<ApiError | null>(null);
  const [uploading, setUploading] = useState(false);
  const [uploadError, setUploadError] = useState<ApiError | null>(null);

  const loadModels = useCallback(async () => {
    try {
      setModels((await gql(MODELS)).models);
      setListError(null);
    } catch (e) {
      setListError(asApiError(e));
    }
  }, []);
  useEffect(() => void loadModels(), [loadModels]);

  async function importFile(file: File) {
    setUploading(true);
    setUploadError(null);
    const name = file.name.replace(/\.onnx$/i, '') || 'model';
    try {
      let id: string;
      if (file.size > RAW_UPLOAD_BYTES) id = (await uploadModelBytes(name, file)).id;
      else id = (await gql(IMPORT_MODEL, { name, onnx: await readBase64(file) })).importModel.id;
      await loadModels();
      navigate(href({ page: 'certify', modelId: id }));
    } catch (e) {
      setUploadError(asApiError(e));
    } finally {
      setUploading(false);
    }
  }

  return (
    <div class="layout-sidebar">
      <aside>
        <Card title="Models" step={1}>
          <Dropzone
            accept=".onnx,application/octet-stream"
            label={uploading ? 'Importing…' : 'Drop an ONNX model here or choose a file'}
            hint="Conv, Gemm, pooling, flatten, residual Add, Concat; ReLU, LeakyReLU, PReLU, ReLU6/Clip, sigmoid, tanh"
            busy={uploading}
            testId="model-file"
            onFile={importFile}
          />
          <FieldError error={uploadError} id="model-error" />
          <FieldError error={listError} />
          {models && models.length === 0 && <Empty>No models yet.</Empty>}
          <ul class="model-list">
            {models?.map((m) => (
              <li key={m.id}>
                <Link href={href({ page: 'certify', modelId: m.id })} class={m.id === modelId ? 'active' : ''}>
                  <span class="model-name">{m.name}</span>
                  <span class="model-meta">
                    {shape(m.inputShape)} → {shape(m.outputShape)} · {integer(m.parameterCount)} params
                  </span>
                </Link>
              </li>
            ))}
          </ul>
        </Card>
      </aside>
      <div class="main-column">
        {modelId ? (
          <ModelWorkspace key={modelId} modelId={modelId} onChanged={loadModels} />
        ) : (
          <Card>
            <div class="welcome">
              <h2>Certify a ReLU network</h2>
              <p>
                lipcert bounds the local Lipschitz constant L(x₀, ε) of a network around an input x₀ and turns it into a
                certified adversarial radius: no perturbation smaller than the radius changes the predicted class.
              </p>
              <ol>
                <li>Import an ONNX model, or pick one on the left.</li>
                <li>Add an input image (PNG) or array (.npy).</li>
                <li>Choose the radii ε and start a run; follow its progress and read the plots.</li>
              </ol>
            </div>
          </Card>
        )}
      </div>
    </div>
  );
}

function ModelWorkspace({ modelId, onChanged }: { modelId: string; onChanged(): void }) {
  const [model, setModel] = useState<Model | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [inputId, setInputId] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const { model } = await gql(MODEL, { id: modelId });
      if (!model) throw new ApiError('NOT_FOUND', `there is no model ${modelId}`);
      setModel(model);
      setInputId((current) => current ?? model.inputs[model.inputs.length - 1]?.id ?? null);
    } catch (e) {
      setError(asApiError(e));
    }
  }, [modelId]);
  useEffect(() => void load(), [load]);

  // The global bound is computed in the background after an import: follow it until it settles.
  const pending = model && (model.globalBoundStatus === 'PENDING' || model.globalBoundStatus === 'RUNNING');
  useEffect(() => {
    if (!pending) return;
    const timer = setInterval(async () => {
      try {
        const { model: status } = await gql(MODEL_STATUS, { id: modelId });
        setModel((m) =>
          m && status
            ? {
                ...m,
                ...status,
                layers: m.layers.map((l) => ({ ...l, ...status.layers.find((s) => s.index === l.index) })),
              }
            : m,
        );
        if (status && status.globalBoundStatus !== 'PENDING' && status.globalBoundStatus !== 'RUNNING') onChanged();
      } catch {
        // Try again at the next tick.
      }
    }, 2000);
    return () => clearInterval(timer);
  }, [pending, modelId, onChanged]);

  if (error) return <Card title="Model"><FieldError error={error} /></Card>;
  if (!model) return <Card title="Model"><p class="loading"><Spinner /> Loading the model…</p></Card>;
  const input = model.inputs.find((i) => i.id === inputId) ?? null;
  return (
    <>
      <ModelCard model={model} />
      <InputCard
        model={model}
        selected={input}
        onSelect={setInputId}
        onAdded={(added) => {
          setModel((m) => (m ? { ...m, inputs: [...m.inputs.filter((i) => i.id !== added.id), added] } : m));
          setInputId(added.id);
        }}
      />
      <RunCard model={model} input={input} />
    </>
  );
}

function GlobalBound({ model }: { model: ModelSummary }) {
  switch (model.globalBoundStatus) {
    case 'DONE':
      return (
        <span data-testid="model-global-bound">
          <strong class="number">{num(model.globalBound)}</strong> <QualityBadge quality={model.globalBoundQuality} failureProbability={model.globalBoundFailureProbability} />{' '}
          <MethodBadge method={model.globalBoundMethod} certificate={model.globalBoundCertificate} />
        </span>
      );
    case 'FAILED':
      return <span class="text-error">failed: {model.globalBoundError}</span>;
    default:
      return (
        <span class="muted">
          <Spinner /> computing in the background…
        </span>
      );
  }
}

function layerParams(layer: ModelLayer): string {
  const p = layer.params;
  const parts: string[] = [];
  if (p.kernel) parts.push(`kernel ${p.kernel.join('×')}`);
  if (p.strides && p.strides.some((s) => s !== 1)) parts.push(`stride ${p.strides.join('×')}`);
  if (p.pads && p.pads.some((s) => s !== 0)) parts.push(`pads ${p.pads.join(',')}`);
  if (p.dilations && p.dilations.some((s) => s !== 1)) parts.push(`dilation ${p.dilations.join('×')}`);
  if (p.group && p.group !== 1) parts.push(`groups ${p.group}`);
  return parts.join(' · ') || '—';
}

function ModelCard({ model }: { model: Model }) {
  const gutter = useMemo(() => graphGutter(model.layers), [model.layers]);
  return (
    <Card
      title={model.name}
      actions={<Link href={href({ page: 'runs', modelId: model.id, status: null })}>Past runs of this model →</Link>}
    >
      <Facts
        rows={[
          ['Input shape', shape(model.inputShape)],
          ['Output shape', shape(model.outputShape)],
          ['Parameters', integer(model.parameterCount)],
          ['Global Lipschitz bound', <GlobalBound model={model} />],
          ['sha256', <code title={model.sha256}>{model.sha256.slice(0, 16)}…</code>],
        ]}
      />
      <div class="table-scroll">
        <table class="data layers" data-testid="layers">
          <thead>
            <tr>
              <th class="num">#</th>
              <th title="Reads other than the layer above: a lane from the layer that writes the tensor (╮) to the one that reads it (╯)">Graph</th>
              <th>Layer</th>
              <th>Input → output</th>
              <th>Hyper-parameters</th>
              <th class="num">Parameters</th>
              <th class="num">Global layer bound</th>
            </tr>
          </thead>
          <tbody>
            {model.layers.map((l, row) => (
              <tr key={l.index}>
                <td class="num muted">{l.index}</td>
                <td class="graph" aria-hidden="true">{gutter[row]}</td>
                <td>
                  <span class="kind">{l.kind}</span>
                  {l.relu && l.kind !== 'relu' && <span class="tag">ReLU</span>}
                  {l.activation && <span class="tag">{l.activation}</span>}
                  {readsLabel(l) && <span class="reads" data-testid="reads">reads {readsLabel(l)}</span>}
                  <span class="layer-name" title={l.name}>{l.name}</span>
                </td>
                <td class="mono">
                  {shape(l.inputShape)} → {shape(l.outputShape)}
                </td>
                <td class="muted">{layerParams(l)}</td>
                <td class="num">{l.params.parameterCount ? integer(l.params.parameterCount) : '—'}</td>
                <td class="num">
                  {l.globalBound == null ? <span class="muted">—</span> : <>{num(l.globalBound)} <QualityBadge quality={l.globalBoundQuality} /></>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Card>
  );
}

export function parseNumbers(text: string): number[] | string {
  const parts = text.split(/[\s,;]+/).filter(Boolean);
  if (parts.length === 0) return 'enter at least one number';
  const values = parts.map(Number);
  const bad = parts.find((_, i) => !Number.isFinite(values[i]));
  return bad === undefined ? values : `“${bad}” is not a number`;
}

interface PendingFile {
  file: File;
  format: 'png' | 'npy';
  preview: string | null;
  note: string | null;
}

function InputCard(props: { model: Model; selected: Input | null; onSelect(id: string): void; onAdded(input: Input): void }) {
  const { model, selected } = props;
  const [pending, setPending] = useState<PendingFile | null>(null);
  const [presetId, setPresetId] = useState(() => presetFor(model.inputShape));
  const channels = model.inputShape.length === 3 ? model.inputShape[0]! : 1;
  const [meanText, setMeanText] = useState('');
  const [stdText, setStdText] = useState('');
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [fileError, setFileError] = useState<ApiError | null>(null);
  const [normError, setNormError] = useState<ApiError | null>(null);

  const preset = PRESETS.find((p) => p.id === presetId);
  useEffect(() => {
    if (preset) {
      setMeanText(preset.mean.join(', '));
      setStdText(preset.std.join(', '));
    }
  }, [presetId]);

  async function choose(file: File) {
    setFileError(null);
    setNormError(null);
    const format = /\.npy$/i.test(file.name) ? 'npy' : 'png';
    let preview: string | null = null;
    let note: string | null = null;
    try {
      if (format === 'png') preview = await pngPreview(file);
      else {
        preview = await npyPreview(file);
        const array = parseNpy(await file.arrayBuffer());
        note = array ? `array of shape ${shape(array.shape)}` : 'not an .npy array this page can read; the server will check it';
      }
    } catch {
      note = 'this browser cannot show the file; the server will check it';
    }
    setPending({ file, format, preview, note });
    if (!name) setName(file.name.replace(/\.(png|npy)$/i, ''));
  }

  async function add() {
    if (!pending) return;
    setFileError(null);
    setNormError(null);
    const variables: AddInputMutationVariables = { model: model.id, name: name || null };
    if (pending.format === 'png') {
      const mean = parseNumbers(meanText);
      const std = parseNumbers(stdText);
      if (typeof mean === 'string' || typeof std === 'string') {
        setNormError(new ApiError('BAD_USER_INPUT', `mean and std: ${typeof mean === 'string' ? mean : std}`));
        return;
      }
      Object.assign(variables, { mean, std });
    }
    setBusy(true);
    try {
      const base64 = await readBase64(pending.file);
      if (pending.format === 'png') variables.png = base64;
      else variables.npy = base64;
      const { addInput } = await gql(ADD_INPUT, variables);
      if (pending.preview) saveThumbnail(addInput.id, pending.preview);
      props.onAdded(addInput);
      setPending(null);
      setName('');
    } catch (e) {
      const error = asApiError(e);
      if (/mean|std|normali[sz]/i.test(error.message)) setNormError(error);
      else setFileError(error);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Card title="Input x₀" step={2}>
      <div class="input-grid">
        <div class="input-form">
          <Dropzone
            accept=".png,.npy,image/png"
            label={pending ? pending.file.name : 'Drop a PNG image or an .npy array here, or choose a file'}
            hint={`The model expects ${shape(model.inputShape)}${channels === 1 ? ' (grayscale)' : channels === 3 ? ' (RGB)' : ''}`}
            testId="input-file"
            onFile={choose}
          />
          <FieldError error={fileError} id="input-file-error" />
          {pending && (
            <div class="pending">
              {pending.preview ? <img class="thumb large pixelated" src={pending.preview} alt="chosen input" /> : <div class="thumb large placeholder">no preview</div>}
              <div class="pending-fields">
                {pending.note && <p class="muted small">{pending.note}</p>}
                <label class="field">
                  <span>Name</span>
                  <input type="text" value={name} onInput={(e) => setName(e.currentTarget.value)} />
                </label>
                {pending.format === 'png' && (
                  <>
                    <label class="field">
                      <span>Normalisation (pixel/255 − mean) / std</span>
                      <select data-testid="preset" value={presetId} onChange={(e) => setPresetId(e.currentTarget.value)}>
                        {PRESETS.map((p) => (
                          <option key={p.id} value={p.id}>
                            {p.label}
                          </option>
                        ))}
                        <option value="custom">Custom</option>
                      </select>
                    </label>
                    <div class="field-row">
                      <label class="field">
                        <span>mean</span>
                        <input type="text" value={meanText} disabled={presetId !== 'custom'} onInput={(e) => setMeanText(e.currentTarget.value)} />
                      </label>
                      <label class="field">
                        <span>std</span>
                        <input type="text" value={stdText} disabled={presetId !== 'custom'} onInput={(e) => setStdText(e.currentTarget.value)} />
                      </label>
                    </div>
                    <FieldError error={normError} id="norm-error" />
                  </>
                )}
                <button class="primary" data-testid="add-input" disabled={busy} onClick={add}>
                  {busy ? <Spinner /> : null} Add input
                </button>
              </div>
            </div>
          )}
        </div>
        <div class="input-list">
          {model.inputs.length === 0 ? (
            <Empty>No inputs for this model yet.</Empty>
          ) : (
            <ul class="tiles">
              {model.inputs.map((input) => (
                <li key={input.id}>
                  <button class={`tile ${selected?.id === input.id ? 'selected' : ''}`} onClick={() => props.onSelect(input.id)} title={input.sha256}>
                    <Thumbnail inputId={input.id} />
                    <span class="tile-name">{input.name ?? shortId(input.id)}</span>
                    <span class="tile-meta">class {input.predictedClass}</span>
                  </button>
                </li>
              ))}
            </ul>
          )}
          {selected && <InputDetail input={selected} />}
        </div>
      </div>
    </Card>
  );
}

export function Thumbnail({ inputId, large }: { inputId: string | null | undefined; large?: boolean }) {
  const src = loadThumbnail(inputId);
  if (!src) return <span class={`thumb placeholder ${large ? 'large' : ''}`} title="The picture is kept only in the browser that added the input">x₀</span>;
  return <img class={`thumb pixelated ${large ? 'large' : ''}`} src={src} alt="input" />;
}

function InputDetail({ input }: { input: Input }) {
  const top = Math.max(...input.logits);
  const bottom = Math.min(0, ...input.logits);
  return (
    <div class="input-detail" data-testid="input-detail">
      <Facts
        rows={[
          ['Predicted class', <strong class="number" data-testid="predicted-class">{input.predictedClass}</strong>],
          ['Margin δ (top-1 − top-2 logit)', <span class="number" data-testid="margin">{num(input.margin)}</span>],
          ['Shape', shape(input.shape)],
        ]}
      />
      <div class="logits" aria-label="logits">
        {input.logits.map((v, k) => (
          <div class={`logit ${k === input.predictedClass ? 'top' : ''}`} key={k} title={`logit ${k}: ${num(v)}`}>
            <span class="logit-class">{k}</span>
            <span class="logit-bar">
              <span style={{ width: `${Math.max(1, ((v - bottom) / (top - bottom || 1)) * 100)}%` }} />
            </span>
            <span class="logit-value">{num(v, 3)}</span>
          </div>
        ))}
      </div>
    </div>
  );
}

/** The server's attack methods (schema.graphql, enum AttackMethod) as the form offers them. */
const ATTACK_CHOICES: [AttackMethod, string][] = [
  ['FGSM', 'FGSM'],
  ['IFGSM', 'iterative FGSM'],
  ['PGD', 'PGD (L2)'],
];

/** A labelled select over the API's values of an enum. */
export function Choice<T extends string>(props: { label: string; testId: string; value: T; choices: [T, string][]; onChange(value: T): void }) {
  return (
    <label class="field">
      <span>{props.label}</span>
      <select data-testid={props.testId} value={props.value} onChange={(e) => props.onChange(e.currentTarget.value as T)}>
        {props.choices.map(([value, label]) => (
          <option key={value} value={value}>
            {label}
          </option>
        ))}
      </select>
    </label>
  );
}

function RunCard({ model, input }: { model: Model; input: Input | null }) {
  const [mode, setMode] = useState<'list' | 'sweep'>('list');
  const [epsText, setEpsText] = useState('0.001, 0.01, 0.1');
  const [from, setFrom] = useState('0.0001');
  const [to, setTo] = useState('0.1');
  const [points, setPoints] = useState('7');
  const [radius, setRadius] = useState(true);
  // The engine's defaults (src/bounds/defaults.ts), as the API names them.
  const [method, setMethod] = useState<Method>(DEFAULT_METHOD.toUpperCase() as Method);
  const [certificate, setCertificate] = useState<Certificate>(DEFAULT_CERTIFICATE.toUpperCase() as Certificate);
  const [lowerBounds, setLowerBounds] = useState(false);
  const [attacks, setAttacks] = useState<AttackMethod[]>([]);
  const [backend, setBackend] = useState<Backend>('AUTO');
  const [tolerance, setTolerance] = useState('');
  const [branchBudget, setBranchBudget] = useState('');
  const [busy, setBusy] = useState(false);
  const [epsError, setEpsError] = useState<ApiError | null>(null);
  const [toleranceError, setToleranceError] = useState<ApiError | null>(null);
  const [formError, setFormError] = useState<ApiError | null>(null);

  const sweep = useMemo(() => {
    const a = Number(from);
    const b = Number(to);
    const n = Number(points);
    if (!(a > 0) || !(b > 0)) return 'the sweep needs positive ends';
    if (!Number.isInteger(n) || n < 1) return 'the number of points is a positive integer';
    return logspace(a, b, n);
  }, [from, to, points]);

  async function start() {
    setEpsError(null);
    setToleranceError(null);
    setFormError(null);
    if (!input) return;
    // With the radius asked for, an empty list is allowed: the run computes the radius only.
    const eps = mode === 'list' ? (radius && !epsText.trim() ? [] : parseNumbers(epsText)) : sweep;
    if (typeof eps === 'string') {
      setEpsError(new ApiError('BAD_USER_INPUT', eps));
      return;
    }
    const tol = optionalNumber(tolerance);
    if (tol instanceof ApiError) {
      setToleranceError(tol);
      return;
    }
    const budget = optionalNumber(branchBudget, 'branchBudget: ');
    if (budget instanceof ApiError) {
      setFormError(budget);
      return;
    }
    setBusy(true);
    try {
      const { startRun } = await gql(START_RUN, {
        model: model.id,
        input: input.id,
        eps,
        radius,
        method,
        certificate,
        backend,
        tolerance: tol,
        branchBudget: budget,
        lowerBounds,
        attacks,
      });
      navigate(href({ page: 'run', runId: startRun.id }));
    } catch (e) {
      const error = asApiError(e);
      if (/tolerance/i.test(error.message)) setToleranceError(error);
      else if (/eps|ε/i.test(error.message)) setEpsError(error);
      else setFormError(error);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Card title="Run" step={3}>
      <div class="run-form">
        <div class="segmented" role="radiogroup" aria-label="eps">
          <button role="radio" aria-checked={mode === 'list'} class={mode === 'list' ? 'on' : ''} onClick={() => setMode('list')}>
            ε list
          </button>
          <button role="radio" aria-checked={mode === 'sweep'} class={mode === 'sweep' ? 'on' : ''} onClick={() => setMode('sweep')}>
            Log-spaced sweep
          </button>
        </div>
        {mode === 'list' ? (
          <label class="field wide">
            <span>ε values (ℓ₂ radii around x₀), separated by commas</span>
            <input type="text" data-testid="eps" value={epsText} onInput={(e) => setEpsText(e.currentTarget.value)} />
          </label>
        ) : (
          <div class="field-row">
            <label class="field">
              <span>from ε</span>
              <input type="text" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
            </label>
            <label class="field">
              <span>to ε</span>
              <input type="text" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
            </label>
            <label class="field narrow">
              <span>points</span>
              <input type="number" min={1} value={points} onInput={(e) => setPoints(e.currentTarget.value)} />
            </label>
          </div>
        )}
        {mode === 'sweep' && typeof sweep !== 'string' && <p class="muted small">ε = {sweep.map((e) => num(e, 3)).join(', ')}</p>}
        <FieldError error={epsError} id="eps-error" />
        <label class="check">
          <input type="checkbox" data-testid="radius" checked={radius} onChange={(e) => setRadius(e.currentTarget.checked)} />
          <span>
            Certified radius <span class="muted">(bisection on the local bound; also computes the global bound)</span>
          </span>
        </label>
        <div class="field-row">
          <Choice<Method> label="Method" testId="method" value={method} choices={METHOD_CHOICES} onChange={setMethod} />
          <Choice<Certificate> label="Spectral norms" testId="certificate" value={certificate} choices={CERTIFICATE_CHOICES} onChange={setCertificate} />
        </div>
        <p class="muted small">
          {method === 'PAPER' ? 'Algorithm 1 and Proposition 6 as published (on graphs and other activations, their rules in docs/graphs.md); with Lanczos estimates it reproduces the paper’s numbers.' : 'Sharper pre-activation bounds, a decomposition around the linearisation at x₀ and per-class margins (docs/tightness.md; on graphs and other activations, docs/graphs.md §7).'}{' '}
          {certificate === 'ESTIMATE' ? 'Estimated norms approach each norm from below: the bound is an estimate, not a guarantee.' : certificate === 'PROBABILISTIC' ? `Each norm is certified, failing with probability at most ${num(DEFAULT_DELTA)}; every bound shows its failure probability.` : 'Each norm is a guaranteed upper bound.'}
        </p>
        <div class="checks" role="group" aria-label="how tight is the bound">
          <span class="muted small">How tight is it? Compare with what a search finds:</span>
          <label class="check">
            <input type="checkbox" data-testid="lower-bounds" checked={lowerBounds} onChange={(e) => setLowerBounds(e.currentTarget.checked)} />
            <span>
              Lower bounds on the local constant <span class="muted">(random sampling and gradient ascent in each ε-ball, seeded)</span>
            </span>
          </label>
          {ATTACK_CHOICES.map(([method, label]) => (
            <label class="check" key={method}>
              <input
                type="checkbox"
                data-testid={`attack-${method}`}
                checked={attacks.includes(method)}
                onChange={(e) => {
                  const on = e.currentTarget.checked;
                  setAttacks((current) => (on ? [...current.filter((m) => m !== method), method] : current.filter((m) => m !== method)));
                }}
              />
              <span>
                Attack: {label} <span class="muted">(smallest perturbation found that changes the class)</span>
              </span>
            </label>
          ))}
        </div>
        <details class="advanced">
          <summary>Advanced</summary>
          <div class="field-row">
            <label class="field">
              <span>Backend</span>
              <select value={backend} onChange={(e) => setBackend(e.currentTarget.value as Backend)}>
                <option value="AUTO">automatic</option>
                <option value="CPU">CPU</option>
                <option value="WEBGPU">WebGPU</option>
              </select>
            </label>
            <label class="field">
              <span>Relative tolerance of spectral norms</span>
              <input type="text" placeholder="engine default (1e-6)" value={tolerance} onInput={(e) => setTolerance(e.currentTarget.value)} />
            </label>
          </div>
          <FieldError error={toleranceError} id="tolerance-error" />
          {method === 'TIGHT' && radius && (
            <label class="field">
              <span>Refinement stage of the radius, seconds (docs/tightness.md §6)</span>
              <input type="text" data-testid="branch-budget" placeholder="none" value={branchBudget} onInput={(e) => setBranchBudget(e.currentTarget.value)} />
            </label>
          )}
        </details>
        <div class="run-actions">
          <button class="primary big" data-testid="start-run" disabled={!input || busy} onClick={start}>
            {busy ? <Spinner /> : null} Start run
          </button>
          <span class="muted small">{input ? `on ${input.name ?? shortId(input.id)} (class ${input.predictedClass})` : 'Add or pick an input first.'}</span>
        </div>
        <FieldError error={formError} id="run-error" />
      </div>
    </Card>
  );
}
