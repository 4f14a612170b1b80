/**
 * `npm run bench`: times one local bound and one certified radius per fixture model, with the machine
 * (CPU model, cores) and the backend. Figures are medians over repeated runs after a warm-up run that
 * builds the backend's sessions; radius and bound runs alternate, so their ratio compares like with like.
 * Then operator throughput, one vector per call against blocks of B (bench/throughput.ts), on the
 * fixture networks and Fashion-MNIST's CNN.
 * First, the default path against the paper's estimate path (bench/default-path.ts), then the refinement and
 * branching stages with a budget beside CROWN (bench/refinement.ts).
 * Section `lockstep` (not run by default: minutes on two cores): lock-step Lanczos and KW
 * certificates against one run at a time per layer, and local bounds with LockstepSpectralSolver,
 * on the fixture networks and Fashion-MNIST's CNN (bench/lockstep.ts).
 * Options: --backend cpu|webgpu|auto, --runs N (default 15), --eps E, --only default,refinement,bounds,throughput,lockstep,
 * --blocks 1,4,16,64, --rounds N (default path: warm rounds in one process, default 5),
 * --cold-rounds N (default path: fresh processes per path, default 3), --imagenet (AlexNet, VGG-16
 * too; `--zoo alexnet` picks among them; one cold run per path, `--zoo-rounds N` warm rounds, default 0),
 * --lockstep-counts 4,16.
 * `--dataset [--images N]`: images per second of `lipcert dataset`'s path instead (bench/dataset.ts).
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createBackend } from '../src/backend/select.js';
import type { BackendName } from '../src/backend/backend.js';
import { certify } from '../src/bounds/certify.js';
import { defaultPathSection, fixtureSubject, zooSubject } from './default-path.js';
import { refinementSection } from './refinement.js';
import { throughputNetworks, throughputSection } from './throughput.js';
import { DEFAULT_LOCKSTEP_BENCH, lockstepBounds, lockstepLayers } from './lockstep.js';
import { PAPER_REPRODUCTION } from '../src/bounds/defaults.js';
import { loadDataset } from '../src/model/dataset.js';
import { importOnnxFile } from '../src/model/onnx-import.js';
import { loadInputFile } from '../src/model/input.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const fixtures = path.join(root, 'fixtures');

// `--model zoo:alexnet|zoo:vgg16|FILE.onnx`: the ImageNet-scale benchmark (per phase, per layer, peak memory).
if (process.argv.includes('--model')) {
  await (await import('./imagenet.js')).imagenetBench(process.argv.slice(2));
  process.exit(0);
}

// `--dataset`: images per second of the dataset path (one process), bench/dataset.ts; minutes, so opt-in.
if (process.argv.includes('--dataset')) {
  await (await import('./dataset.js')).datasetBench(process.argv.slice(2), fixtures);
  process.exit(0);
}

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'cpu' },
    runs: { type: 'string', default: '15' },
    eps: { type: 'string', default: '0.001,0.01,0.1,1' },
    only: { type: 'string', default: 'default,refinement,bounds,throughput' },
    rounds: { type: 'string', default: '5' },
    'cold-rounds': { type: 'string', default: '3' },
    'zoo-rounds': { type: 'string', default: '0' },
    imagenet: { type: 'boolean', default: false },
    zoo: { type: 'string', default: 'alexnet,vgg16' },
    blocks: { type: 'string', default: '1,4,16,64' },
    'lockstep-counts': { type: 'string', default: '4,16' },
  },
});
const sections = values.only!.split(',');

const MODELS = [
  { name: 'MNIST net', file: 'mnist_lenet.onnx', input: 'mnist_lenet_x0.npy', paperGpuSeconds: 0.1, authorsCpuSeconds: '0.19–0.33' },
  { name: 'CIFAR-10 net', file: 'cifar10_net.onnx', input: 'cifar10_net_x0.npy', paperGpuSeconds: 1, authorsCpuSeconds: '23.4–30.1' },
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (s: number) => `${(s * 1000).toFixed(1)} ms`;

const runs = Number(values.runs);
const epsList = values.eps!.split(',').map(Number);
const backend = await createBackend(values.backend as BackendName);
console.log(`machine: ${os.cpus()[0]?.model?.trim()}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}`);
console.log(`backend: ${backend.name} (${backend.adapter}); ${runs} runs after one warm-up, medians\n`);
if (sections.includes('default')) {
  // The fixtures, and with --imagenet also AlexNet and VGG-16 from the zoo (one cold run per path: minutes).
  const subjects = [fixtureSubject('MNIST net', root, 'mnist_lenet.onnx', 'mnist_lenet_x0.npy'), fixtureSubject('CIFAR-10 net', root, 'cifar10_net.onnx', 'cifar10_net_x0.npy')];
  const specs = ['mnist_lenet', 'cifar10_net'];
  await defaultPathSection(subjects, specs, { warm: Number(values.rounds), cold: Number(values['cold-rounds']) }, values.backend as BackendName);
  if (values.imagenet) {
    const zoo = values.zoo!.split(',').map((name) => `zoo:${name}`);
    await defaultPathSection(zoo.map(zooSubject), zoo, { warm: Number(values['zoo-rounds']), cold: 1 }, values.backend as BackendName);
  }
}
if (sections.includes('refinement')) {
  // MNIST: the full sweeps add nothing there (every unit already bounded), so the budget goes to branching.
  await refinementSection([
    { subject: fixtureSubject('MNIST net', root, 'mnist_lenet.onnx', 'mnist_lenet_x0.npy'), budget: 60 },
    { subject: fixtureSubject('CIFAR-10 net', root, 'cifar10_net.onnx', 'cifar10_net_x0.npy'), budget: 30 },
  ], backend);
}
if (sections.includes('bounds')) console.log('Targets (2-core machine): MNIST net local bound ≤ 20 ms, CIFAR-10 net ≤ 0.5 s, certified radius ≤ 10× one bound.\n');
if (sections.includes('bounds')) console.log('| model | eps | local bound (median) | min | iterations (all layers) | certified radius | radius evaluations | radius ÷ this bound | authors\' code, 2-core CPU |');
if (sections.includes('bounds')) console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const model of sections.includes('bounds') ? MODELS : []) {
  const network = importOnnxFile(path.join(fixtures, model.file));
  const x0 = loadInputFile(path.join(fixtures, model.input), network);
  await certify(network, x0, backend, { ...PAPER_REPRODUCTION, eps: epsList, radius: true }); // warm-up: sessions, JIT
  // Rounds of one radius and one bound per ε, so that the radius ÷ bound ratio compares runs made
  // in the same minutes of a shared machine's varying load.
  const radiusTimes: number[] = [];
  const boundTimes = epsList.map(() => [] as number[]);
  const iterations = epsList.map(() => 0);
  let evaluations = 0;
  for (let r = 0; r < runs; r++) {
    const result = await certify(network, x0, backend, { ...PAPER_REPRODUCTION, eps: [], radius: true });
    radiusTimes.push(result.radius!.seconds);
    evaluations = result.radius!.evaluations;
    for (const [i, eps] of epsList.entries()) {
      // Each run is a fresh certify() call: no warm starts carried over from the previous run.
      const bound = (await certify(network, x0, backend, { ...PAPER_REPRODUCTION, eps: [eps] })).local[0];
      boundTimes[i].push(bound.seconds);
      iterations[i] = bound.layers.reduce((a, l) => a + (l.spectral?.iterations ?? 0), 0);
    }
  }
  for (const [i, eps] of epsList.entries()) {
    const times = boundTimes[i];
    const ratio = median(radiusTimes) / median(times);
    console.log(
      `| ${model.name} | ${eps} | ${ms(median(times))} | ${ms(Math.min(...times))} | ${iterations[i]} | ${ms(median(radiusTimes))} | ${evaluations} | ${ratio.toFixed(1)}× | ${model.authorsCpuSeconds} s |`,
    );
  }
}
if (sections.includes('throughput')) await throughputSection(backend, root, values.blocks!.split(',').map(Number));
if (sections.includes('lockstep')) {
  const options = { ...DEFAULT_LOCKSTEP_BENCH, counts: values['lockstep-counts']!.split(',').map(Number) };
  for (const [name, file] of throughputNetworks(root)) {
    if (!file) continue;
    const network = importOnnxFile(file);
    const model = MODELS.find((m) => m.file === path.basename(file));
    // Fashion-MNIST: the first test image of the fixtures' sample.
    const x0 = model ? loadInputFile(path.join(fixtures, model.input), network) : loadDataset(path.join(fixtures, 'fashion_test_1000.npz'), network, { mean: [0.286], std: [0.353], limit: 1 }).image(0);
    await lockstepLayers(backend, name, network, x0, options);
    await lockstepBounds(backend, name, network, x0, options);
  }
}
await backend.dispose();
