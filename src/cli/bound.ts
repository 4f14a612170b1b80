/**
 * `lipcert bound MODEL --input FILE [--eps E1,...] [--radius] [--method tight|paper]
 * [--certify MODE] [--lower] [--attacks fgsm,ifgsm,pgd] [--json]`: one analyse() call (certified
 * bounds, then lower bounds found by search, then attacks) printed as a per-layer report or as one
 * JSON object. Defaults come from bounds/defaults.ts.
 */
import type { Command } from 'commander';
import { analyse, type AnalysisResult } from '../analysis/analyse.js';
import { ATTACK_METHODS, DEFAULT_ATTACK_STEPS } from '../bounds/attacks.js';
import { DEFAULT_RESTARTS, DEFAULT_SAMPLES, DEFAULT_STEPS } from '../bounds/lower.js';
import type { LayerBound, NetworkBound } from '../bounds/types.js';
import { BadInputError } from '../errors.js';
import type { Network } from '../model/ir.js';
import { addInputOptions, addMethodOptions, type InputOptions, loadWithBackend, type MethodCliOptions, parseChoices, parseCount, parseEpsList, parseMethodOptions, progressReporter, textTable } from './shared.js';

export interface BoundCliOptions extends InputOptions, MethodCliOptions {
  eps?: string;
  global?: boolean;
  radius?: boolean;
  lower?: boolean;
  samples?: string;
  restarts?: string;
  steps?: string;
  attacks?: string;
  attackSteps?: string;
}

function format(value: number, digits = 6): string {
  if (value === 0) return '0';
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  return abs >= 1e6 || abs < 1e-3 ? value.toExponential(digits - 1) : value.toPrecision(digits);
}

const QUALITY_NOTE: Record<string, string> = {
  estimate: 'upper bound of the paper\'s method, spectral norms estimated by Lanczos to the stated tolerance',
  upper: 'guaranteed upper bound',
  exact: 'exact',
};

/** What a bound's quality means, with the failure probability of probabilistic certificates. */
function qualityNote(bound: NetworkBound): string {
  const p = bound.failureProbability ?? 0;
  if (bound.quality === 'upper' && p > 0) return `upper bound with probability ≥ 1 − ${format(p, 3)} (union bound over its probabilistic certificates)`;
  return QUALITY_NOTE[bound.quality];
}

/** kind, '+relu' or '+ACTIVATION', and '<i,j' when the layer reads other layers than the one before it. */
function layerKind(l: LayerBound): string {
  const reads = l.inputs && (l.inputs.length !== 1 || l.inputs[0] !== l.index - 1) ? ` <${l.inputs.join(',')}` : '';
  const activation = l.kind === 'activation' ? `:${l.activation}` : l.activation ? `+${l.activation}` : '';
  return l.kind + (l.relu && l.kind !== 'relu' ? '+relu' : '') + activation + reads;
}

function layerRows(layers: LayerBound[], local: boolean): string[][] {
  return layers.map((l) => [
    String(l.index),
    layerKind(l),
    `[${l.inputShape}]→[${l.outputShape}]`,
    format(l.bound),
    ...(local ? [format(l.epsIn ?? 0, 4), l.lambdaZero === undefined ? '' : `${l.lambdaZero}/${l.lambdaPartial}/${l.lambdaOne}`] : []),
    l.spectral ? `${l.spectral.iterations}` : '',
    l.certificate ?? l.quality,
  ]);
}

export function humanReport(network: Network, result: AnalysisResult, globalLayers = true): string {
  const out: string[] = [];
  out.push(`model ${network.name}: input [${network.inputShape}], ${network.layers.length} layers; backend ${result.backend} (${result.adapter})`);
  out.push(`method ${result.method}${result.method === 'paper' ? ' (the paper\'s Algorithm 1 and Proposition 6)' : ''}, spectral norms: ${result.certificate}${result.delta ? ` (delta ${result.delta} each)` : ''}`);
  out.push(`class ${result.class}, margin δ = ${format(result.margin)} (top-1 minus top-2 logit)`);
  if (result.global) {
    out.push('', `global bound: ${format(result.global.bound)}  [${qualityNote(result.global)}]`);
    if (globalLayers) out.push(textTable(['layer', 'kind', 'shape', 'bound', 'iters', 'certificate'], layerRows(result.global.layers, false)));
  }
  for (const l of result.local) {
    const method = l.method === 'tight' ? ' (method tight: min of the layer product and the linearisation decomposition)' : '';
    out.push('', `local bound at eps ${l.eps}: ${format(l.bound)}${method}  [${qualityNote(l)}] (${format(l.seconds, 3)} s)`);
    out.push(textTable(['layer', 'kind', 'shape', 'bound', 'eps_in', 'λ=0/partial/1', 'iters', 'certificate'], layerRows(l.layers, true)));
  }
  if (result.radius) {
    const r = result.radius;
    const criterion = r.method === 'tight' ? 'per-class margins' : 'Proposition 6';
    const quality = r.quality === 'upper' ? `, certified${r.failureProbability ? ` with probability ≥ 1 − ${format(r.failureProbability, 3)}` : ''}` : r.quality === 'estimate' ? ', from spectral norm estimates' : '';
    out.push('', `certified radius (local bound, ${criterion}${quality}): ${format(r.local)}  (${r.refinement ? "the fast search's " : ''}criterion fails at ${format(r.localUpper)}; ${r.evaluations} bound evaluations, ${format(r.seconds, 3)} s)`);
    if (r.refinement) {
      const f = r.refinement;
      out.push(`  refinement stage: ${f.evaluations} full sweeps (a search on estimates, then one certified) in ${format(f.seconds, 3)} s of a ${format(f.budgetSeconds, 3)} s budget took the radius from ${format(f.fastRadius)}${f.completed ? '' : ' (budget spent before the search finished; --branch-budget gives more)'}`);
      if (f.refinedRadius !== undefined) out.push(`  branching: ${f.branchAttempts} eps tried, ${f.branches} branches bounded (${f.emptyBranches} empty), from the full sweeps' ${format(f.refinedRadius)}`);
    }
    if (r.marginResolved === false) out.push('  the margin is below what floating point resolves at x0: nothing is certified (docs/soundness.md §3)');
    out.push(`certified radius (global bound): ${format(r.global)}`);
  }
  if (result.lowerBounds) {
    out.push('', 'lower bounds on L(x0, eps) found by search (not certified: a ratio attained in the ball):');
    out.push(textTable(['eps', 'method', 'lower bound', 'at distance', 'passes'], result.lowerBounds.map((l) => [l.eps, l.method, format(l.bound), format(l.distance, 4), l.evaluations])));
  }
  if (result.attacks) {
    out.push('', 'attacks: smallest L2 perturbation found that changes the class (an upper bound on the minimal one):');
    out.push(textTable(['attack', 'perturbation', 'new class', 'passes'], result.attacks.map((a) => [a.method, a.perturbation === null ? 'none found' : format(a.perturbation, 4), a.adversarialClass ?? '-', a.evaluations])));
  }
  out.push('', `spectral norm tolerance ${result.tolerance} (relative change per step); total ${format(result.seconds, 3)} s`);
  if ((result.failureProbability ?? 0) > 0) {
    out.push(`probabilistic certificates (Kuczyński–Woźniakowski): a bound fails with probability at most the sum of its certificates' δ; any certified number above fails with probability at most ${format(result.failureProbability!, 3)} (union bound).`);
  }
  return out.join('\n');
}

/** The command as a function: the analysis the options ask for, and the network it ran on. */
export async function runBound(model: string, opts: BoundCliOptions): Promise<{ network: Network; result: AnalysisResult }> {
  const { method, certificate, delta, seed, tolerance, branchBudget } = parseMethodOptions(opts);
  const eps = opts.eps ? parseEpsList(opts.eps) : [];
  const searchBudgets = { samples: opts.samples, restarts: opts.restarts, steps: opts.steps };
  if (!opts.lower && Object.values(searchBudgets).some((v) => v !== undefined)) throw new BadInputError('--samples, --restarts and --steps are budgets of --lower: give --lower too');
  if (opts.attacks === undefined && opts.attackSteps !== undefined) throw new BadInputError('--attack-steps is a budget of --attacks: give --attacks too');
  const lower = opts.lower
    ? { samples: parseCount(opts.samples, '--samples'), restarts: parseCount(opts.restarts, '--restarts'), steps: parseCount(opts.steps, '--steps') }
    : null;
  const attacks = opts.attacks === undefined ? null : { methods: parseChoices(opts.attacks, ATTACK_METHODS, 'attack'), steps: parseCount(opts.attackSteps, '--attack-steps') };
  const { network, x0, backend } = await loadWithBackend(model, opts);
  const progress = progressReporter(!opts.json || process.stderr.isTTY);
  try {
    const result = await analyse(network, x0, backend, {
      eps, global: true, radius: Boolean(opts.radius), tolerance, onProgress: progress.onProgress,
      method, certificate, delta, seed, lower, attacks, branchBudget,
    });
    return { network, result };
  } finally {
    progress.stop();
    await backend.dispose();
  }
}

export function registerBoundCommand(program: Command): Command {
  const command = program
    .command('bound')
    .description('global and local Lipschitz bounds, and the certified adversarial radius')
    .argument('<model>', 'ONNX model file, or zoo:alexnet|vgg16|mnist-lenet|cifar10-net[:SEED] (seeded random weights)')
    .option('--eps <list>', 'comma-separated radii of local bounds, e.g. 0.001,0.01')
    .option('--global', 'report the global bound per layer (always computed)')
    .option('--radius', 'compute the certified adversarial radius')
    .option('--lower', 'also search for lower bounds on L(x0, eps) at each eps (random sampling and gradient ascent)')
    .option('--samples <n>', `with --lower: random points per eps (default ${DEFAULT_SAMPLES})`)
    .option('--restarts <n>', `with --lower: gradient-ascent restarts per eps (default ${DEFAULT_RESTARTS})`)
    .option('--steps <n>', `with --lower: gradient-ascent steps per restart (default ${DEFAULT_STEPS})`)
    .option('--attacks <names>', `also run these attacks (${ATTACK_METHODS.join(', ')}) for the smallest perturbation that changes the class`)
    .option('--attack-steps <n>', `with --attacks: iterations of ifgsm and pgd at each size (default ${DEFAULT_ATTACK_STEPS})`);
  addMethodOptions(command, 'seed of every random draw: probabilistic certificates\' starts (default: random) and the --lower search (default 1)');
  addInputOptions(command);
  return command.action(async (model: string, opts: BoundCliOptions) => {
    const { network, result } = await runBound(model, opts);
    if (opts.json) process.stdout.write(JSON.stringify({ model: network.name, ...result, radius: result.radius ?? null }) + '\n');
    else process.stdout.write(humanReport(network, result, Boolean(opts.global)) + '\n');
  });
}
