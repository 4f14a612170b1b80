/**
 * Dataset lanes (src/dataset/lanes.ts): images certified on several threads give exactly the records
 * of one image after another — the Fashion-MNIST CNN with the default method and a random network
 * with every layer kind (exported to ONNX), through the compiled command line (worker threads run
 * compiled modules) — and an error or a bad --parallel is one line and status 2.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { zipSync } from 'fflate';
import { dump } from 'npyjs';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { topTwo } from '../../src/bounds/certify.js';
import { nominalPass } from '../../src/bounds/layer-bounds.js';
import { exportOnnxFile } from '../../src/model/onnx-export.js';
import { networkMultiplyAdds, size } from '../../src/model/ir.js';
import { Rng } from '../../src/random.js';
import { fixture } from '../helpers/fixtures.js';
import { buildCli } from '../helpers/processes.js';
import { conv, everyKindNetwork, network } from '../helpers/random-networks.js';

const FASHION = ['dataset', fixture('fashion_cnn.onnx'), '--data', fixture('fashion_test_1000.npz'), '--mean', '0.2860', '--std', '0.3530'];

interface Record {
  index: number;
  seconds: number;
  radius: number | null;
  local: { bound: number }[];
}

let build: ReturnType<typeof buildCli>;
let dir: string;
beforeAll(() => {
  build = buildCli();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lipcert-lanes-'));
}, 300_000);
afterAll(() => {
  build?.remove();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function lipcert(...args: string[]) {
  return spawnSync(process.execPath, [build.cli, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
}

function report(...args: string[]) {
  const run = lipcert(...args, '--json');
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  return JSON.parse(run.stdout);
}

/** A record without its wall-clock seconds: what must not depend on the lanes. */
const content = ({ seconds, ...rest }: Record) => {
  expect(seconds).toBeGreaterThan(0);
  return rest;
};

describe('dataset lanes', () => {
  test('the Fashion-MNIST CNN, default method: 1 lane and 3 lanes give identical records', () => {
    const common = [...FASHION, '--limit', '5', '--eps', '0.001', '--radius', '--seed', '7'];
    const one = report(...common, '--parallel', '1');
    const three = report(...common, '--parallel', '3');
    expect([one.lanes, three.lanes]).toEqual([1, 3]);
    expect(one.method).toBe('tight');
    expect(one.radiusQuality).toBe('upper');
    expect(three.images.map((r: Record) => r.index)).toEqual([...Array(5).keys()]);
    // Bit-identical: each record depends only on the network, the image and the options.
    expect(three.images.map(content)).toEqual(one.images.map(content));
    expect(one.images.filter((r: Record) => (r.radius ?? 0) > 0).length).toBeGreaterThan(2);
    // The adapter names the onnxruntime threads of each lane's backend: the cores shared out.
    const { images: _a, seconds: _b, secondsPerImage: _c, lanes: _d, adapter: adapterOne, ...summaryOne } = one;
    const { images: _e, seconds: _f, secondsPerImage: _g, lanes: _h, adapter: adapterThree, ...summaryThree } = three;
    expect(summaryThree).toEqual(summaryOne);
    expect(adapterOne).toContain(`${os.availableParallelism()} thread`);
    expect(adapterThree).toContain(`${Math.max(1, Math.floor(os.availableParallelism() / 3))} thread`);
  }, 600_000);

  test('a random network with every layer kind: 1 lane and 2 lanes give identical records', async () => {
    const net = everyKindNetwork();
    const model = path.join(dir, 'every-kind.onnx');
    exportOnnxFile(net, model);
    // Inputs N(0, 1); labels the computed class for even images and another class for odd ones.
    const count = 6;
    const rng = new Rng(3);
    const n = size(net.inputShape);
    const x = Float32Array.from({ length: count * n }, () => rng.gaussian());
    const backend = createCpuBackend();
    const labels = new BigInt64Array(count);
    const classes = size(net.outputShape);
    for (let i = 0; i < count; i++) {
      const { cls } = topTwo((await nominalPass(net, backend, x.subarray(i * n, (i + 1) * n))).logits);
      labels[i] = BigInt(i % 2 === 0 ? cls : (cls + 1) % classes);
    }
    await backend.dispose();
    const data = path.join(dir, 'every-kind.npz');
    const npy = (a: Parameters<typeof dump>[0], shape: number[]) => new Uint8Array(dump(a, shape));
    fs.writeFileSync(data, zipSync({ 'x.npy': npy(x, [count, ...net.inputShape]), 'y.npy': npy(labels, [count]) }));

    const common = ['dataset', model, '--data', data, '--eps', '0.01,0.1', '--radius', '--seed', '11'];
    const one = report(...common, '--parallel', '1');
    const two = report(...common, '--parallel', '2');
    expect([one.lanes, two.lanes]).toEqual([1, 2]);
    expect(two.images.map(content)).toEqual(one.images.map(content));
    expect(one.accuracy).toBe(0.5);
    expect(one.images.filter((r: Record) => (r.radius ?? 0) > 0)).toHaveLength(3);
  }, 600_000);

  test('an error in a lane is the command\'s error: one line, status 2', () => {
    // The tight method refuses an eps that overflows on every image; whichever lane meets it first
    // stops the others.
    const run = lipcert(...FASHION, '--limit', '4', '--eps', '1e300', '--parallel', '2');
    expect(run.status).toBe(2);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/^lipcert: /);
  }, 300_000);

  test('an abort stops every lane: the call rejects with CANCELLED and no image runs on afterwards', async () => {
    // The compiled library (worker lanes need compiled modules), the paper's method for speed.
    const compiled = (module: string) => import(path.join(path.dirname(build.cli), module));
    const { certifyDataset } = await compiled('dataset/certify-dataset.js');
    const { createBackend } = await compiled('backend/select.js');
    const { importOnnxFile } = await compiled('model/onnx-import.js');
    const { loadDataset } = await compiled('model/dataset.js');
    const net = importOnnxFile(fixture('fashion_cnn.onnx'));
    const data = loadDataset(fixture('fashion_test_1000.npz'), net, { mean: [0.286], std: [0.353], limit: 60 });
    const backend = await createBackend('cpu', net, { threads: 1 });
    const controller = new AbortController();
    let done = 0;
    try {
      const run = certifyDataset(net, data, backend, {
        eps: [0.001],
        radius: true,
        method: 'paper',
        certificate: 'estimate',
        lanes: 2,
        signal: controller.signal,
        onImage: () => {
          if (++done === 3) controller.abort();
        },
      });
      await expect(run).rejects.toMatchObject({ code: 'CANCELLED' });
      const atReturn = done;
      expect(atReturn).toBeGreaterThanOrEqual(3);
      expect(atReturn).toBeLessThan(60);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(done).toBe(atReturn); // nothing finished after the call returned
    } finally {
      await backend.dispose();
    }
  }, 300_000);

  test('lanes by default: one per core (at most one per image) for small networks, one for large ones', async () => {
    // The compiled module: from the TypeScript sources no worker script exists, and the default is 1.
    const { planLanes } = await import(path.join(path.dirname(build.cli), 'dataset', 'lanes.js'));
    const cores = os.availableParallelism();
    const small = everyKindNetwork();
    expect(planLanes(small, 100)).toEqual({ lanes: cores, threads: 1 });
    expect(planLanes(small, 1)).toEqual({ lanes: 1, threads: cores });
    expect(planLanes(small, 100, 1)).toEqual({ lanes: 1, threads: cores });
    expect(planLanes(small, 3, 8)).toEqual({ lanes: 3, threads: Math.max(1, Math.floor(cores / 3)) });
    // 64 → 64 channels, 3×3, on 64×64: 151 M multiply-adds, above what `auto` keeps on the CPU.
    const large = network([conv([64, 64, 64], 64, [3, 3], { pads: [1, 1, 1, 1] })]);
    expect(networkMultiplyAdds(large)).toBeGreaterThan(1e8);
    expect(planLanes(large, 100)).toEqual({ lanes: 1, threads: cores });
    expect(planLanes(large, 100, 2)).toEqual({ lanes: 2, threads: Math.max(1, Math.floor(cores / 2)) });
  });

  test('--parallel must be a positive integer', () => {
    for (const bad of ['0', '-1', '1.5', 'two']) {
      const run = lipcert(...FASHION, '--limit', '2', '--parallel', bad);
      expect(run.status).toBe(2);
      expect(run.stderr.trim()).toBe(`lipcert: error: --parallel must be a positive integer, got '${bad}'`);
    }
  });
});
