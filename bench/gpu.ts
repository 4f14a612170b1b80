/**
 * GPU benchmark: run once on a machine with a real GPU (installs nothing, downloads nothing):
 *
 *   npm run build && node dist/bench/gpu.js [--vgg16 path/to/vgg16.onnx]
 *       [--only mnist_lenet,cifar10_net,fashion_cnn,vgg16] [--sections bounds,gram,blocks,lockstep]
 *       [--blocks 1,4,16,64,256] [--lockstep-counts 4,16] [--steps-per-read-back 8]
 *
 * Prints the adapter, then for each fixture network the local bounds through the WebGPU backend
 * (time per ε, Gram operator applications, agreement with fixtures/reference.json) and the time
 * of one Gram operator application D Aᵀ Λ² A D per affine layer (Λ = D = I); then VGG-16 (the model
 * zoo's seeded weights, or `--vgg16 FILE.onnx`). Section `blocks`: images (vectors) per second with
 * one vector per call against blocks of B, per layer's Gram operator, a whole-network Gram step
 * and a forward pass (bench/throughput.ts; Fashion-MNIST's CNN when fixtures/ has it; VGG-16 at
 * B ≤ 16). Section `lockstep` (bench/lockstep.ts): one local bound per ε with SpectralSolver
 * against LockstepSpectralSolver (the device-resident engine: coefficients on the GPU, one
 * read-back per block of Lanczos steps) alone and with every ε together, for the fixture nets and
 * VGG-16 (issue 17's targets on an H200: CIFAR-10 ≤ 20 ms, VGG-16 ≤ 2 s per local bound); and per
 * layer, the eigen-solves and KW certificates of B runs one at a time against lock-step (both
 * engines) on the fixture nets. On llvmpipe this is a correctness run, not a speed figure.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend } from '../src/backend/backend.js';
import { createWebGpuBackend } from '../src/backend/webgpu/index.js';
import { certify } from '../src/bounds/certify.js';
import { PAPER_REPRODUCTION } from '../src/bounds/defaults.js';
import { loadInputFile } from '../src/model/input.js';
import { isAffine, size, type Network } from '../src/model/ir.js';
import { importOnnxFile } from '../src/model/onnx-import.js';
import { randomInput, zooModel } from '../src/model/zoo/index.js';
import { DEFAULT_THROUGHPUT, operatorThroughput, throughputNetworks } from './throughput.js';
import { DEFAULT_LOCKSTEP_BENCH, lockstepBounds, lockstepLayers } from './lockstep.js';

/** The package root (the directory holding package.json), from src/ or dist/. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'fixtures'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('bench/gpu: cannot find the package root');
    dir = parent;
  }
  return dir;
}

const ROOT = packageRoot();
const EPS = [0.001, 0.01, 0.1, 1.0];
/** The paper's local-bound times on a GTX 1080 Ti (docs/method.md, Table II), seconds. */
const PAPER_SECONDS: Record<string, number> = { mnist_lenet: 0.1, cifar10_net: 1, vgg16: 52 * 60 };

type Reference = { models: Record<string, { images: Record<string, { local_bound_converged: Record<string, number> }> }> };
const reference = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'reference.json'), 'utf8')) as Reference;

function referenceKey(eps: number): string {
  return Number.isInteger(eps) ? eps.toFixed(1) : String(eps);
}

/** Local bounds at every ε after one warm-up run (pipelines, weight upload, first dispatches). */
async function benchLocalBounds(backend: Backend, name: string, network: Network, x0: Float32Array, expected?: Record<string, number>): Promise<void> {
  await certify(network, x0, backend, { ...PAPER_REPRODUCTION, eps: [EPS[0]] });
  console.log(`\n${name}: ${network.layers.length} layers, input [${network.inputShape.join(', ')}]`);
  let total = 0;
  for (const eps of EPS) {
    const result = await certify(network, x0, backend, { ...PAPER_REPRODUCTION, eps: [eps] });
    const bound = result.local[0];
    const applications = bound.layers.reduce((n, layer) => n + (layer.spectral?.iterations ?? 0), 0);
    const want = expected?.[referenceKey(eps)];
    const agreement = want ? `, reference ${want.toPrecision(8)} (rel. diff ${(Math.abs(bound.bound - want) / want).toExponential(1)})` : '';
    console.log(`  eps ${eps}: L = ${bound.bound.toPrecision(8)} in ${bound.seconds.toFixed(3)} s, ${applications} Gram applications${agreement}`);
    total += bound.seconds;
  }
  const paper = PAPER_SECONDS[name];
  console.log(`  mean ${(total / EPS.length).toFixed(3)} s per local bound${paper ? ` (paper, GTX 1080 Ti: ${paper} s)` : ''}`);
}

/** Seconds per Gram operator application of each affine layer (one read-back per batch). */
async function benchGramOperators(backend: Backend, network: Network, repeats = 20): Promise<void> {
  console.log('  Gram operator D Aᵀ Λ² A D per application:');
  for (const layer of network.layers) {
    if (!isAffine(layer)) continue;
    const op = await backend.gramOperator(layer, null, null);
    const x = backend.vectors.upload(new Float32Array(op.dim).fill(1 / Math.sqrt(op.dim)));
    const y = backend.vectors.alloc(op.dim);
    await op.apply(x, y);
    await backend.vectors.dot(y, y);
    const started = performance.now();
    for (let i = 0; i < repeats; i++) await op.apply(i % 2 ? y : x, i % 2 ? x : y);
    await backend.vectors.dot(x, y); // waits for the batch
    const seconds = (performance.now() - started) / 1000 / repeats;
    const macs = layer.kind === 'conv' || layer.kind === 'dense' ? layer.weight.length * (layer.kind === 'conv' ? size(layer.outputShape) / layer.outputShape[0] : 1) : 0;
    const rate = macs ? `, ${((4 * macs) / seconds / 1e9).toFixed(2)} GFLOP/s` : '';
    console.log(`    ${layer.kind} ${layer.name} [${layer.inputShape.join('×')}] → [${layer.outputShape.join('×')}]: ${(seconds * 1000).toFixed(3)} ms${rate}`);
    backend.vectors.free(x);
    backend.vectors.free(y);
    op.dispose();
  }
}

/** VGG-16: `--vgg16 file.onnx` (real weights), else the model zoo's seeded VGG-16 with a seeded input. */
function findVgg16(): { network: Network; x0: Float32Array } {
  const flag = process.argv.indexOf('--vgg16');
  if (flag >= 0 && process.argv[flag + 1]) {
    const network = importOnnxFile(process.argv[flag + 1]);
    return { network, x0: syntheticImage(network) };
  }
  const network = zooModel('vgg16');
  return { network, x0: randomInput(network, 0) };
}

/** A deterministic smooth image in normalised units, for timing when no real input is at hand. */
function syntheticImage(network: Network): Float32Array {
  return Float32Array.from({ length: size(network.inputShape) }, (_, i) => Math.sin(i * 0.001) * 0.5);
}

/** The comma-separated list after `flag`, or null when the flag is absent. */
function listArgument(flag: string): string[] | null {
  const at = process.argv.indexOf(flag);
  return at >= 0 && process.argv[at + 1] ? process.argv[at + 1].split(',') : null;
}

/** `--only NAME[,NAME]`: run only these networks (mnist_lenet, cifar10_net, fashion_cnn, vgg16); all by default. */
function wanted(name: string): boolean {
  return listArgument('--only')?.includes(name) ?? true;
}

/** `--sections bounds,gram,blocks,lockstep`: which measurements (all by default). */
function section(name: 'bounds' | 'gram' | 'blocks' | 'lockstep'): boolean {
  return listArgument('--sections')?.includes(name) ?? true;
}

/** `--blocks 1,4,16,...`: block sizes of the `blocks` section. */
const BLOCKS = listArgument('--blocks')?.map(Number) ?? [1, 4, 16, 64, 256];
const GPU_THROUGHPUT = { ...DEFAULT_THROUGHPUT, sliceMs: 200 };
const STEPS_PER_READ_BACK = listArgument('--steps-per-read-back')?.map(Number)[0];
const LOCKSTEP = { ...DEFAULT_LOCKSTEP_BENCH, counts: listArgument('--lockstep-counts')?.map(Number) ?? DEFAULT_LOCKSTEP_BENCH.counts, stepsPerReadBack: STEPS_PER_READ_BACK };

async function main(): Promise<void> {
  const started = performance.now();
  const backend = await createWebGpuBackend();
  console.log(`adapter: ${backend.adapter}`);
  try {
    for (const [name, image] of [['mnist_lenet', '8'], ['cifar10_net', 'dog4']] as const) {
      if (!wanted(name)) continue;
      const network = importOnnxFile(join(ROOT, 'fixtures', `${name}.onnx`));
      const x0 = loadInputFile(join(ROOT, 'fixtures', `${name}_x0.npy`), network);
      if (section('bounds')) await benchLocalBounds(backend, name, network, x0, reference.models[name]?.images[image]?.local_bound_converged);
      if (section('gram')) await benchGramOperators(backend, network);
      if (section('lockstep')) {
        await lockstepBounds(backend, name, network, x0, LOCKSTEP);
        await lockstepLayers(backend, name, network, x0, LOCKSTEP);
      }
    }
    if (section('blocks')) {
      for (const [name, file] of throughputNetworks(ROOT)) {
        if (!wanted(name)) continue;
        if (file) await operatorThroughput(backend, name, importOnnxFile(file), { ...GPU_THROUGHPUT, counts: BLOCKS });
        else console.log(`\n${name}: not in fixtures/, skipped`);
      }
    }
    if (wanted('vgg16')) {
      const vgg = findVgg16();
      if (section('bounds')) await benchLocalBounds(backend, 'vgg16', vgg.network, vgg.x0);
      if (section('gram')) await benchGramOperators(backend, vgg.network, 3);
      if (section('lockstep')) await lockstepBounds(backend, 'vgg16', vgg.network, vgg.x0, { ...LOCKSTEP, eps: [0.01], rounds: 1, certificates: false });
      if (section('blocks')) await operatorThroughput(backend, 'vgg16', vgg.network, { ...GPU_THROUGHPUT, rounds: 3, counts: BLOCKS.filter((b) => b <= 16) });
    }
  } finally {
    await backend.dispose();
  }
  console.log(`\ntotal ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

await main();
