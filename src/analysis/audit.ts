/**
 * audit(): every bound method against what search can reach. Lower bounds of L(x0, ε) (random
 * sampling and gradient ascent, lower.ts) must not exceed any method's upper bound, and no attack
 * (attacks.ts) may find a class change within any method's certified radius. A violation means a bug
 * or, for probabilistic certificates, a failure whose probability the result states. Each method is
 * one analyse() call; the first also runs the searches, whose results do not depend on the method.
 */
import type { Backend } from '../backend/backend.js';
import type { AttackMethod } from '../bounds/attacks.js';
import { ATTACK_METHODS } from '../bounds/attacks.js';
import { type CertificateMode, parseCertificate } from '../bounds/certificates.js';
import { BadInputError } from '../errors.js';
import type { Network } from '../model/ir.js';
import type { BoundMethod, BoundQuality } from '../bounds/types.js';
import { analyse, type AnalysisResult } from './analyse.js';

/** One method and certificate mode to audit, written `method:certificate[:delta]`, e.g. `tight:probabilistic:1e-3`. */
export interface AuditConfig {
  method: BoundMethod;
  certificate: CertificateMode;
  delta?: number;
}

export const DEFAULT_AUDIT_CONFIGS: AuditConfig[] = [
  { method: 'paper', certificate: 'estimate' },
  { method: 'paper', certificate: 'probabilistic' },
  { method: 'tight', certificate: 'probabilistic' },
];

export function parseAuditConfig(text: string): AuditConfig {
  const [method, ...rest] = text.split(':');
  const certificate = parseCertificate(rest.join(':') || 'probabilistic');
  if ((method !== 'paper' && method !== 'tight') || !certificate) {
    throw new BadInputError(`'${text}' is not METHOD:CERTIFICATE (METHOD paper or tight; CERTIFICATE deterministic, probabilistic[:DELTA] or estimate)`);
  }
  return { method, certificate: certificate.mode, delta: certificate.delta || undefined };
}

export const configName = (c: AuditConfig) => `${c.method}:${c.certificate}${c.certificate === 'probabilistic' && c.delta ? `:${c.delta}` : ''}`;

export interface AuditOptions {
  eps: number[];
  configs?: AuditConfig[];
  /** Gradient-ascent restarts and steps, random samples (lower.ts defaults when absent). */
  restarts?: number;
  steps?: number;
  samples?: number;
  attackMethods?: AttackMethod[];
  attackSteps?: number;
  seed?: number;
  /** Relative width of the radius searches (default 1e-3: the audit checks radii, not their last digits). */
  radiusTolerance?: number;
}

export interface AuditBoundEntry {
  config: string;
  eps: number;
  bound: number;
  quality: BoundQuality;
  failureProbability?: number;
  /** Best lower bound found at this ε; lower/bound ≤ 1 unless violated. */
  lower: number;
  violation: boolean;
  /** Time of this local bound. */
  seconds: number;
}

export interface AuditRadiusEntry {
  config: string;
  radius: number;
  quality?: BoundQuality;
  failureProbability?: number;
  /** Smallest class-changing perturbation any attack found (null: none found). */
  attack: number | null;
  violation: boolean;
  /** Time of the radius search and its certification. */
  seconds: number;
}

export interface AuditReport {
  class: number;
  margin: number;
  lower: { eps: number; bound: number; method: string }[];
  attack: { perturbation: number | null; method: string | null };
  bounds: AuditBoundEntry[];
  radii: AuditRadiusEntry[];
  global: { config: string; bound: number; violation: boolean }[];
  violations: number;
  seconds: number;
}

/** Slack for float32 round-off when comparing a sampled ratio with a bound. */
const RELATIVE_SLACK = 1e-5;

export async function audit(network: Network, x0: Float32Array, backend: Backend, options: AuditOptions): Promise<AuditReport> {
  const started = performance.now();
  const configs = options.configs ?? DEFAULT_AUDIT_CONFIGS;
  if (configs.length === 0) throw new BadInputError('give at least one METHOD:CERTIFICATE to audit');
  if (options.eps.length === 0) throw new BadInputError('the audit compares bounds at each eps: give at least one eps');
  const seed = options.seed ?? 1;
  const results: { name: string; result: AnalysisResult }[] = [];
  for (const [i, config] of configs.entries()) {
    const searches = i === 0;
    const result = await analyse(network, x0, backend, {
      eps: options.eps,
      radius: true,
      method: config.method,
      certificate: config.certificate,
      delta: config.delta,
      seed,
      radiusTolerance: options.radiusTolerance ?? 1e-3,
      lower: searches ? { restarts: options.restarts, steps: options.steps, samples: options.samples } : null,
      attacks: searches ? { methods: options.attackMethods ?? ATTACK_METHODS, steps: options.attackSteps } : null,
    });
    results.push({ name: configName(config), result });
  }
  const searched = results[0]!.result;
  const lower = options.eps.map((eps) => {
    const entries = searched.lowerBounds!.filter((l) => l.eps === eps);
    const best = entries.reduce((a, b) => (b.bound > a.bound ? b : a), entries[0]);
    return { eps, bound: best?.bound ?? 0, method: best?.method ?? 'none' };
  });
  const found = searched.attacks!.filter((a) => a.perturbation !== null);
  const bestAttack = found.reduce<(typeof found)[number] | null>((a, b) => (a === null || b.perturbation! < a.perturbation! ? b : a), null);
  const attack = { perturbation: bestAttack?.perturbation ?? null, method: bestAttack?.method ?? null };

  const bounds: AuditBoundEntry[] = [];
  const radii: AuditRadiusEntry[] = [];
  const global: AuditReport['global'] = [];
  const bestLower = Math.max(0, ...lower.map((e) => e.bound));
  for (const { name, result } of results) {
    for (const local of result.local) {
      const l = lower.find((e) => e.eps === local.eps)!.bound;
      bounds.push({ config: name, eps: local.eps, bound: local.bound, quality: local.quality, failureProbability: local.failureProbability, lower: l, violation: l > local.bound * (1 + RELATIVE_SLACK), seconds: local.seconds });
    }
    global.push({ config: name, bound: result.global!.bound, violation: bestLower > result.global!.bound * (1 + RELATIVE_SLACK) });
    const r = result.radius!;
    radii.push({ config: name, radius: r.local, quality: r.quality, failureProbability: r.failureProbability, attack: attack.perturbation, violation: attack.perturbation !== null && attack.perturbation <= r.local, seconds: r.seconds });
  }
  const violations = [...bounds, ...radii, ...global].filter((e) => e.violation).length;
  return { class: searched.class, margin: searched.margin, lower, attack, bounds, radii, global, violations, seconds: (performance.now() - started) / 1000 };
}
