/**
 * A model as a user names it: `zoo:NAME[:SEED]` is built in memory (no check needed: the zoo writes
 * the layer list itself), anything else is an ONNX file, imported and cross-checked against
 * onnxruntime (onnx-check.ts) before any number is computed for it.
 */
import type { Network } from './ir.js';
import { type CheckOptions, importOnnxFileChecked } from './onnx-check.js';
import { isZooSpec, resolveModel } from './zoo/index.js';

export async function loadModel(spec: string, options: CheckOptions = {}): Promise<Network> {
  return isZooSpec(spec) ? resolveModel(spec) : importOnnxFileChecked(spec, options);
}
