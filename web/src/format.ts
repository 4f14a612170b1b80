/** How numbers, qualities, shapes and durations read on the page. */
import type { Certificate, Method, Quality, RunStatus } from './queries';

const SUPERSCRIPT: Record<string, string> = {
  '-': '⁻', '0': '⁰', '1': '¹', '2': '²', '3': '³', '4': '⁴', '5': '⁵', '6': '⁶', '7': '⁷', '8': '⁸', '9': '⁹',
};

/** Four significant digits; powers of ten outside [1e-3, 1e5) as 1.234×10⁻⁵. */
export function num(x: number | null | undefined, digits = 4): string {
  if (x == null || Number.isNaN(x)) return '—';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '−∞';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e-3 && a < 1e5) return String(Number(x.toPrecision(digits))).replace('-', '−');
  const [mantissa, exponent] = x.toExponential(digits - 1).split('e');
  const m = String(Number(mantissa)).replace('-', '−');
  const e = String(Number(exponent)).split('').map((c) => SUPERSCRIPT[c] ?? c).join('');
  return `${m}×10${e}`;
}

export function integer(x: number): string {
  return x.toLocaleString('en-US');
}

export function seconds(s: number | null | undefined): string {
  if (s == null) return '—';
  if (s < 1e-3) return `${Math.round(s * 1e6)} µs`;
  if (s < 1) return `${Number((s * 1e3).toPrecision(3))} ms`;
  if (s < 60) return `${Number(s.toPrecision(3))} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - 60 * m)} s`;
}

export function shape(dims: number[] | null | undefined): string {
  return dims && dims.length ? dims.join('×') : '—';
}

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return d.toLocaleString('en-GB', { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export const QUALITY_LABEL: Record<Quality, string> = {
  EXACT: 'exact',
  UPPER: 'upper bound',
  ESTIMATE: 'estimate',
};
export const QUALITY_TITLE: Record<Quality, string> = {
  EXACT: 'computed in closed form',
  UPPER: 'a guaranteed upper bound',
  ESTIMATE: 'a spectral norm estimated to the run’s relative tolerance, approached from below',
};

/** How the page names the methods; the paper's is its reproduction. */
export const METHOD_LABEL: Record<Method, string> = {
  TIGHT: 'tight method',
  PAPER: 'the paper’s method (reproduction)',
};
export const METHOD_CHOICES: [Method, string][] = [
  ['TIGHT', 'tight (sharper bounds, docs/tightness.md)'],
  ['PAPER', 'the paper’s method (reproduction)'],
];
export const CERTIFICATE_LABEL: Record<Certificate, string> = {
  DETERMINISTIC: 'certified norms (deterministic)',
  PROBABILISTIC: 'certified norms (probabilistic)',
  ESTIMATE: 'estimated norms',
};
export const CERTIFICATE_CHOICES: [Certificate, string][] = [
  ['PROBABILISTIC', 'certified, probabilistic'],
  ['DETERMINISTIC', 'certified, deterministic (looser)'],
  ['ESTIMATE', 'estimated (not a guarantee)'],
];

export const STATUS_LABEL: Record<RunStatus, string> = {
  QUEUED: 'queued',
  RUNNING: 'running',
  SUCCEEDED: 'succeeded',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
};

export function percent(fraction: number): string {
  return `${Math.round(Math.max(0, Math.min(1, fraction)) * 100)}%`;
}

export function shortId(id: string): string {
  return id.length > 8 ? id.slice(0, 8) : id;
}

/** n values from a to b, equally spaced in log(ε). */
export function logspace(a: number, b: number, n: number): number[] {
  if (n === 1) return [a];
  const la = Math.log10(a);
  const lb = Math.log10(b);
  return Array.from({ length: n }, (_, i) => Number((10 ** (la + ((lb - la) * i) / (n - 1))).toPrecision(6)));
}

export function epsList(eps: number[], max = 4): string {
  const shown = eps.slice(0, max).map((e) => num(e, 3));
  return eps.length > max ? `${shown.join(', ')}, … (${eps.length})` : shown.join(', ');
}

/** The weakest of several qualities (an estimate anywhere makes the whole an estimate); null for none. */
export function weakestQuality(qualities: Quality[]): Quality | null {
  if (qualities.length === 0) return null;
  if (qualities.includes('ESTIMATE')) return 'ESTIMATE';
  if (qualities.includes('UPPER')) return 'UPPER';
  return 'EXACT';
}
