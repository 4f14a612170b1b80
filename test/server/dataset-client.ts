/**
 * Test helpers for dataset runs through the API: the Fashion-MNIST fixture imported as a model and a
 * dataset, a dataset run started and followed to its end over graphql-ws, and the run read back.
 */
import { collectSubscription, fixtureBase64, gql } from './client.js';

export const FASHION_NORM = { mean: [0.286], std: [0.353] };

export const DATASET_RUN_FIELDS = `
  id status done total correct accuracy eps radius method certificate workers
  certifiedAccuracy { radius accuracy } medianRadius radiusQuality failureProbabilityTotal
  error { code message }
  images { index label status predictedClass margin radius quality worker seconds local { eps bound quality } run { id status cached worker } error { code message } }`;

export const START_DATASET_RUN = `mutation($m: ID!, $d: ID!, $eps: [Float!], $radius: Boolean, $limit: Int, $method: Method, $certificate: Certificate, $seed: Int) {
  startDatasetRun(modelId: $m, datasetId: $d, eps: $eps, radius: $radius, limit: $limit, method: $method, certificate: $certificate, seed: $seed) { id status total } }`;

export const DATASET_RUN = `query($id: ID!) { datasetRun(id: $id) { ${DATASET_RUN_FIELDS} } }`;

export const DATASET_RUN_PROGRESS = `subscription($id: ID!) { datasetRunProgress(id: $id) { datasetRunId status done total message } }`;

/** Imports fashion_cnn.onnx and fashion_test_1000.npz (with its normalisation): their ids. */
export async function importFashion(url: string): Promise<{ m: string; d: string }> {
  const model = await gql(url, `mutation($onnx: String!) { importModel(name: "fashion", onnxBase64: $onnx) { id } }`, { onnx: fixtureBase64('fashion_cnn.onnx') });
  const dataset = await gql(url, `mutation($npz: String!, $mean: [Float!], $std: [Float!]) { importDataset(name: "fashion-test", npzBase64: $npz, mean: $mean, std: $std) { id } }`, {
    npz: fixtureBase64('fashion_test_1000.npz'),
    ...FASHION_NORM,
  });
  if (!model.data || !dataset.data) throw new Error(`import failed: ${JSON.stringify([model.errors, dataset.errors])}`);
  return { m: model.data.importModel.id, d: dataset.data.importDataset.id };
}

/** Starts a dataset run and follows its progress to the end: the events seen and the run as stored. */
export async function certifyDataset(
  url: string,
  wsUrl: string,
  variables: Record<string, unknown>,
  timeoutMs = 300_000,
): Promise<{ id: string; events: { status: string; done: number; total: number }[]; run: any }> {
  const started = await gql(url, START_DATASET_RUN, variables);
  if (!started.data) throw new Error(`startDatasetRun failed: ${JSON.stringify(started.errors)}`);
  const id = started.data.startDatasetRun.id as string;
  const { payloads, error } = await collectSubscription(wsUrl, DATASET_RUN_PROGRESS, { id }, timeoutMs);
  if (error) throw error instanceof Error ? error : new Error(JSON.stringify(error));
  const run = (await gql(url, DATASET_RUN, { id })).data.datasetRun;
  return { id, events: payloads.map((p) => p.data.datasetRunProgress), run };
}
