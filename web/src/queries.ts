/**
 * The page's GraphQL operations and the shapes of their answers. The documents live in
 * graphql/operations.graphql; GraphQL Code Generator (codegen.ts) checks them against
 * schema.graphql and writes generated/graphql.ts: typed document strings with the types of their
 * variables and answers. This file names the pieces the pages pass around.
 */
import type { DatasetFieldsFragment, DatasetRunQuery, DatasetRunSummaryFragment, ModelQuery, ModelSummaryFragment, RunFieldsFragment, RunProgressSubscription, RunsQuery, InputFieldsFragment, BoundQuality, RunStatus as Status } from './generated/graphql';

export {
  AboutDocument as ABOUT,
  AddInputDocument as ADD_INPUT,
  CancelRunDocument as CANCEL_RUN,
  ImportModelDocument as IMPORT_MODEL,
  ModelDocument as MODEL,
  ModelsDocument as MODELS,
  ModelStatusDocument as MODEL_STATUS,
  RunDocument as RUN,
  RunProgressDocument as RUN_PROGRESS,
  RunsDocument as RUNS,
  StartRunDocument as START_RUN,
  DatasetsDocument as DATASETS,
  ImportDatasetDocument as IMPORT_DATASET,
  StartDatasetRunDocument as START_DATASET_RUN,
  CancelDatasetRunDocument as CANCEL_DATASET_RUN,
  DatasetRunDocument as DATASET_RUN,
  DatasetRunProgressDocument as DATASET_RUN_PROGRESS,
} from './generated/graphql';
export type { AttackMethod, Backend, Certificate, Method } from './generated/graphql';

export type Quality = BoundQuality;
export type RunStatus = Status;
export const RUN_STATUSES: RunStatus[] = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'];
export const isTerminal = (status: RunStatus) => status === 'SUCCEEDED' || status === 'FAILED' || status === 'CANCELLED';

export type ModelSummary = ModelSummaryFragment;
export type Model = NonNullable<ModelQuery['model']>;
export type ModelLayer = Model['layers'][number];
export type Input = InputFieldsFragment;
export type Run = RunFieldsFragment;
export type CertifyResult = NonNullable<Run['result']>;
export type NetworkBound = NonNullable<CertifyResult['globalBound']>;
export type LocalBound = CertifyResult['local'][number];
export type LayerBound = LocalBound['layers'][number];
export type RadiusResult = NonNullable<CertifyResult['radius']>;
export type LowerBoundEntry = NonNullable<CertifyResult['lowerBounds']>[number];
export type AttackEntry = NonNullable<CertifyResult['attacks']>[number];
export type RunEvent = RunProgressSubscription['runProgress'];
export type RunPage = RunsQuery['runs'];
export type RunRow = RunPage['nodes'][number];
export type Dataset = DatasetFieldsFragment;
export type DatasetRunSummary = DatasetRunSummaryFragment;
export type DatasetRun = NonNullable<DatasetRunQuery['datasetRun']>;
export type DatasetImage = DatasetRun['images'][number];
