/**
 * Datasets as users have them (src/model/dataset.ts): .npz files written here with npyjs and fflate
 * (both x layouts, uint8 and float32, stored and deflated members, int64 labels), the Fashion-MNIST
 * fixture as numpy wrote it, ImageFolder directories written with pngjs, and every kind of bad data.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { zipSync } from 'fflate';
import { dump } from 'npyjs';
import { PNG } from 'pngjs';
import { bindNpz, loadDataset, loadImageFolder, readNpz } from '../../src/model/dataset.js';
import { loadInputFile } from '../../src/model/input.js';
import { importOnnxFile } from '../../src/model/onnx-import.js';
import type { Network } from '../../src/model/ir.js';
import { BadInputError } from '../../src/errors.js';
import { fixture } from '../helpers/fixtures.js';

/** Only the input and output shapes matter for loading. */
const modelOf = (inputShape: number[], classes = 3): Network => ({ name: 'shape-only', inputName: 'x', inputShape, outputShape: [classes], layers: [] });

type NpyArray = Parameters<typeof dump>[0];
const npy = (array: NpyArray, shape: number[]) => new Uint8Array(dump(array, shape));

/** An .npz as numpy.savez writes it: one `<name>.npy` zip member per array. */
function npz(members: Record<string, Uint8Array>, level: 0 | 6 = 6): Uint8Array {
  return zipSync(Object.fromEntries(Object.entries(members).map(([name, bytes]) => [`${name}.npy`, [bytes, { level }]])));
}

/** The zip compression method of the first member (0 stored, 8 deflated), from its local header. */
const firstMethod = (zip: Uint8Array) => zip[8] | (zip[9] << 8);

const expectBad = (run: () => unknown, message: RegExp) => {
  let error: unknown;
  try {
    run();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(BadInputError);
  expect((error as Error).message).toMatch(message);
  expect((error as Error).message.split('\n')).toHaveLength(1);
};

// Two 3-channel 2×2 images; pixel value of image n, channel c, row h, column w is 100n + 10c + 2h + w.
const N = 2;
const [C, H, W] = [3, 2, 2];
const pixel = (n: number, c: number, h: number, w: number) => 100 * n + 10 * c + 2 * h + w;
function images(layout: 'nchw' | 'nhwc'): Uint8Array {
  const out = new Uint8Array(N * C * H * W);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) out[layout === 'nchw' ? ((n * C + c) * H + h) * W + w : ((n * H + h) * W + w) * C + c] = pixel(n, c, h, w);
  return out;
}
const MEAN = [0.5, 0.4, 0.3];
const STD = [0.2, 0.25, 0.5];
/** Image n as the model sees it, [C,H,W], from uint8 pixels: (p/255 − mean)/std. */
function expectedImage(n: number, normalise: (p: number, c: number) => number): number[] {
  const out: number[] = [];
  for (let c = 0; c < C; c++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) out.push(normalise(pixel(n, c, h, w), c));
  return out;
}
const closeTo = (actual: Float32Array, expected: number[]) => {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
};
const labels64 = npy(new BigInt64Array([2n, 0n]), [N]);

describe('.npz datasets', () => {
  const model = modelOf([C, H, W]);

  test.each([
    ['[N,C,H,W], deflated', 'nchw', 6],
    ['[N,H,W,C], deflated', 'nhwc', 6],
    ['[N,C,H,W], stored', 'nchw', 0],
    ['[N,H,W,C], stored', 'nhwc', 0],
  ] as const)('uint8 pixels %s: scaled to [0,1], normalised per channel, int64 labels', (_name, layout, level) => {
    const file = npz({ x: npy(images(layout), layout === 'nchw' ? [N, C, H, W] : [N, H, W, C]), y: labels64 }, level);
    expect(firstMethod(file)).toBe(level === 0 ? 0 : 8);
    const data = bindNpz(readNpz(file), model, { mean: MEAN, std: STD });
    expect(data.count).toBe(N);
    expect(Array.from(data.labels)).toEqual([2, 0]);
    expect(data.inputShape).toEqual([C, H, W]);
    for (let n = 0; n < N; n++) closeTo(data.image(n), expectedImage(n, (p, c) => (p / 255 - MEAN[c]) / STD[c]));
  });

  test('uint8 pixels without mean/std are only scaled to [0,1]', () => {
    const data = bindNpz(readNpz(npz({ x: npy(images('nchw'), [N, C, H, W]), y: labels64 })), model);
    closeTo(data.image(1), expectedImage(1, (p) => p / 255));
  });

  test('float32 images are taken as given, and normalised only when mean/std are given', () => {
    const floats = Float32Array.from(images('nhwc'), (p) => p / 7 - 3);
    const file = npz({ x: npy(floats, [N, H, W, C]), y: npy(new Int32Array([1, 2]), [N, 1]) });
    closeTo(bindNpz(readNpz(file), model).image(1), expectedImage(1, (p) => p / 7 - 3));
    closeTo(bindNpz(readNpz(file), model, { mean: [1], std: [2] }).image(0), expectedImage(0, (p) => (p / 7 - 3 - 1) / 2));
    expect(Array.from(readNpz(file).labels)).toEqual([1, 2]);
  });

  test('one-channel images may come without a channel axis, [N,H,W]', () => {
    const pixels = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 10);
    const data = bindNpz(readNpz(npz({ x: npy(pixels, [2, 3, 4]), y: npy(new Uint8Array([0, 1]), [2]) })), modelOf([1, 3, 4]));
    closeTo(data.image(1), Array.from(pixels.subarray(12), (p) => p / 255));
  });

  test('--limit reads only the first images; labels beyond it are not checked', () => {
    const file = npz({ x: npy(images('nchw'), [N, C, H, W]), y: npy(new BigInt64Array([1n, 99n]), [N]) });
    const data = bindNpz(readNpz(file, 'f.npz', 1), model);
    expect(data.count).toBe(1);
    expect(Array.from(data.labels)).toEqual([1]);
    expect(() => data.image(1)).toThrow(RangeError);
  });

  test('the Fashion-MNIST fixture (numpy-written, zip64 extras): 1000 images, int64 labels 0–9', () => {
    const network = importOnnxFile(fixture('fashion_cnn.onnx'));
    const data = loadDataset(fixture('fashion_test_1000.npz'), network, { mean: [0.286], std: [0.353] });
    expect(data.count).toBe(1000);
    expect(new Set(data.labels)).toEqual(new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    const first = data.image(0);
    expect(first).toHaveLength(784);
    // Every value is (p/255 − 0.286)/0.353 for an integer pixel p in 0..255.
    for (const v of first) {
      const p = (v * 0.353 + 0.286) * 255;
      expect(Math.abs(p - Math.round(p))).toBeLessThan(1e-3);
      expect(Math.round(p)).toBeGreaterThanOrEqual(0);
      expect(Math.round(p)).toBeLessThanOrEqual(255);
    }
  });

  describe('bad data: one BadInputError', () => {
    const x = npy(images('nchw'), [N, C, H, W]);
    test.each([
      ['shape not matching the model', () => bindNpz(readNpz(npz({ x: npy(images('nchw'), [N, C, 1, 4]), y: labels64 })), model), /images of shape \[3,1,4\], the model expects \[N,3,2,2\] or \[N,2,2,3\]/],
      ['labels missing', () => readNpz(npz({ x })), /has no array 'y' \(it holds 'x'\)/],
      ['images missing', () => readNpz(npz({ y: labels64 })), /has no array 'x'/],
      ['a label out of range', () => bindNpz(readNpz(npz({ x, y: npy(new BigInt64Array([0n, 3n]), [N]) })), model), /label 3 of image 1 is out of range: the model has 3 classes/],
      ['a negative label', () => readNpz(npz({ x, y: npy(new Int32Array([-1, 0]), [N]) })), /label -1 of image 0 is not a class index/],
      ['labels that are not integers', () => readNpz(npz({ x, y: npy(new Float32Array([0, 1]), [N]) })), /'y' must hold integer labels, its dtype is f4/],
      ['one-hot labels', () => readNpz(npz({ x, y: npy(new Uint8Array([1, 0, 0, 0, 1, 0]), [N, 3]) })), /'y' has shape \[2,3\], expected one label per image: \[2\]/],
      ['fewer labels than images', () => readNpz(npz({ x, y: npy(new Uint8Array([1]), [1]) })), /'y' has shape \[1\], expected one label per image: \[2\]/],
      ['pixels of another integer type', () => readNpz(npz({ x: npy(new Int32Array(N * C * H * W), [N, C, H, W]), y: labels64 })), /'x' must be uint8 pixels or floats, its dtype is i4/],
      ['a non-finite float', () => readNpz(npz({ x: npy(new Float32Array(N * C * H * W).fill(NaN, 13), [N, C, H, W]), y: labels64 })), /non-finite value in image 1/],
      ['a scalar x', () => readNpz(npz({ x: npy(new Uint8Array([1]), [1]), y: labels64 })), /'x' has shape \[1\], expected \[N, \.\.\.image shape\]/],
      ['no images', () => readNpz(npz({ x: npy(new Uint8Array(0), [0, C, H, W]), y: npy(new Uint8Array(0), [0]) })), /holds no images/],
      ['not a zip file', () => readNpz(new TextEncoder().encode('just text, no zip')), /is not a valid \.npz \(zip\) file/],
      ['a member that is not .npy', () => readNpz(npz({ x: new TextEncoder().encode('hello'), y: labels64 })), /'x' is not a readable \.npy array/],
      ['wrong mean/std count', () => bindNpz(readNpz(npz({ x, y: labels64 })), model, { mean: [0.1, 0.2] }), /mean has 2 values for 3 channels/],
    ])('%s', (_name, run, message) => expectBad(run, message));

    test('a file that is neither .npz nor a directory', () => {
      expectBad(() => loadDataset(fixture('mnist_8.png'), model), /must be an \.npz file or an ImageFolder directory/);
    });
  });
});

describe('ImageFolder directories', () => {
  let root: string;
  const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'lipcert-imagefolder-'));
  /** A PNG whose pixels are a function of (x, y, channel): gray when channels is 1. */
  function writePng(file: string, width: number, height: number, value: (x: number, y: number, c: number) => number, gray = false) {
    const png = new PNG({ width, height });
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const i = 4 * (y * width + x);
        for (let c = 0; c < 3; c++) png.data[i + c] = value(x, y, gray ? 0 : c);
        png.data[i + 3] = 255;
      }
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, PNG.sync.write(png));
  }
  const rgbModel = modelOf([3, 4, 5]);

  beforeEach(() => {
    root = tmp();
    // Classes in sorted order: 'bird' 0, 'cat' 1, 'dog' 2 (written out of order on purpose).
    writePng(path.join(root, 'dog', 'b.png'), 5, 4, (x, y, c) => 10 * x + y + 50 * c);
    writePng(path.join(root, 'dog', 'a.png'), 5, 4, (x, y, c) => 3 * x + 7 * y + c);
    writePng(path.join(root, 'bird', 'z.png'), 5, 4, (x, y, c) => 200 - x - y - c);
    writePng(path.join(root, 'bird', 'nested', 'n.png'), 5, 4, (x, y, c) => 100 + c);
    fs.mkdirSync(path.join(root, 'cat')); // an empty class still takes its place in the order
    fs.writeFileSync(path.join(root, 'dog', '.DS_Store'), 'hidden files are left out');
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  test('classes in sorted order, files in torchvision order, pixels normalised as model/input.ts does', () => {
    const norm = { mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.5] };
    const data = loadDataset(root, rgbModel, norm);
    expect(data.classes).toEqual(['bird', 'cat', 'dog']);
    expect(data.count).toBe(4);
    expect(Array.from(data.labels)).toEqual([0, 0, 2, 2]);
    // torchvision sorts (directory, files) pairs by path: bird/ before bird/nested/.
    const order = ['bird/z.png', 'bird/nested/n.png', 'dog/a.png', 'dog/b.png'];
    order.forEach((file, i) => expect(Array.from(data.image(i))).toEqual(Array.from(loadInputFile(path.join(root, file), rgbModel, norm))));
    // and the normalisation itself, for one pixel: dog/a.png at x=1, y=2, channel G is 3 + 14 + 1 = 18.
    const plane = 4 * 5;
    expect(data.image(2)[plane + 2 * 5 + 1]).toBeCloseTo((18 / 255 - 0.4) / 0.25, 5);
  });

  test('a one-channel model reads gray PNGs; --limit keeps the first images', () => {
    const gray = tmp();
    try {
      for (let k = 0; k < 3; k++) writePng(path.join(gray, String(k), 'img.png'), 5, 4, (x, y) => 20 * k + x + y, true);
      const data = loadImageFolder(gray, modelOf([1, 4, 5]), { limit: 2 });
      expect(data.count).toBe(2);
      expect(Array.from(data.labels)).toEqual([0, 1]);
      expect(data.image(1)[0]).toBeCloseTo(20 / 255, 6);
    } finally {
      fs.rmSync(gray, { recursive: true, force: true });
    }
  });

  describe('bad data: one BadInputError', () => {
    test('a file that is not a PNG', () => {
      fs.writeFileSync(path.join(root, 'cat', 'notes.txt'), 'not an image');
      expectBad(() => loadDataset(root, rgbModel), /holds 'cat\/notes\.txt', which is not a \.png file/);
    });
    test('a .png file that does not decode', () => {
      fs.writeFileSync(path.join(root, 'cat', 'broken.png'), 'not a PNG at all');
      expectBad(() => loadDataset(root, rgbModel), /cat\/broken\.png: not a valid PNG/);
    });
    test('mixed image sizes', () => {
      writePng(path.join(root, 'cat', 'big.png'), 6, 4, () => 0);
      expectBad(() => loadDataset(root, rgbModel), /cat\/big\.png: the PNG is 6×4, the model expects 5×4/);
    });
    test('images of another size than the model', () => {
      expectBad(() => loadDataset(root, modelOf([3, 8, 8])), /bird\/z\.png: the PNG is 5×4, the model expects 8×8/);
    });
    test('fewer class directories than the model has classes', () => {
      expectBad(() => loadDataset(root, modelOf([3, 4, 5], 10)), /has 3 class directories, the model has 10 classes/);
    });
    test('a broken link', () => {
      fs.symlinkSync(path.join(root, 'nowhere.png'), path.join(root, 'cat', 'gone.png'));
      expectBad(() => loadDataset(root, rgbModel), /cannot read '.*cat\/gone\.png' \(ENOENT; a broken link\?\)/);
    });
    test('a file at the top level', () => {
      writePng(path.join(root, 'loose.png'), 5, 4, () => 0);
      expectBad(() => loadDataset(root, rgbModel), /holds a file 'loose\.png' at its top level/);
    });
    test('no images at all', () => {
      const empty = tmp();
      try {
        for (const c of ['a', 'b', 'c']) fs.mkdirSync(path.join(empty, c));
        expectBad(() => loadDataset(empty, rgbModel), /holds no images/);
      } finally {
        fs.rmSync(empty, { recursive: true, force: true });
      }
    });
    test('a model that does not take images', () => {
      expectBad(() => loadDataset(root, modelOf([60])), /a PNG needs an image model/);
    });
  });

  test('a missing path is NOT_FOUND', () => {
    expect(() => loadDataset(path.join(root, 'nope'), rgbModel)).toThrow(/cannot read dataset/);
  });
});
