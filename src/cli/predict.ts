/**
 * `lipcert predict MODEL --input X [--mean M --std S] [--backend B] [--json]`: the network's forward
 * pass only — the top-1 `class`, its `margin` (top-1 minus top-2 logit) and the `logits` — through
 * the same import (cross-checked against onnxruntime) and the same engine as the bounds. For checking
 * an import against the framework the model came from. `runPredict` is the command as a function.
 */
import type { Command } from 'commander';
import { topTwo } from '../bounds/certify.js';
import { nominalPass } from '../bounds/layer-bounds.js';
import { addInputOptions, type InputOptions, loadWithBackend } from './shared.js';

export interface PredictResult {
  model: string;
  class: number;
  /** Top-1 minus top-2 logit (Infinity for a single output). */
  margin: number;
  logits: number[];
  backend: string;
}

export async function runPredict(model: string, options: InputOptions): Promise<PredictResult> {
  const { network, x0, backend } = await loadWithBackend(model, options);
  try {
    const logits = (await nominalPass(network, backend, x0)).logits;
    const { cls, margin } = topTwo(logits);
    return { model: network.name, class: cls, margin, logits: Array.from(logits), backend: backend.name };
  } finally {
    await backend.dispose();
  }
}

export function formatPredict(result: PredictResult): string {
  const logits = result.logits.map((v) => v.toPrecision(6)).join(', ');
  return `class ${result.class}, margin ${result.margin.toPrecision(6)} (top-1 minus top-2 logit)\nlogits: [${logits}]\n`;
}

export function registerPredictCommand(program: Command): Command {
  const command = program
    .command('predict')
    .description('the forward pass only: class, margin and logits of the model at the input')
    .argument('<model>', 'ONNX model, or zoo:NAME[:SEED]');
  addInputOptions(command);
  return command.action(async (model: string, options: InputOptions) => {
    const result = await runPredict(model, options);
    process.stdout.write(options.json ? `${JSON.stringify(result)}\n` : formatPredict(result));
  });
}
