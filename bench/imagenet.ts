/**
 * ImageNet-scale benchmark: `npm run bench -- --model zoo:alexnet` (or zoo:vgg16, or an ONNX file).
 * Prints the time of each phase (model build or import, nominal forward pass, row norms, spectral
 * norms per layer with their iterations, total), the process's CPU time and the peak resident memory,
 * for the local bound at each --eps and, with --radius, the certified radius (certify(), warm starts
 * across the bisection). Never a test: numbers depend on the machine and its load.
 *
 *   node dist/bench/imagenet.js --model zoo:vgg16 [--input random[:SEED]] [--eps 0.01,0.1]
 *        [--default] [--radius] [--global] [--tolerance 1e-6] [--json]
 *
 * --default also times the default path (tight method, probabilistic certificates) at each ε.
 *
 * bench/run.ts can hand its arguments over: `await imagenetBench(process.argv.slice(2))`.
 */
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import type { AffineLayer, MaxPoolLayer, Network } from '../src/model/ir.js';
import type { Backend, BlockGramOperator, GramOperator } from '../src/backend/backend.js';
import { createBackend } from '../src/backend/select.js';
import { certify, DEFAULT_MAX_ITERATIONS, DEFAULT_TOLERANCE } from '../src/bounds/certify.js';
import { PAPER_REPRODUCTION } from '../src/bounds/defaults.js';
import { localBound, nominalPass, SpectralSolver } from '../src/bounds/layer-bounds.js';
import type { NetworkBound } from '../src/bounds/types.js';
import { loadInputFile } from '../src/model/input.js';
import { randomInput, randomInputSeed, resolveModel } from '../src/model/zoo/index.js';

interface Args {
  model: string;
  input: string;
  eps: number[];
  radius: boolean;
  global: boolean;
  /** Also time the default path (tight method, probabilistic certificates) at each ε. */
  defaultPath: boolean;
  tolerance: number;
  json: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { model: 'zoo:alexnet', input: 'random', eps: [0.01], radius: false, global: false, defaultPath: false, tolerance: DEFAULT_TOLERANCE, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--model') args.model = value();
    else if (a === '--input') args.input = value();
    else if (a === '--eps') args.eps = value().split(',').filter(Boolean).map(Number);
    else if (a === '--radius') args.radius = true;
    else if (a === '--global') args.global = true;
    else if (a === '--default') args.defaultPath = true;
    else if (a === '--tolerance') args.tolerance = Number(value());
    else if (a === '--json') args.json = true;
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

/** Seconds spent in each backend operation, by name. */
class TimedBackend implements Backend {
  readonly seconds = new Map<string, number>();
  readonly calls = new Map<string, number>();
  constructor(private readonly inner: Backend) {}
  get name() {
    return this.inner.name;
  }
  get adapter() {
    return this.inner.adapter;
  }
  get vectors() {
    return this.inner.vectors;
  }
  private async time<T>(what: string, f: () => Promise<T>): Promise<T> {
    const t = performance.now();
    try {
      return await f();
    } finally {
      this.seconds.set(what, (this.seconds.get(what) ?? 0) + (performance.now() - t) / 1000);
      this.calls.set(what, (this.calls.get(what) ?? 0) + 1);
    }
  }
  take(what: string): number {
    const s = this.seconds.get(what) ?? 0;
    this.seconds.delete(what);
    return s;
  }
  prepare(network: Network) {
    return this.time('prepare', () => this.inner.prepare(network));
  }
  forward(layer: AffineLayer, x: Float32Array) {
    return this.time('forward', () => this.inner.forward(layer, x));
  }
  applyA(layer: AffineLayer, v: Float32Array) {
    return this.time('applyA', () => this.inner.applyA(layer, v));
  }
  applyAT(layer: AffineLayer, u: Float32Array) {
    return this.time('applyAT', () => this.inner.applyAT(layer, u));
  }
  rowNormsSquared(layer: AffineLayer, mask: Float32Array) {
    return this.time('rowNorms', () => this.inner.rowNormsSquared(layer, mask));
  }
  maxPool(layer: MaxPoolLayer, x: Float32Array) {
    return this.time('forward', () => this.inner.maxPool(layer, x));
  }
  poolMask(layer: MaxPoolLayer, mask: Float32Array) {
    return this.time('poolMask', () => this.inner.poolMask(layer, mask));
  }
  async gramOperator(layer: AffineLayer, domainMask: Float32Array | null, slopeSquared: Float32Array | null): Promise<GramOperator> {
    const op = await this.time('gramSetup', () => this.inner.gramOperator(layer, domainMask, slopeSquared));
    return {
      dim: op.dim,
      apply: (x, out) => this.time('gramApply', () => op.apply(x, out)),
      dispose: () => op.dispose(),
    };
  }
  get blocks() {
    return this.inner.blocks;
  }
  get basis() {
    return this.inner.basis;
  }
  forwardBlock(layer: AffineLayer, x: Float32Array, count: number) {
    return this.time('forward', () => this.inner.forwardBlock(layer, x, count));
  }
  applyABlock(layer: AffineLayer, v: Float32Array, count: number) {
    return this.time('applyA', () => this.inner.applyABlock(layer, v, count));
  }
  applyATBlock(layer: AffineLayer, u: Float32Array, count: number) {
    return this.time('applyAT', () => this.inner.applyATBlock(layer, u, count));
  }
  rowNormsSquaredBlock(layer: AffineLayer, masks: Float32Array, count: number) {
    return this.time('rowNorms', () => this.inner.rowNormsSquaredBlock(layer, masks, count));
  }
  maxPoolBlock(layer: MaxPoolLayer, x: Float32Array, count: number) {
    return this.time('forward', () => this.inner.maxPoolBlock(layer, x, count));
  }
  poolMaskBlock(layer: MaxPoolLayer, masks: Float32Array, count: number) {
    return this.time('poolMask', () => this.inner.poolMaskBlock(layer, masks, count));
  }
  async gramBlockOperator(layer: AffineLayer, domainMasks: Float32Array | null, slopeSquared: Float32Array | null, count: number): Promise<BlockGramOperator> {
    return this.timedBlock(await this.time('gramSetup', () => this.inner.gramBlockOperator(layer, domainMasks, slopeSquared, count)));
  }
  private timedBlock(op: BlockGramOperator): BlockGramOperator {
    return {
      dim: op.dim,
      count: op.count,
      apply: (x, out) => this.time('gramApply', () => op.apply(x, out)),
      gatherRuns: async (runs) => this.timedBlock(await this.time('gramSetup', () => op.gatherRuns(runs))),
      dispose: () => op.dispose(),
    };
  }
  dispose() {
    return this.inner.dispose();
  }
}

const rssMiB = () => process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB
const fmt = (s: number) => s.toFixed(s < 10 ? 3 : 1).padStart(8);

interface LayerTiming {
  index: number;
  kind: string;
  shape: string;
  seconds: number;
  rowNorms: number;
  gramApply: number;
  iterations: number;
  bound: number;
}

async function timedLocalBound(network: Network, backend: TimedBackend, nominal: Awaited<ReturnType<typeof nominalPass>>, eps: number, solver: SpectralSolver) {
  const layers: LayerTiming[] = [];
  let mark = performance.now();
  let current = -1;
  const close = () => {
    if (current < 0) return;
    const now = performance.now();
    const layer = network.layers[current];
    layers.push({
      index: current,
      kind: layer.kind,
      shape: `${layer.inputShape.join('×')}→${layer.outputShape.join('×')}`,
      seconds: (now - mark) / 1000,
      rowNorms: backend.take('rowNorms'),
      gramApply: backend.take('gramApply') + backend.take('gramSetup'),
      iterations: 0,
      bound: NaN,
    });
    mark = now;
  };
  const bound: NetworkBound = await localBound(network, backend, nominal, eps, solver, (index) => {
    close();
    current = index;
  });
  close();
  for (const l of layers) {
    const r = bound.layers[l.index];
    l.bound = r.bound;
    l.iterations = r.spectral?.iterations ?? 0;
  }
  return { bound, layers };
}

const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

export async function imagenetBench(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const started = performance.now();
  let t = performance.now();
  const network = resolveModel(args.model);
  const importSeconds = (performance.now() - t) / 1000;
  const seed = randomInputSeed(args.input);
  const x0 = seed === null ? loadInputFile(args.input, network) : randomInput(network, seed);
  const backend = new TimedBackend(await createBackend('cpu'));
  const cpu = os.cpus()[0]?.model?.trim() ?? 'CPU';
  const log = (line: string) => {
    if (!args.json) console.log(line);
  };
  log(`lipcert bench: ${args.model} on ${cpu}, ${os.availableParallelism()} threads`);
  log(`import/build ${fmt(importSeconds)} s   peak RSS ${rssMiB().toFixed(0)} MiB`);

  t = performance.now();
  await backend.prepare(network);
  const nominal = await nominalPass(network, backend, x0);
  const forwardSeconds = (performance.now() - t) / 1000;
  log(`forward      ${fmt(forwardSeconds)} s   (sessions created on first use included)`);

  const solver = new SpectralSolver(backend, { tolerance: args.tolerance, maxIterations: DEFAULT_MAX_ITERATIONS });
  const local = [];
  for (const eps of args.eps) {
    backend.seconds.clear();
    t = performance.now();
    const cpu0 = cpuSeconds();
    const { bound, layers } = await timedLocalBound(network, backend, nominal, eps, solver);
    const seconds = (performance.now() - t) / 1000;
    const rowNorms = layers.reduce((a, l) => a + l.rowNorms, 0);
    const spectral = layers.reduce((a, l) => a + l.seconds - l.rowNorms, 0);
    log(`\nlocal bound at eps ${eps}: L = ${bound.bound.toPrecision(6)} in ${seconds.toFixed(2)} s wall, ${(cpuSeconds() - cpu0).toFixed(1)} s CPU (row norms ${rowNorms.toFixed(2)} s, spectral norms and the rest ${spectral.toFixed(2)} s)`);
    log('  layer kind      shape                              time s   rownorm s  operator s  iters  bound');
    for (const l of layers) {
      if (l.seconds < 1e-3 && l.iterations === 0) continue;
      log(`  ${String(l.index).padStart(5)} ${l.kind.padEnd(8)} ${l.shape.padEnd(32)} ${fmt(l.seconds)}   ${fmt(l.rowNorms)}   ${fmt(l.gramApply)}  ${String(l.iterations).padStart(5)}  ${l.bound.toPrecision(6)}`);
    }
    log(`  peak RSS ${rssMiB().toFixed(0)} MiB`);
    local.push({ eps, bound: bound.bound, seconds, rowNorms, layers });
  }
  solver.dispose();

  // The default path: certify() with its defaults (tight method, probabilistic certificates), a fresh
  // call per ε. Peak RSS is the process's, so it is at least the paper's phase above.
  const defaults = [];
  if (args.defaultPath) {
    for (const eps of args.eps) {
      t = performance.now();
      const cpu0 = cpuSeconds();
      const result = await certify(network, x0, backend, { eps: [eps], tolerance: args.tolerance, seed: 1 });
      const seconds = (performance.now() - t) / 1000;
      const bound = result.local[0];
      log(`\ndefault path (${bound.method}, ${bound.quality}, failure probability ${bound.failureProbability}) at eps ${eps}: L = ${bound.bound.toPrecision(6)} in ${seconds.toFixed(2)} s wall, ${(cpuSeconds() - cpu0).toFixed(1)} s CPU; peak RSS ${rssMiB().toFixed(0)} MiB`);
      defaults.push({ eps, bound: bound.bound, method: bound.method, quality: bound.quality, seconds });
    }
  }

  let radius;
  if (args.radius || args.global) {
    t = performance.now();
    const cpu0 = cpuSeconds();
    let events = 0;
    const result = await certify(network, x0, backend, {
      ...PAPER_REPRODUCTION,
      eps: [],
      global: true,
      radius: args.radius,
      tolerance: args.tolerance,
      onProgress: (e) => {
        if (!args.json && e.iteration === undefined && e.layer === 1 && e.phase !== 'prepare') log(`  ${e.message} (${((performance.now() - t) / 1000).toFixed(1)} s)`);
        events++;
      },
    });
    const seconds = (performance.now() - t) / 1000;
    log(`\nglobal bound ${result.global?.bound.toPrecision(6)} in ${result.global?.seconds.toFixed(2)} s`);
    if (result.radius) {
      log(`certified radius: local ${result.radius.local.toPrecision(6)} (upper ${result.radius.localUpper.toPrecision(6)}), global ${result.radius.global.toPrecision(6)}, ${result.radius.evaluations} local-bound evaluations in ${result.radius.seconds.toFixed(1)} s`);
    }
    log(`certify() total ${seconds.toFixed(1)} s wall, ${(cpuSeconds() - cpu0).toFixed(1)} s CPU, margin ${result.margin.toPrecision(6)}, class ${result.class}`);
    radius = { seconds, global: result.global?.bound, globalSeconds: result.global?.seconds, radius: result.radius };
  }
  const total = (performance.now() - started) / 1000;
  log(`\ntotal ${total.toFixed(1)} s wall, ${cpuSeconds().toFixed(1)} s CPU (both cores), peak RSS ${rssMiB().toFixed(0)} MiB; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  if (args.json) {
    console.log(JSON.stringify({ model: args.model, cpu, importSeconds, forwardSeconds, local, defaults, radius, total, cpuSeconds: cpuSeconds(), peakRssMiB: rssMiB() }, null, 1));
  }
  await backend.dispose();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  imagenetBench(process.argv.slice(2)).catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
