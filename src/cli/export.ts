/**
 * `lipcert export MODEL OUT.onnx`: write a model (a zoo model, `zoo:vgg16`, or an ONNX file) to
 * ONNX, weights inline or, past the 2 GB protobuf limit, as external data beside the file.
 */
import type { Command } from 'commander';
import { LipcertError } from '../errors.js';

import { EXTERNAL_DATA_THRESHOLD, type ExportSummary, exportOnnxFile } from '../model/onnx-export.js';
import { resolveModel } from '../model/zoo/index.js';

export interface ExportOptions {
  /** Weights above this many bytes go to external data (default: just under 2 GiB). */
  externalThreshold?: number;
}

export function exportCommand(modelSpec: string, outFile: string, options: ExportOptions = {}): ExportSummary {
  if (!/\.onnx$/i.test(outFile)) throw new LipcertError('BAD_USER_INPUT', `output file '${outFile}' must end in .onnx`);
  const network = resolveModel(modelSpec);
  try {
    return exportOnnxFile(network, outFile, options.externalThreshold ?? EXTERNAL_DATA_THRESHOLD);
  } catch (e) {
    if (e instanceof LipcertError) throw e;
    throw new LipcertError('BAD_USER_INPUT', `cannot write '${outFile}': ${(e as Error).message}`);
  }
}

/** One line for the terminal. */
export function describeExport(modelSpec: string, summary: ExportSummary): string {
  const mb = (summary.bytes / 2 ** 20).toFixed(1);
  const where = summary.externalData ? ` (weights in ${summary.externalData})` : '';
  return `${modelSpec}: ${summary.parameters.toLocaleString('en-US')} parameters, ${mb} MiB written to ${summary.file}${where}`;
}


export function registerExportCommand(program: Command): Command {
  return program
    .command('export')
    .description('write a model (e.g. a zoo model) as an ONNX file')
    .argument('<model>', 'zoo:NAME[:SEED] or an ONNX file')
    .argument('<out>', 'output .onnx file')
    .action((model: string, out: string) => {
      process.stdout.write(describeExport(model, exportCommand(model, out)) + '\n');
    });
}
