/**
 * The GraphQL documents the page sends, and the TypeScript shapes of their answers (schema.graphql).
 * Fields the server may not have yet (lower bounds found by search, adversarial attacks) are found
 * by introspection and added to the run selection only where the schema has them: see extras.ts.
 */
export type Quality = 'EXACT' | 'UPPER' | 'ESTIMATE';
export type RunStatus = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';
export const RUN_STATUSES: RunStatus[] = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'];
export const isTerminal = (status: RunStatus) => status === 'SUCCEEDED' || status === 'FAILED' || status === 'CANCELLED';

export interface LayerParams {
  kernel: number[] | null;
  strides: number[] | null;
  pads: number[] | null;
  dilations: number[] | null;
  group: number | null;
  countIncludePad: boolean | null;
  parameterCount: number;
}
export interface ModelLayer {
  index: number;
  kind: string;
  name: string;
  relu: boolean;
  inputShape: number[];
  outputShape: number[];
  params: LayerParams;
  globalBound: number | null;
  globalBoundQuality: Quality | null;
}
export interface Input {
  id: string;
  modelId: string;
  name: string | null;
  sha256: string;
  shape: number[];
  predictedClass: number;
  margin: number;
  logits: number[];
  createdAt: string;
}
export interface ModelSummary {
  id: string;
  name: string;
  sha256: string;
  inputShape: number[];
  outputShape: number[];
  parameterCount: number;
  globalBound: number | null;
  globalBoundQuality: Quality | null;
  globalBoundStatus: 'PENDING' | 'RUNNING' | 'DONE' | 'FAILED';
  globalBoundError: string | null;
  createdAt: string;
}
export interface Model extends ModelSummary {
  layers: ModelLayer[];
  inputs: Input[];
}

export interface LayerBound {
  index: number;
  kind: string;
  relu: boolean;
  name: string;
  bound: number;
  quality: Quality;
  epsIn: number | null;
}
export interface LocalBound {
  eps: number;
  bound: number;
  quality: Quality;
  seconds: number;
  layers: LayerBound[];
}
export interface NetworkBound {
  bound: number;
  quality: Quality;
  seconds: number;
  layers: LayerBound[];
}
export interface RadiusResult {
  local: number;
  localUpper: number;
  global: number;
  globalQuality?: Quality | null;
  evaluations: number;
  relativeTolerance: number;
  seconds: number;
}
export interface CertifyResult {
  class: number;
  margin: number;
  logits: number[];
  globalBound: NetworkBound | null;
  local: LocalBound[];
  radius: RadiusResult | null;
  backend: string;
  adapter: string;
  tolerance: number;
  seconds: number;
  engineVersion: string;
  /** Optional fields found by introspection (lower bounds, attacks), as the server sent them. */
  [extra: string]: unknown;
}
export interface Run {
  id: string;
  status: RunStatus;
  progress: number;
  message: string;
  cached: boolean;
  modelId: string;
  inputId: string;
  model: { id: string; name: string; inputShape: number[] } | null;
  input: { id: string; name: string | null; predictedClass: number; margin: number } | null;
  eps: number[];
  radius: boolean;
  tolerance: number | null;
  requestedBackend: string;
  backend: string | null;
  adapter: string | null;
  timings: {
    createdAt: string;
    startedAt: string | null;
    finishedAt: string | null;
    queuedSeconds: number | null;
    computeSeconds: number | null;
  };
  error: { code: string; message: string } | null;
  result: CertifyResult | null;
}
export interface RunEvent {
  runId: string;
  status: RunStatus;
  progress: number;
  message: string;
  phase: string | null;
  run: Run;
}

const MODEL_SUMMARY = `id name sha256 inputShape outputShape parameterCount
  globalBound globalBoundQuality globalBoundStatus globalBoundError createdAt`;
export const INPUT_FIELDS = `id modelId name sha256 shape predictedClass margin logits createdAt`;
const LAYER_BOUND = `index kind relu name bound quality epsIn`;

export const ABOUT = `query About { about { engineVersion concurrency maxUploadBytes } }`;
export const MODELS = `query Models { models { ${MODEL_SUMMARY} } }`;
export const MODEL = `query Model($id: ID!) {
  model(id: $id) {
    ${MODEL_SUMMARY}
    layers {
      index kind name relu inputShape outputShape globalBound globalBoundQuality
      params { kernel strides pads dilations group countIncludePad parameterCount }
    }
    inputs { ${INPUT_FIELDS} }
  }
}`;
export const MODEL_STATUS = `query ModelStatus($id: ID!) {
  model(id: $id) { id globalBound globalBoundQuality globalBoundStatus globalBoundError layers { index globalBound globalBoundQuality } }
}`;
export const IMPORT_MODEL = `mutation ImportModel($name: String!, $onnx: String!) { importModel(name: $name, onnxBase64: $onnx) { id } }`;
export const ADD_INPUT = `mutation AddInput($model: ID!, $name: String, $png: String, $npy: String, $mean: [Float!], $std: [Float!]) {
  addInput(modelId: $model, name: $name, pngBase64: $png, npyBase64: $npy, mean: $mean, std: $std) { ${INPUT_FIELDS} }
}`;
export const CANCEL_RUN = `mutation CancelRun($id: ID!) { cancelRun(id: $id) { id status } }`;

/** The selection of a Run, with the optional result fields this server has (extras.ts). */
export function runFields(extraResultSelection = ''): string {
  return `id status progress message cached modelId inputId eps radius tolerance requestedBackend backend adapter
  model { id name inputShape }
  input { id name predictedClass margin }
  timings { createdAt startedAt finishedAt queuedSeconds computeSeconds }
  error { code message }
  result {
    class margin logits backend adapter tolerance seconds engineVersion
    globalBound { bound quality seconds layers { ${LAYER_BOUND} } }
    local { eps bound quality seconds layers { ${LAYER_BOUND} } }
    radius { local localUpper global globalQuality evaluations relativeTolerance seconds }
    ${extraResultSelection}
  }`;
}

export const startRunMutation = (fields: string) => `mutation StartRun($model: ID!, $input: ID!, $eps: [Float!]!, $radius: Boolean,
  $backend: Backend, $tolerance: Float, $lowerBounds: Boolean, $attacks: [AttackMethod!]) {
  startRun(modelId: $model, inputId: $input, eps: $eps, radius: $radius, backend: $backend, tolerance: $tolerance,
    lowerBounds: $lowerBounds, attacks: $attacks) { ${fields} }
}`;
export const runQuery = (fields: string) => `query Run($id: ID!) { run(id: $id) { ${fields} } }`;
export const runProgressSubscription = (fields: string) => `subscription RunProgress($id: ID!) {
  runProgress(runId: $id) { runId status progress message phase run { ${fields} } }
}`;

export const RUNS = `query Runs($model: ID, $status: RunStatus, $first: Int, $after: String) {
  runs(modelId: $model, status: $status, first: $first, after: $after) {
    totalCount hasNextPage endCursor
    nodes {
      id status progress message cached eps radius backend
      model { id name } input { id name predictedClass }
      timings { createdAt queuedSeconds computeSeconds }
      error { code message }
      result { radius { local } local { eps bound quality } }
    }
  }
}`;
export interface RunRow {
  id: string;
  status: RunStatus;
  progress: number;
  message: string;
  cached: boolean;
  eps: number[];
  radius: boolean;
  backend: string | null;
  model: { id: string; name: string } | null;
  input: { id: string; name: string | null; predictedClass: number } | null;
  timings: { createdAt: string; queuedSeconds: number | null; computeSeconds: number | null };
  error: { code: string; message: string } | null;
  result: { radius: { local: number } | null; local: { eps: number; bound: number; quality: Quality }[] } | null;
}
export interface RunPage {
  totalCount: number;
  hasNextPage: boolean;
  endCursor: string | null;
  nodes: RunRow[];
}
