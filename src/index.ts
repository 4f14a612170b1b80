/**
 * lipcert's library API: the one call that the CLI and the GraphQL server are thin shells over.
 *
 *   const network = await importOnnxFileChecked('model.onnx');   // or importOnnxChecked(bytes): import + cross-check
 *   const x0 = await loadInputFile('x.png', network, { mean, std });
 *   const backend = await createBackend('auto');
 *   const result = await certify(network, x0, backend, { eps: [0.01], radius: true });   // tight, certified (defaults.ts)
 *   const all = await analyse(network, x0, backend, { eps: [0.01], radius: true, lower: {}, attacks: { methods: ['pgd'] } });
 *   const lower = await lowerBounds(network, x0, backend, { eps: [0.01], seed: 1 });   // found by search
 *   const found = await attacks(network, x0, backend, { methods: ['pgd'] });          // adversarial upper bounds
 *   const data = loadDataset('test.npz', network, { mean, std });                     // or an ImageFolder directory
 *   const record = await certifyImage(network, backend, data.image(0), data.labels[0], 0, { eps: [], radius: true, method: 'tight', certificate: 'probabilistic' });
 *   const { accuracy, certifiedAccuracy } = summarise([record]);                      // or certifyDataset() for the loop
 */
export { importOnnx, importOnnxFile } from './model/onnx-import.js';
export { checkImport, importOnnxChecked, importOnnxFileChecked, type ImportCheck } from './model/onnx-check.js';
export { loadModel } from './model/load.js';
export { exportOnnx, exportOnnxFile } from './model/onnx-export.js';
export { randomInput, resolveModel, ZOO_MODELS } from './model/zoo/index.js';
export { loadInputFile, parseInputBytes, type InputFormat, type Normalisation } from './model/input.js';
export { bindNpz, type Dataset, type DatasetOptions, loadDataset, loadImageFolder, type NpzData, readNpz } from './model/dataset.js';
export { createBackend } from './backend/select.js';
export { certify, ENGINE_VERSION } from './bounds/certify.js';
export { DEFAULTS, PAPER_REPRODUCTION } from './bounds/defaults.js';
export { analyse, type AnalysisOptions, type AnalysisProgress, type AnalysisResult } from './analysis/analyse.js';
export { lowerBounds, type LowerBoundEntry, type LowerBoundOptions, type LowerBoundsResult, type LowerMethod } from './bounds/lower.js';
export { attackAt, attacks, type AttackEntry, type AttackMethod, type AttackOptions, type AttacksResult } from './bounds/attacks.js';
export { certifyImage, type ImageCertifyOptions, type ImageRecord, imageRecord } from './dataset/certify-image.js';
export { type AccuracyPoint, certifiedAccuracyAt, certifiedAccuracyCurve, type DatasetSummary, summarise } from './dataset/summary.js';
export { certifyDataset, type DatasetCertifyOptions, type DatasetResult } from './dataset/certify-dataset.js';
export type { Backend, BackendName } from './backend/backend.js';
export type * from './bounds/types.js';
export type * from './model/ir.js';
export { parameterCount } from './model/ir.js';
export * from './errors.js';
