/**
 * `lipcert attack MODEL --input FILE [--methods fgsm,ifgsm,pgd] [--steps K] [--tolerance T] [--json]`:
 * the smallest adversarial L2 perturbation each attack finds (bounds/attacks.ts), an upper bound on
 * the minimal one. `runAttack` is the whole command as a function returning the JSON it prints.
 */
import type { Command } from 'commander';
import { ATTACK_METHODS, attacks, type AttacksResult, DEFAULT_ATTACK_STEPS, DEFAULT_SEARCH_TOLERANCE } from '../bounds/attacks.js';
import { addInputOptions, type InputOptions, loadWithBackend, parseChoices, parseCount, parseNumber, textTable } from './shared.js';

export interface AttackCliOptions extends InputOptions {
  methods?: string;
  steps?: string;
  tolerance?: string;
}

/** The command's JSON output: `{"attacks": [{"method", "perturbation", "adversarialClass", ...}], ...}`. */
export async function runAttack(model: string, options: AttackCliOptions): Promise<AttacksResult> {
  const attackOptions = {
    methods: parseChoices(options.methods, ATTACK_METHODS, 'attack'),
    steps: parseCount(options.steps, '--steps', DEFAULT_ATTACK_STEPS),
    tolerance: options.tolerance === undefined ? DEFAULT_SEARCH_TOLERANCE : parseNumber(options.tolerance, '--tolerance'),
  };
  const { network, x0, backend } = await loadWithBackend(model, options);
  try {
    return await attacks(network, x0, backend, attackOptions);
  } finally {
    await backend.dispose();
  }
}

export function formatAttacks(result: AttacksResult): string {
  const rows = result.attacks.map((a) => [
    a.method,
    a.perturbation === null ? 'none found' : a.perturbation.toPrecision(4),
    a.adversarialClass ?? '-',
    a.evaluations,
    a.seconds.toFixed(2),
  ]);
  return `class ${result.class} (margin ${result.margin.toPrecision(4)}); smallest L2 perturbation found that changes it:\n${textTable(['attack', 'perturbation', 'new class', 'passes', 'seconds'], rows)}\n`;
}

export function registerAttackCommand(program: Command): Command {
  const command = program
    .command('attack')
    .description('adversarial attacks: upper bounds on the smallest L2 perturbation that changes the class')
    .argument('<model>', 'ONNX model')
    .option('--methods <names>', `attacks to run (${ATTACK_METHODS.join(', ')})`)
    .option('--steps <n>', `iterations of ifgsm and pgd at each size (default ${DEFAULT_ATTACK_STEPS})`)
    .option('--tolerance <t>', `relative width at which the size search stops (default ${DEFAULT_SEARCH_TOLERANCE})`);
  addInputOptions(command);
  return command.action(async (model: string, options: AttackCliOptions) => {
    const result = await runAttack(model, options);
    process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : formatAttacks(result));
  });
}
