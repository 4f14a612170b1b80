/**
 * The refinement and branching stages of the certified radius (docs/tightness.md §6, §7; issue 18)
 * beside CROWN's radius and bisection time: one run per fixture of the default path with
 * `--branch-budget B` (certify({eps: [0.01], radius: true, branchBudget: B})), printing the fast
 * stage's radius, what the full sweeps certified, the final radius, the stage's sweeps and branches,
 * and the times.
 */
import type { Backend } from '../src/backend/backend.js';
import { certify } from '../src/bounds/certify.js';
import { CROWN_ANCHORS, PATHS, type Subject } from './default-path.js';

export async function refinementSection(subjects: { subject: Subject; budget: number }[], backend: Backend): Promise<void> {
  console.log('\nRefinement and branching stages (`--branch-budget B`) beside CROWN: eps 0.01 + certified radius, default path.\n');
  console.log('| model | budget | fast radius | full sweeps certify | final radius (quality) | stage sweeps | branches | stage time | whole run | CROWN radius (its bisection) |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const { subject, budget } of subjects) {
    const { network, x0 } = subject.load();
    await certify(network, x0, backend, { eps: [0.01], radius: true, ...PATHS.default }); // warm-up: sessions, JIT
    const t0 = performance.now();
    const result = await certify(network, x0, backend, { eps: [0.01], radius: true, ...PATHS.default, branchBudget: budget });
    const seconds = (performance.now() - t0) / 1000;
    const radius = result.radius!;
    const stage = radius.refinement!;
    const crown = CROWN_ANCHORS[subject.name];
    const p = radius.failureProbability ? `, p ≤ ${radius.failureProbability.toPrecision(2)}` : '';
    console.log(
      `| ${subject.name} | ${budget} s | ${stage.fastRadius.toPrecision(4)} | ${(stage.refinedRadius ?? radius.local).toPrecision(4)} | ${radius.local.toPrecision(4)} (${radius.quality}${p}) | ${stage.evaluations} | ${stage.branches ?? 0} in ${stage.branchAttempts ?? 0} tries | ${stage.seconds.toFixed(1)} s | ${seconds.toFixed(1)} s | ${crown ? `${crown.radius} (${crown.seconds} s)` : '—'} |`,
    );
  }
}
