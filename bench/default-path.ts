/**
 * The default path against the paper's estimate path (issue 12's target: at most 2× in time and
 * in peak memory): one local bound at ε = 0.01 plus the certified radius — certify({eps: [0.01],
 * radius: true}), the global bound included — with the default (tight method, probabilistic
 * certificates) and with PAPER_REPRODUCTION (paper's method, Lanczos estimates). Two measurements,
 * each alternating the paths so that a ratio compares runs made in the same minutes of a shared
 * machine:
 * - warm: in one process after a warm-up of both paths (sessions built, code compiled), as the
 *   server runs; medians of wall time, of CPU time (all threads) and of the per-round ratio;
 * - cold: each path in a fresh child process (`--child`), as one CLI call runs: the time of its
 *   certify() call (sessions, |W| copies and compilation included), the child's peak resident set,
 *   and the whole process from spawn to exit (Node's start, module loading and the model's import
 *   too: what a CLI user waits for; the same for both paths but for the model's sessions).
 * Both paths build the same onnxruntime sessions and |W| copies on a first call, so a warm run of
 * one beside a cold run of the other would charge the shared start to the first.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Backend } from '../src/backend/backend.js';
import { certify } from '../src/bounds/certify.js';
import { DEFAULTS, PAPER_REPRODUCTION } from '../src/bounds/defaults.js';
import type { CertifyOptions, CertifyResult } from '../src/bounds/types.js';
import { createBackend } from '../src/backend/select.js';
import { loadInputFile } from '../src/model/input.js';
import type { Network } from '../src/model/ir.js';
import { importOnnxFile } from '../src/model/onnx-import.js';
import { randomInput, resolveModel } from '../src/model/zoo/index.js';

export const PATHS = { default: { ...DEFAULTS, seed: 1 }, paper: PAPER_REPRODUCTION } as const;
export type PathName = keyof typeof PATHS;

export interface Subject {
  name: string;
  load: () => { network: Network; x0: Float32Array };
}

export function fixtureSubject(name: string, root: string, file: string, input: string): Subject {
  return { name, load: () => { const network = importOnnxFile(`${root}/fixtures/${file}`); return { network, x0: loadInputFile(`${root}/fixtures/${input}`, network) }; } };
}

export function zooSubject(spec: string): Subject {
  return { name: spec, load: () => { const network = resolveModel(spec); return { network, x0: randomInput(network, 1) }; } };
}

function run(network: Network, x0: Float32Array, backend: Backend, path: PathName): Promise<CertifyResult> {
  const options: CertifyOptions = { eps: [0.01], radius: true, ...PATHS[path] };
  return certify(network, x0, backend, options);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** What one path's run in a fresh process reports (`--child`). */
interface ColdRun {
  seconds: number;
  /** Spawn to exit, measured by the parent. */
  processSeconds: number;
  maxRssBytes: number;
  radius: Pick<NonNullable<CertifyResult['radius']>, 'local' | 'quality' | 'failureProbability'>;
}

function coldRun(subject: string, path: PathName, backendName: string): ColdRun {
  const script = fileURLToPath(import.meta.url);
  // The parent's collector flags (npm run bench's), nothing else of its command line.
  const flags = process.execArgv.filter((a) => /^--(single-threaded-gc|initial-old-space-size|max-old-space-size)/.test(a));
  const t0 = performance.now();
  const out = execFileSync(process.execPath, [...flags, script, '--child', subject, path, backendName], { encoding: 'utf8', maxBuffer: 1 << 24 });
  const processSeconds = (performance.now() - t0) / 1000;
  return { ...(JSON.parse(out.trim().split('\n').pop()!) as Omit<ColdRun, 'processSeconds'>), processSeconds };
}

/**
 * CROWN's certified radius on the fixtures and the time of its bisection (auto_LiRPA 0.7.1, L2 ball,
 * margin specification, exact intermediate bounds; measured on the 2-core machine for issue 18).
 */
export const CROWN_ANCHORS: Record<string, { radius: number; seconds: number }> = {
  'MNIST net': { radius: 0.1502, seconds: 18 },
  'CIFAR-10 net': { radius: 0.0262, seconds: 533 },
};

/** Rounds of each measurement: warm ones in this process (0: none), cold ones in child processes. */
export interface DefaultPathRounds {
  warm: number;
  cold: number;
}

/**
 * Prints one markdown row per subject: warm and cold times and ratios, radii and peak memory of
 * both paths.
 */
export async function defaultPathSection(subjects: Subject[], specs: string[], rounds: DefaultPathRounds, backendName: 'cpu' | 'webgpu' | 'auto'): Promise<void> {
  if (rounds.warm < 1 && rounds.cold < 1) throw new Error('the default-path bench needs at least one warm or one cold round');
  const warmText = rounds.warm > 0 ? `${rounds.warm} round${rounds.warm > 1 ? 's' : ''} in one process after a warm-up` : 'none';
  const coldText = rounds.cold > 0 ? `${rounds.cold} fresh process${rounds.cold > 1 ? 'es' : ''} per path` : 'none';
  console.log(`\nDefault path (tight, probabilistic certificates) against the paper's estimate path: eps 0.01 + certified radius, global bound included. Warm: ${warmText}; cold: ${coldText}; paths alternating. Target: ratio ≤ 2 in time and memory.\n`);
  console.log('| model | warm: default / paper wall | warm ratio (median per round) | warm CPU-time ratio | cold: default / paper wall | cold ratio | cold process, spawn to exit (ratio) | default radius (quality) | paper radius | CROWN radius (its bisection) | peak RSS default / paper (cold) | memory ratio |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const [k, subject] of subjects.entries()) {
    const wall: Record<PathName, number[]> = { default: [], paper: [] };
    const ratios: number[] = [];
    const cpuRatios: number[] = [];
    const radius: Partial<Record<PathName, ColdRun['radius']>> = {};
    // The network is loaded here only for warm rounds (cold ones load their own).
    const { network, x0 } = rounds.warm > 0 ? subject.load() : { network: null, x0: null };
    const backend = network ? await createBackend(backendName, network) : null;
    for (let r = rounds.warm > 0 ? -1 : 0; r < rounds.warm; r++) {
      const seconds = { default: 0, paper: 0 };
      const cpu = { default: 0, paper: 0 };
      for (const path of ['default', 'paper'] as PathName[]) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        radius[path] = (await run(network!, x0!, backend!, path)).radius!;
        seconds[path] = (performance.now() - t0) / 1000;
        const c = process.cpuUsage(c0);
        cpu[path] = (c.user + c.system) / 1e6;
      }
      if (r < 0) continue; // warm-up: sessions, |W| copies, JIT
      wall.default.push(seconds.default);
      wall.paper.push(seconds.paper);
      ratios.push(seconds.default / seconds.paper);
      cpuRatios.push(cpu.default / cpu.paper);
    }
    await backend?.dispose();
    const cold: Record<PathName, ColdRun[]> = { default: [], paper: [] };
    const coldRatios: number[] = [];
    const processRatios: number[] = [];
    for (let r = 0; r < rounds.cold; r++) {
      for (const path of ['default', 'paper'] as PathName[]) {
        cold[path].push(coldRun(specs[k], path, backendName));
        radius[path] ??= cold[path][r].radius;
      }
      coldRatios.push(cold.default[r].seconds / cold.paper[r].seconds);
      processRatios.push(cold.default[r].processSeconds / cold.paper[r].processSeconds);
    }
    const memory = { default: median(cold.default.map((c) => c.maxRssBytes)), paper: median(cold.paper.map((c) => c.maxRssBytes)) };
    const d = radius.default!;
    const p = radius.paper!;
    const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
    const crown = CROWN_ANCHORS[subject.name];
    const anchor = crown ? `${crown.radius} (${crown.seconds} s)` : '—';
    const warm = rounds.warm > 0 ? [`${median(wall.default).toFixed(3)} / ${median(wall.paper).toFixed(3)} s`, `${median(ratios).toFixed(2)}×`, `${median(cpuRatios).toFixed(2)}×`] : ['—', '—', '—'];
    const medianOf = (path: PathName, key: 'seconds' | 'processSeconds') => median(cold[path].map((c) => c[key])).toFixed(3);
    const coldCells =
      rounds.cold > 0
        ? [`${medianOf('default', 'seconds')} / ${medianOf('paper', 'seconds')} s`, `${median(coldRatios).toFixed(2)}×`, `${medianOf('default', 'processSeconds')} / ${medianOf('paper', 'processSeconds')} s (${median(processRatios).toFixed(2)}×)`]
        : ['—', '—', '—'];
    console.log(
      `| ${subject.name} | ${warm.join(' | ')} | ${coldCells.join(' | ')} | ${d.local.toPrecision(4)} (${d.quality}${d.failureProbability ? `, p ≤ ${d.failureProbability.toPrecision(2)}` : ''}) | ${p.local.toPrecision(4)} | ${anchor} | ${rounds.cold > 0 ? `${gib(memory.default)} / ${gib(memory.paper)} | ${(memory.default / memory.paper).toFixed(2)}×` : '— | —'} |`,
    );
  }
}

/** `node dist/bench/default-path.js --child SUBJECT PATH [BACKEND]`: one cold run, then its time and peak RSS as JSON. */
if (process.argv[2] === '--child') {
  const [, , , spec, path, backendName = 'cpu'] = process.argv;
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const subject = spec.startsWith('zoo:') ? zooSubject(spec) : fixtureSubject(spec, root, `${spec}.onnx`, `${spec}_x0.npy`);
  const { network, x0 } = subject.load();
  const backend = await createBackend(backendName as 'cpu' | 'webgpu' | 'auto', network);
  const t0 = performance.now();
  const { local, quality, failureProbability } = (await run(network, x0, backend, path as PathName)).radius!;
  const seconds = (performance.now() - t0) / 1000;
  await backend.dispose();
  console.log(JSON.stringify({ seconds, maxRssBytes: process.resourceUsage().maxRSS * 1024, radius: { local, quality, failureProbability } }));
}
