/**
 * Operator throughput, one vector per call against blocks of B (`npm run bench`, and bench/gpu.ts
 * on a GPU): for each affine layer of a network, Gram operator applications D_b Aᵀ Λ_b² A D_b per
 * second (vectors per second: B per call), each run with its own random mask and slopes as B
 * images or B eps values would have; then the whole network — one Gram application on every
 * affine layer (a Lanczos step of each layer) and one forward pass — in images per second.
 * Each cell gives the wall-clock rate and the process's CPU time per vector (all threads): on a
 * shared machine the wall clock follows the other jobs' load, the CPU time much less so. Each
 * figure is the median of several rounds; within a round the block sizes take turns, so the load
 * falls on all of them alike. Never a test: numbers depend on the machine and its load.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Backend, BlockGramOperator, DeviceBlock } from '../src/backend/backend.js';
import { isAffine, size, type AffineLayer, type Network } from '../src/model/ir.js';
import { importOnnxFile } from '../src/model/onnx-import.js';

export interface ThroughputOptions {
  /** Block sizes B; the first is the baseline of the speed-up column (1). */
  counts: number[];
  /** Rounds per figure (median). */
  rounds: number;
  /** Milliseconds of calls per block size and round. */
  sliceMs: number;
}

export const DEFAULT_THROUGHPUT: ThroughputOptions = { counts: [1, 4, 16, 64], rounds: 5, sliceMs: 150 };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Deterministic values in [0, 1) (a linear congruential generator; only the timing depends on them). */
function filler(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function randomBlock(length: number, next: () => number, map: (v: number) => number = (v) => v - 0.5): Float32Array {
  return Float32Array.from({ length }, () => map(next()));
}

interface Timing {
  /** Wall-clock seconds per call. */
  wall: number;
  /** CPU seconds of this process (every thread) per call. */
  cpu: number;
}

/** Seconds per call of `call`, for `sliceMs` of calls; `settle` waits for queued device work. */
async function secondsPerCall(call: () => Promise<unknown>, settle: () => Promise<unknown>, sliceMs: number): Promise<Timing> {
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  let calls = 0;
  do {
    await call();
    calls++;
    if (calls % 8 === 0) await settle();
  } while (performance.now() - started < sliceMs);
  await settle();
  const cpu = process.cpuUsage(cpuStart);
  return { wall: (performance.now() - started) / 1000 / calls, cpu: (cpu.user + cpu.system) / 1e6 / calls };
}

interface GramCase {
  op: BlockGramOperator;
  x: DeviceBlock;
  out: DeviceBlock;
}

async function gramCase(backend: Backend, layer: AffineLayer, count: number, next: () => number): Promise<GramCase> {
  const [n, m] = [size(layer.inputShape), size(layer.outputShape)];
  const masks = randomBlock(count * n, next, (v) => (v < 0.5 ? 1 : 0));
  const slopes = randomBlock(count * m, next, (v) => v * v);
  const op = await backend.gramBlockOperator(layer, masks, slopes, count);
  return { op, x: backend.blocks.uploadBlock(randomBlock(count * n, next), count), out: backend.blocks.allocBlock(count, n) };
}

/**
 * Prints the table of one network: per affine layer, Gram applications per second at each B and
 * the speed-up of the best B over B = counts[0]; then a whole-network Gram step and a forward
 * pass, in images per second.
 */
export async function operatorThroughput(backend: Backend, name: string, network: Network, options: ThroughputOptions = DEFAULT_THROUGHPUT): Promise<void> {
  const { counts, rounds, sliceMs } = options;
  await backend.prepare(network);
  const next = filler(1);
  const layers = network.layers.filter(isAffine);
  const cases = new Map<AffineLayer, GramCase[]>();
  for (const layer of layers) cases.set(layer, await Promise.all(counts.map((count) => gramCase(backend, layer, count, next))));
  const settle = (c: GramCase) => backend.blocks.dotsRuns(c.out, [c.out]); // one read-back waits for the device
  const inputs = counts.map((count) => randomBlock(count * size(network.inputShape), next));
  // Warm-up: sessions, pipelines, first allocations.
  for (const layer of layers) for (const c of cases.get(layer)!) await c.op.apply(c.x, c.out);
  for (const [i, count] of counts.entries()) await forwardPass(backend, network, inputs[i], count);

  const gramSeconds = new Map(layers.map((layer) => [layer, counts.map(() => [] as Timing[])]));
  const forwardSeconds = counts.map(() => [] as Timing[]);
  for (let round = 0; round < rounds; round++) {
    for (const layer of layers) {
      for (const [i, c] of cases.get(layer)!.entries()) {
        gramSeconds.get(layer)![i].push(await secondsPerCall(() => c.op.apply(c.x, c.out), () => settle(c), sliceMs));
      }
    }
    for (const [i, count] of counts.entries()) {
      forwardSeconds[i].push(await secondsPerCall(() => forwardPass(backend, network, inputs[i], count), async () => undefined, sliceMs));
    }
  }

  /** Medians of wall and CPU time per call, separately. */
  const medians = (timings: Timing[]): Timing => ({ wall: median(timings.map((t) => t.wall)), cpu: median(timings.map((t) => t.cpu)) });
  const fmt = (perSecond: number) => (perSecond >= 100 ? perSecond.toFixed(0) : perSecond.toPrecision(3));
  /** "vectors/s · µs CPU per vector" for each B, then the best wall-clock rate over B = counts[0]'s. */
  const row = (label: string, shape: string, perCall: Timing[]) => {
    const rates = perCall.map((t, i) => counts[i] / t.wall);
    const best = Math.max(...rates);
    const cells = perCall.map((t, i) => `${fmt(rates[i])} · ${((t.cpu / counts[i]) * 1e6).toFixed(0)} µs`);
    console.log(`| ${label} | ${shape} | ${cells.join(' | ')} | ${(best / rates[0]).toFixed(2)}× (B = ${counts[rates.indexOf(best)]}) |`);
  };
  console.log(`\n${name}: ${backend.name} (${backend.adapter}); per vector: wall-clock rate (vectors/s) · CPU time, medians of ${rounds} rounds`);
  console.log(`| operation | shape | ${counts.map((c) => `B = ${c}`).join(' | ')} | best rate ÷ B = ${counts[0]} |`);
  console.log(`| --- | --- | ${counts.map(() => '---').join(' | ')} | --- |`);
  const step = counts.map(() => ({ wall: 0, cpu: 0 }));
  for (const layer of layers) {
    const perCall = gramSeconds.get(layer)!.map(medians);
    perCall.forEach((t, i) => ((step[i].wall += t.wall), (step[i].cpu += t.cpu)));
    row(`Gram ${layer.kind} ${layer.name}`, `[${layer.inputShape.join('×')}] → [${layer.outputShape.join('×')}]`, perCall);
  }
  row(`Gram step, all ${layers.length} affine layers (images)`, '', step);
  row('forward pass (images)', `[${network.inputShape.join('×')}]`, forwardSeconds.map(medians));

  for (const list of cases.values()) {
    for (const c of list) {
      c.op.dispose();
      backend.blocks.freeBlock(c.x);
      backend.blocks.freeBlock(c.out);
    }
  }
}

/** The network's output for `count` inputs: affine layers, ReLU, max pooling (flatten is free). */
async function forwardPass(backend: Backend, network: Network, input: Float32Array, count: number): Promise<Float32Array> {
  let x = input;
  for (const layer of network.layers) {
    if (isAffine(layer)) {
      x = await backend.forwardBlock(layer, x, count);
      if (layer.relu) for (let i = 0; i < x.length; i++) x[i] = Math.max(x[i], 0);
    } else if (layer.kind === 'maxpool') x = await backend.maxPoolBlock(layer, x, count);
    else if (layer.kind === 'relu') x = x.map((v) => Math.max(v, 0));
  }
  return x;
}

/** The networks of the throughput tables: the two fixture nets and Fashion-MNIST's CNN . */
export function throughputNetworks(root: string): [name: string, file: string][] {
  return ['mnist_lenet', 'cifar10_net', 'fashion_cnn'].map((name) => [name, path.join(root, 'fixtures', `${name}.onnx`)]);
}

/** `npm run bench`'s throughput section: one table per network at the block sizes `counts`. */
export async function throughputSection(backend: Backend, root: string, counts: number[], only?: (name: string) => boolean): Promise<void> {
  console.log('\nOperator throughput: Gram applications D Aᵀ Λ² A D per second, one vector per call against blocks of B (each vector its own mask and slopes).');
  for (const [name, file] of throughputNetworks(root)) {
    if (only && !only(name)) continue;
    await operatorThroughput(backend, name, importOnnxFile(file), { ...DEFAULT_THROUGHPUT, counts });
  }
}
