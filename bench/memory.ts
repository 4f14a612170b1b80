/**
 * Peak memory against its estimate (src/resources.ts): each model in a fresh process imports its
 * ONNX bytes and runs the most demanding analysis the server offers (tight method — the paper's
 * for graphs, which it refuses —, probabilistic certificates: the global bound, a local bound,
 * optionally the radius), then reports its peak RSS
 * next to estimatePeakMemory(). The estimate must never be below the measurement.
 *   node dist/bench/memory.js [--models fixtures,zoo:alexnet,zoo:vgg16] [--radius] [--json]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createBackend } from '../src/backend/select.js';
import { certify } from '../src/bounds/certify.js';
import { exportOnnx } from '../src/model/onnx-export.js';
import { importOnnx } from '../src/model/onnx-import.js';
import { randomInput, resolveModel } from '../src/model/zoo/index.js';
import { estimatePeakMemory } from '../src/resources.js';

const here = fileURLToPath(import.meta.url);
const fixtures = path.join(path.dirname(here), here.includes(`${path.sep}dist${path.sep}`) ? '../../fixtures' : '../fixtures');
const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'fixtures,zoo:alexnet' },
    radius: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    child: { type: 'string' },
  },
});

/** One model file, in this process: import, analyse, report. */
async function measure(file: string): Promise<void> {
  const started = performance.now();
  const network = importOnnx(readFileSync(file), path.basename(file));
  const estimate = estimatePeakMemory(network);
  const backend = await createBackend('cpu', network);
  try {
    await certify(network, new Float32Array(randomInput(network, 1)), backend, {
      eps: [0.01],
      global: true,
      radius: values.radius,
      method: 'tight',
      certificate: 'probabilistic',
      seed: 1,
    });
  } finally {
    await backend.dispose();
  }
  const peak = process.resourceUsage().maxRSS * 1024; // maxRSS is in KiB
  console.log(JSON.stringify({ model: path.basename(file), peakBytes: peak, estimateBytes: estimate.bytes, parts: estimate.parts, seconds: (performance.now() - started) / 1000 }));
}

if (values.child) {
  await measure(values.child);
} else {
  const specs = values.models!.split(',').flatMap((m) => (m === 'fixtures' ? ['mnist_lenet.onnx', 'cifar10_net.onnx'] : [m]));
  const gib = (b: number) => (b / 2 ** 30).toFixed(2);
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'lipcert-memory-'));
  for (const spec of specs) {
    // A zoo model is written as ONNX first, so the measured process holds only what the server would.
    const file = spec.startsWith('zoo:') ? path.join(scratch, `${spec.slice(4)}.onnx`) : path.join(fixtures, spec);
    if (spec.startsWith('zoo:')) writeFileSync(file, exportOnnx(resolveModel(spec)));
    const args = [...process.execArgv, here, '--child', file, ...(values.radius ? ['--radius'] : [])];
    const child = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
    const line = child.stdout.trim().split('\n').at(-1) ?? '';
    if (child.status !== 0 || !line.startsWith('{')) {
      console.error(`${spec}: failed (${child.status})\n${child.stderr}`);
      process.exitCode = 1;
      continue;
    }
    const r = JSON.parse(line) as { peakBytes: number; estimateBytes: number; seconds: number };
    if (values.json) console.log(line);
    else console.log(`${spec}: peak RSS ${gib(r.peakBytes)} GiB, estimate ${gib(r.estimateBytes)} GiB (${(r.estimateBytes / r.peakBytes).toFixed(2)}x), ${r.seconds.toFixed(0)} s${r.estimateBytes < r.peakBytes ? '  ESTIMATE BELOW PEAK' : ''}`);
    if (r.estimateBytes < r.peakBytes) process.exitCode = 1;
  }
  rmSync(scratch, { recursive: true, force: true });
}
