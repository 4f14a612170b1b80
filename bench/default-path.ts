/**
 * The default path against the paper's estimate path (issue 12's target: at most 2× in time and
 * in peak memory): one local bound at ε = 0.01 plus the certified radius — certify({eps: [0.01],
 * radius: true}), the global bound included — with the default (tight method, probabilistic
 * certificates) and with PAPER_REPRODUCTION (paper's method, Lanczos estimates). Time: the two
 * alternate in one process after a warm-up, so each ratio compares runs made in the same minutes of
 * a shared machine; medians of wall time, of CPU time (all threads) and of the per-round ratio.
 * Memory: each path once in a fresh child process (`--child`), its peak resident set.
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

function peakMemory(subject: string, path: PathName): number {
  const script = fileURLToPath(import.meta.url);
  const out = execFileSync(process.execPath, [script, '--child', subject, path], { encoding: 'utf8', maxBuffer: 1 << 24 });
  return JSON.parse(out.trim().split('\n').pop()!).maxRssBytes;
}

/**
 * CROWN's certified radius on the fixtures and the time of its bisection (auto_LiRPA 0.7.1, L2 ball,
 * margin specification, exact intermediate bounds; measured on the 2-core machine for issue 18).
 */
export const CROWN_ANCHORS: Record<string, { radius: number; seconds: number }> = {
  'MNIST net': { radius: 0.1502, seconds: 18 },
  'CIFAR-10 net': { radius: 0.0262, seconds: 533 },
};

/** Prints one markdown row per subject: times, CPU times, ratios, radii and peak memory of both paths. */
export async function defaultPathSection(subjects: Subject[], specs: string[], rounds: number, backendName: 'cpu' | 'webgpu' | 'auto'): Promise<void> {
  console.log('\nDefault path (tight, probabilistic certificates) against the paper\'s estimate path: eps 0.01 + certified radius, global bound included. Target: ratio ≤ 2 in time and memory.\n');
  console.log('| model | default: median wall | paper: median wall | ratio (median per round) | CPU-time ratio | default radius (quality) | paper radius | CROWN radius (its bisection) | peak RSS default / paper | memory ratio |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const [k, subject] of subjects.entries()) {
    const { network, x0 } = subject.load();
    const backend = await createBackend(backendName, network);
    const wall: Record<PathName, number[]> = { default: [], paper: [] };
    const cpu: Record<PathName, number[]> = { default: [], paper: [] };
    const ratios: number[] = [];
    const cpuRatios: number[] = [];
    const last: Partial<Record<PathName, CertifyResult>> = {};
    for (let r = rounds > 1 ? -1 : 0; r < rounds; r++) {
      for (const path of ['default', 'paper'] as PathName[]) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        last[path] = await run(network, x0, backend, path);
        const seconds = (performance.now() - t0) / 1000;
        const c = process.cpuUsage(c0);
        if (r < 0) continue; // warm-up: sessions, JIT
        wall[path].push(seconds);
        cpu[path].push((c.user + c.system) / 1e6);
      }
      if (r >= 0) {
        ratios.push(wall.default[wall.default.length - 1] / wall.paper[wall.paper.length - 1]);
        cpuRatios.push(cpu.default[cpu.default.length - 1] / cpu.paper[cpu.paper.length - 1]);
      }
    }
    await backend.dispose();
    const memory = { default: peakMemory(specs[k], 'default'), paper: peakMemory(specs[k], 'paper') };
    const d = last.default!.radius!;
    const p = last.paper!.radius!;
    const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
    const crown = CROWN_ANCHORS[subject.name];
    const anchor = crown ? `${crown.radius} (${crown.seconds} s)` : '—';
    console.log(
      `| ${subject.name} | ${median(wall.default).toFixed(3)} s | ${median(wall.paper).toFixed(3)} s | ${median(ratios).toFixed(2)}× | ${median(cpuRatios).toFixed(2)}× | ${d.local.toPrecision(4)} (${d.quality}${d.failureProbability ? `, p ≤ ${d.failureProbability.toPrecision(2)}` : ''}) | ${p.local.toPrecision(4)} | ${anchor} | ${gib(memory.default)} / ${gib(memory.paper)} | ${(memory.default / memory.paper).toFixed(2)}× |`,
    );
  }
}

/** `node dist/bench/default-path.js --child SUBJECT PATH`: one run, then its peak RSS as JSON. */
if (process.argv[2] === '--child') {
  const [, , , spec, path] = process.argv;
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const subject = spec.startsWith('zoo:') ? zooSubject(spec) : fixtureSubject(spec, root, `${spec}.onnx`, `${spec}_x0.npy`);
  const { network, x0 } = subject.load();
  const backend = await createBackend('cpu', network);
  await run(network, x0, backend, path as PathName);
  await backend.dispose();
  console.log(JSON.stringify({ maxRssBytes: process.resourceUsage().maxRSS * 1024 }));
}
