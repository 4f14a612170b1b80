/**
 * `lipcert dataset` through the real command line: the acceptance case on the Fashion-MNIST
 * fixture (the compiled CLI in a child process) against an independent forward pass (onnxruntime-node
 * running the ONNX file on inputs normalised here); in-process, the same images as an ImageFolder,
 * the human summary, and bad input.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { unzipSync, zipSync } from 'fflate';
import { dump, parse } from 'npyjs';
import { PNG } from 'pngjs';
import { spawnSync } from 'node:child_process';
import { lipcert } from '../helpers/cli.js';
import { fixture } from '../helpers/fixtures.js';
import { buildCli } from '../helpers/processes.js';

const MODEL = fixture('fashion_cnn.onnx');
const DATA = fixture('fashion_test_1000.npz');
const NORM = ['--mean', '0.2860', '--std', '0.3530'];

interface Image {
  index: number;
  label: number;
  predictedClass: number;
  margin: number;
  radius: number | null;
  quality: string | null;
  local: { eps: number; bound: number; quality: string }[];
}

/** The fixture's raw pixels and labels, read here without src/model/dataset.ts. */
function rawFashion(): { pixels: Uint8Array; labels: number[] } {
  const files = unzipSync(fs.readFileSync(DATA));
  const x = parse(files['x.npy'].slice().buffer);
  const y = parse(files['y.npy'].slice().buffer);
  expect([x.dtype, x.shape, y.dtype]).toEqual(['u1', [1000, 1, 28, 28], 'i8']);
  return { pixels: x.data as Uint8Array, labels: Array.from(y.data as BigInt64Array, Number) };
}

/** Top-1 class of image i by onnxruntime-node on the ONNX file itself. */
async function referenceClasses(pixels: Uint8Array, count: number): Promise<number[]> {
  const session = await ort.InferenceSession.create(MODEL);
  const classes: number[] = [];
  for (let i = 0; i < count; i++) {
    const input = Float32Array.from(pixels.subarray(i * 784, (i + 1) * 784), (p) => (p / 255 - 0.286) / 0.353);
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', input, [1, 1, 28, 28]) });
    const logits = Array.from(out[session.outputNames[0]].data as Float32Array);
    classes.push(logits.indexOf(Math.max(...logits)));
  }
  await session.release();
  return classes;
}

function expectMonotoneCurve(curve: { radius: number; accuracy: number }[], images: Image[], accuracy: number) {
  expect(curve[0]).toEqual({ radius: 0, accuracy });
  for (let i = 1; i < curve.length; i++) {
    expect(curve[i].radius).toBeGreaterThan(curve[i - 1].radius);
    expect(curve[i].accuracy).toBeLessThanOrEqual(curve[i - 1].accuracy);
    // each point is the fraction of ALL images that are correct and certified at that radius
    const certified = images.filter((im) => im.predictedClass === im.label && (im.radius as number) >= curve[i].radius).length;
    expect(curve[i].accuracy).toBeCloseTo(certified / images.length, 12);
  }
}

describe('lipcert dataset', () => {
  // The acceptance run is the command a user types: the CLI compiled from the current sources, in a
  // process of its own (in Jest's module sandbox the same computation runs about 7x slower).
  test('acceptance: 40 Fashion-MNIST images, default method, against an independent forward pass', async () => {
    const build = buildCli();
    let run: { status: number | null; stdout: string; stderr: string };
    try {
      run = spawnSync(process.execPath, [build.cli, 'dataset', MODEL, '--data', DATA, ...NORM, '--limit', '40', '--eps', '0.001', '--radius', '--json'], { encoding: 'utf8', maxBuffer: 1 << 26 });
    } finally {
      build.remove();
    }
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report).toMatchObject({ count: 40, method: 'tight', certificate: 'probabilistic:1e-3', radiusQuality: 'upper' });
    // By default the images are shared over one thread per core (dataset/lanes.ts; records unchanged, test/dataset/lanes.test.ts).
    expect(report.lanes).toBe(Math.min(os.availableParallelism(), 40));
    const images: Image[] = report.images;
    expect(images.map((im) => im.index)).toEqual([...Array(40).keys()]);

    const { pixels, labels } = rawFashion();
    expect(images.map((im) => im.label)).toEqual(labels.slice(0, 40));
    expect(images.map((im) => im.predictedClass)).toEqual(await referenceClasses(pixels, 40));

    const correct = images.filter((im) => im.predictedClass === im.label);
    expect(report.accuracy).toBe(correct.length / 40);
    for (const im of images) {
      if (im.predictedClass === im.label) {
        expect(im.radius).toBeGreaterThan(0);
        expect(im.quality).toBe('upper');
      } else {
        expect(im).toMatchObject({ radius: 0, quality: 'exact' });
      }
      expect(im.margin).toBeGreaterThan(0);
      expect(im.local).toHaveLength(1);
      expect(im.local[0]).toMatchObject({ eps: 0.001, quality: 'upper' });
      expect(im.local[0].bound).toBeGreaterThan(0);
    }
    expectMonotoneCurve(report.certifiedAccuracy, images, report.accuracy);
    expect(report.seconds).toBeGreaterThan(0);
    expect(report.failureProbabilityTotal).toBeGreaterThan(0);
  }, 900_000); // about 2 minutes on an idle 2-core machine (compiling the CLI included)

  test('an ImageFolder of the same images gives the same records as the .npz (paper method, estimates)', async () => {
    const count = 8;
    const { pixels, labels } = rawFashion();
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lipcert-fashion-'));
    try {
      // Class directories 0..9 sort in label order; file names keep the .npz index.
      for (let k = 0; k < 10; k++) fs.mkdirSync(path.join(root, String(k)));
      for (let i = 0; i < count; i++) {
        const png = new PNG({ width: 28, height: 28, colorType: 0 });
        for (let p = 0; p < 784; p++) png.data.set([pixels[i * 784 + p], pixels[i * 784 + p], pixels[i * 784 + p], 255], 4 * p);
        fs.writeFileSync(path.join(root, String(labels[i]), `img_${String(i).padStart(4, '0')}.png`), PNG.sync.write(png, { colorType: 0 }));
      }
      const common = ['--eps', '0.001,0.01', '--radius', '--method', 'paper', '--certify', 'estimate', '--json'];
      const fromNpz = JSON.parse((await lipcert('dataset', MODEL, '--data', DATA, ...NORM, '--limit', String(count), ...common)).stdout);
      const folder = await lipcert('dataset', MODEL, '--data', root, ...NORM, ...common);
      expect(folder.status).toBe(0);
      const fromFolder = JSON.parse(folder.stdout);
      expect(fromFolder.count).toBe(count);
      // The folder lists images by class, then by name: map each back to its .npz index.
      const order = [...Array(count).keys()].sort((a, b) => labels[a] - labels[b] || a - b);
      const strip = (im: Image) => ({ label: im.label, predictedClass: im.predictedClass, margin: im.margin, radius: im.radius, local: im.local.map((l) => [l.eps, l.bound]) });
      order.forEach((npzIndex, folderIndex) => expect(strip(fromFolder.images[folderIndex])).toEqual(strip(fromNpz.images[npzIndex])));
      expect(fromFolder.accuracy).toBe(fromNpz.accuracy);
      expect(fromNpz.radiusQuality).toBe('estimate');
      expect(fromNpz.images[0].local.map((l: { quality: string }) => l.quality)).toEqual(['estimate', 'estimate']);
      expectMonotoneCurve(fromNpz.certifiedAccuracy, fromNpz.images, fromNpz.accuracy);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  test('the human summary: accuracy, certified accuracy at a few radii, median radius, time per image', async () => {
    const run = await lipcert('dataset', MODEL, '--data', DATA, ...NORM, '--limit', '5', '--eps', '0.001', '--radius', '--method', 'paper', '--certify', 'estimate');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^model fashion_cnn, 5 images from .*fashion_test_1000\.npz; method paper, certificates estimate, backend cpu/);
    expect(run.stdout).toMatch(/accuracy: \d\/5 = \d+\.\d%/);
    expect(run.stdout).toMatch(/certified accuracy \(classified correctly and certified at radius r, of all 5 images; radii from spectral norm estimates/);
    expect(run.stdout).toMatch(/\n\s+0\.001\s+\d+\.\d%\n/);
    expect(run.stdout).toMatch(/median certified radius: [\d.e-]+ over all images/);
    expect(run.stdout).toMatch(/local bound L\(x0, 0\.001\): median [\d.]+, range [\d.]+ to [\d.]+ \(from spectral norm estimates\)/);
    expect(run.stdout).toMatch(/time: [\d.]+ s, [\d.]+ s per image/);
  });

  test('without --radius: accuracy and local bounds, no curve, no radius for correct images', async () => {
    const run = await lipcert('dataset', MODEL, '--data', DATA, ...NORM, '--limit', '30', '--json');
    expect(run.status).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.certifiedAccuracy).toBeNull();
    const { pixels } = rawFashion();
    expect(report.images.map((im: Image) => im.predictedClass)).toEqual(await referenceClasses(pixels, 30));
    for (const im of report.images as Image[]) {
      expect(im.local).toEqual([]);
      expect(im.radius).toBe(im.predictedClass === im.label ? null : 0);
    }
  });

  describe('bad input: exit status 2 and one line on stderr', () => {
    let dir: string;
    beforeAll(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lipcert-bad-npz-'));
      const npy = (a: Parameters<typeof dump>[0], shape: number[]) => new Uint8Array(dump(a, shape));
      fs.writeFileSync(path.join(dir, 'label12.npz'), zipSync({ 'x.npy': npy(new Uint8Array(2 * 784), [2, 1, 28, 28]), 'y.npy': npy(new BigInt64Array([3n, 12n]), [2]) }));
    });
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    test.each([
      [['dataset', MODEL], /--data FILE\.npz\|DIR is required/],
      [['dataset', fixture('cifar10_net.onnx'), '--data', DATA], /images of shape \[1,28,28\], the model expects \[N,3,32,32\] or \[N,32,32,3\]/],
      [['dataset', MODEL, '--data', 'LABEL12'], /label 12 of image 1 is out of range: the model has 10 classes/],
      [['dataset', MODEL, '--data', DATA, '--limit', '0'], /--limit must be a positive integer/],
      [['dataset', MODEL, '--data', DATA, '--eps', '0.1,-1'], /--eps values must be > 0, got '0\.1,-1'/],
      [['dataset', MODEL, '--data', DATA, '--certify', 'sometimes'], /--certify must be deterministic/],
      [['dataset', MODEL, '--data', fixture('missing.npz')], /cannot read dataset '.*missing\.npz'/],
    ])('%#', async (args, message) => {
      const { stdout, stderr, status } = await lipcert(...args.map((a) => (a === 'LABEL12' ? path.join(dir, 'label12.npz') : a)));
      expect(status).toBe(2);
      expect(stdout).toBe('');
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toMatch(message);
    });
  });
});
