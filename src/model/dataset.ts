/**
 * Labelled test sets as users have them, read into a `Dataset` whose images come out one at a time
 * in the model's input layout (normalised Float32Array, no batch dimension):
 * - `.npz` (numpy.savez): `x` [N,C,H,W], [N,H,W,C] or, for one channel, [N,H,W]; uint8 pixels are
 *   scaled to [0,1] then normalised (x − mean)/std, floats are taken as given unless mean/std are
 *   given; `y` integer labels [N] (or [N,1]). Zip by fflate (stored and deflated members), arrays by
 *   npyjs. The pixels stay in their stored dtype; an image is converted when it is asked for.
 * - a directory in torchvision's ImageFolder layout: root/<class>/**.png, classes in sorted order
 *   (a class's label is its position in that order), files in sorted order per directory as
 *   torchvision walks them; PNGs decoded by model/input.ts, validated when the set is loaded and
 *   decoded again when asked for, so no decoded set is held in memory.
 * Reading is split in two: a model-free part (what the file holds: `readNpz`) and binding to a model
 * (layout, label range, normalisation: `bindNpz`), so a server can store a set before a model is chosen.
 * Every problem with the data is one BadInputError.
 */
import fs from 'node:fs';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { parse as parseNpy } from 'npyjs';
import { BadInputError, LipcertError } from '../errors.js';
import { channelNormalisation, type Normalisation, pngInput } from './input.js';
import { type Network, type Shape, size } from './ir.js';

export interface Dataset {
  /** Where the images come from (a file or directory name), for messages. */
  source: string;
  count: number;
  /** Label of each image: the index of its class among the model's outputs. */
  labels: Int32Array;
  /** Class names where the data has them (ImageFolder directory names). */
  classes?: string[];
  /** The model's input shape: every image has size(inputShape) values. */
  inputShape: Shape;
  /** Image `index` (0 ≤ index < count), normalised, in the model's layout. */
  image(index: number): Float32Array;
}

export interface DatasetOptions extends Normalisation {
  /** Use only the first `limit` images (the rest are not read, converted or checked). */
  limit?: number;
}

type PixelArray = Uint8Array | Float32Array | Float64Array;

/** What an .npz holds, before a model is chosen. */
export interface NpzData {
  /** Shape of `x` without the leading N. */
  itemShape: Shape;
  /** 'uint8' (raw pixels) or 'float'. */
  pixels: 'uint8' | 'float';
  count: number;
  labels: Int32Array;
  x: PixelArray;
}

const LABEL_DTYPES = new Set(['i1', 'u1', 'i2', 'u2', 'i4', 'u4', 'i8', 'u8']);

function npyMember(files: Record<string, Uint8Array>, name: string, source: string) {
  const bytes = files[`${name}.npy`] ?? files[name];
  if (!bytes) throw new BadInputError(`${source} has no array '${name}' (it holds ${Object.keys(files).map((k) => `'${k.replace(/\.npy$/, '')}'`).join(', ') || 'nothing'})`);
  // npyjs makes views on a whole ArrayBuffer; fflate returns each member as its own buffer.
  const buffer = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? (bytes.buffer as ArrayBuffer) : bytes.slice().buffer;
  try {
    const array = parseNpy(buffer);
    if (array.fortranOrder) throw new Error('arrays in Fortran order are not supported');
    return array;
  } catch (e) {
    throw new BadInputError(`${source}: '${name}' is not a readable .npy array (${(e as Error).message})`);
  }
}

/** The first `count` labels of an .npz: integers, one per stored image, as [N] or [N,1]. */
function npzLabels(y: ReturnType<typeof parseNpy>, stored: number, count: number, source: string): Int32Array {
  if (!LABEL_DTYPES.has(y.dtype)) throw new BadInputError(`${source}: 'y' must hold integer labels, its dtype is ${y.dtype}`);
  const shapeOk = (y.shape.length === 1 || (y.shape.length === 2 && y.shape[1] === 1)) && y.shape[0] === stored;
  if (!shapeOk) throw new BadInputError(`${source}: 'y' has shape [${y.shape}], expected one label per image: [${stored}]`);
  const values = y.data as unknown as ArrayLike<number | bigint>;
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const v = Number(values[i]);
    if (!(v >= 0 && v <= 0x7fffffff)) throw new BadInputError(`${source}: label ${String(values[i])} of image ${i} is not a class index (negative or too large)`);
    labels[i] = v;
  }
  return labels;
}

/** An .npz's `x` and `y`, checked for consistency but not yet against a model. */
export function readNpz(bytes: Uint8Array, source = 'the .npz file', limit?: number): NpzData {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes, { filter: (f) => ['x', 'y', 'x.npy', 'y.npy'].includes(f.name) });
  } catch (e) {
    throw new BadInputError(`${source} is not a valid .npz (zip) file (${(e as Error).message})`);
  }
  const x = npyMember(files, 'x', source);
  const y = npyMember(files, 'y', source);
  if (x.shape.length < 2) throw new BadInputError(`${source}: 'x' has shape [${x.shape}], expected [N, ...image shape]`);
  const [stored, ...itemShape] = x.shape;
  const count = Math.min(stored, limit ?? stored);
  if (count === 0) throw new BadInputError(`${source} holds no images`);
  let pixels: NpzData['pixels'];
  if (x.dtype === 'u1') pixels = 'uint8';
  else if (x.dtype === 'f4' || x.dtype === 'f8' || x.dtype === 'f2') pixels = 'float';
  else throw new BadInputError(`${source}: 'x' must be uint8 pixels or floats, its dtype is ${x.dtype}`);
  const data = x.data as PixelArray;
  if (data.length !== stored * size(itemShape)) throw new BadInputError(`${source}: 'x' holds ${data.length} values, its shape [${x.shape}] needs ${stored * size(itemShape)}`);
  const used = data.subarray(0, count * size(itemShape)) as PixelArray;
  if (pixels === 'float') {
    for (let i = 0; i < used.length; i++) {
      if (!Number.isFinite(used[i])) throw new BadInputError(`${source}: 'x' holds a non-finite value in image ${Math.floor(i / size(itemShape))}`);
    }
  }
  return { itemShape, pixels, count, labels: npzLabels(y, stored, count, source), x: used };
}

function checkLabels(labels: Int32Array, network: Network, source: string): void {
  const classes = size(network.outputShape);
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= classes) throw new BadInputError(`${source}: label ${labels[i]} of image ${i} is out of range: the model has ${classes} classes (0 to ${classes - 1})`);
  }
}

const sameShape = (a: Shape, b: Shape) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Where value (c, h, w) of an image sits in its stored order: the identity for [C,H,W] (and any
 * non-image shape equal to the model's), channels last for [H,W,C], and no channel axis for [H,W]
 * (one channel). [C,H,W] wins when a shape fits both.
 */
function storedLayout(itemShape: Shape, inputShape: Shape, source: string): 'chw' | 'hwc' {
  if (sameShape(itemShape, inputShape)) return 'chw';
  if (inputShape.length === 3) {
    const [c, h, w] = inputShape;
    if (sameShape(itemShape, [h, w, c])) return 'hwc';
    if (c === 1 && sameShape(itemShape, [h, w])) return 'chw';
  }
  const accepted = inputShape.length === 3 ? `[N,${inputShape}] or [N,${inputShape[1]},${inputShape[2]},${inputShape[0]}]` : `[N,${inputShape}]`;
  throw new BadInputError(`${source}: 'x' has images of shape [${itemShape}], the model expects ${accepted}`);
}

/** An .npz's data as the model's inputs: layout resolved, labels checked against its classes. */
export function bindNpz(data: NpzData, network: Network, norm: Normalisation = {}, source = 'the .npz file'): Dataset {
  const inputShape = network.inputShape;
  const layout = storedLayout(data.itemShape, inputShape, source);
  checkLabels(data.labels, network, source);
  const n = size(inputShape);
  const channels = inputShape.length === 3 ? inputShape[0] : 1;
  const plane = n / channels;
  const normalise = data.pixels === 'uint8' || norm.mean !== undefined || norm.std !== undefined;
  const { mean, std } = channelNormalisation(norm, channels);
  const pixels = data.pixels === 'uint8'; // divided by 255 exactly as model/input.ts does for PNGs
  return {
    source,
    count: data.count,
    labels: data.labels,
    inputShape,
    image(index) {
      if (!(Number.isInteger(index) && index >= 0 && index < data.count)) throw new RangeError(`image index ${index} outside 0..${data.count - 1}`);
      const stored = data.x.subarray(index * n, (index + 1) * n);
      const out = new Float32Array(n);
      for (let c = 0; c < channels; c++) {
        for (let p = 0; p < plane; p++) {
          const raw = stored[layout === 'chw' ? c * plane + p : p * channels + c];
          const value = pixels ? raw / 255 : raw;
          out[c * plane + p] = normalise ? (value - mean[c]) / std[c] : value;
        }
      }
      return out;
    },
  };
}

function readBytes(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch {
    throw new LipcertError('NOT_FOUND', `cannot read dataset file '${file}'`);
  }
}

/** Entries of a directory in sorted order (code-unit order, as Python sorts), hidden ones left out. */
function visibleEntries(dir: string): { name: string; full: string; isDir: boolean }[] {
  const names = (() => {
    try {
      return fs.readdirSync(dir);
    } catch (e) {
      throw new BadInputError(`cannot list directory '${dir}' (${(e as NodeJS.ErrnoException).code})`);
    }
  })();
  return names
    .filter((name) => !name.startsWith('.'))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((name) => {
      const full = path.join(dir, name);
      try {
        return { name, full, isDir: fs.statSync(full).isDirectory() }; // statSync follows links, like torchvision
      } catch (e) {
        throw new BadInputError(`cannot read '${full}' (${(e as NodeJS.ErrnoException).code}; a broken link?)`);
      }
    });
}

/** Every file under a class directory, in torchvision's order: directories sorted by path, files sorted within each. */
function classFiles(dir: string): string[] {
  const dirs: string[] = [];
  const walk = (d: string) => {
    dirs.push(d);
    for (const e of visibleEntries(d)) if (e.isDir) walk(e.full);
  };
  walk(dir);
  dirs.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return dirs.flatMap((d) => visibleEntries(d).filter((e) => !e.isDir).map((e) => e.full));
}

/**
 * An ImageFolder directory: root/<class>/**.png. There must be one class directory per model
 * output (the labels are positions in the sorted list of class directories, so a missing class
 * would shift every label after it); empty class directories count. Hidden files (names starting
 * with a dot) are left out, like `.DS_Store`; any other file that is not a PNG is an error.
 */
export function loadImageFolder(root: string, network: Network, options: DatasetOptions = {}): Dataset {
  const entries = visibleEntries(root);
  const stray = entries.find((e) => !e.isDir);
  if (stray) throw new BadInputError(`ImageFolder '${root}' holds a file '${stray.name}' at its top level; it must hold only one directory per class`);
  const classes = entries.map((e) => e.name);
  const outputs = size(network.outputShape);
  if (classes.length !== outputs) {
    throw new BadInputError(`ImageFolder '${root}' has ${classes.length} class directories, the model has ${outputs} classes (labels are positions in the sorted list of class directories, so each class needs one)`);
  }
  const files: string[] = [];
  const labelList: number[] = [];
  for (const [label, e] of entries.entries()) {
    for (const file of classFiles(e.full)) {
      if (path.extname(file).toLowerCase() !== '.png') throw new BadInputError(`ImageFolder '${root}' holds '${path.relative(root, file)}', which is not a .png file`);
      files.push(file);
      labelList.push(label);
    }
  }
  const count = Math.min(files.length, options.limit ?? files.length);
  if (count === 0) throw new BadInputError(`ImageFolder '${root}' holds no images`);
  const image = (index: number) => {
    if (!(Number.isInteger(index) && index >= 0 && index < count)) throw new RangeError(`image index ${index} outside 0..${count - 1}`);
    return pngInput(readBytes(files[index]), network, options, path.relative(root, files[index]));
  };
  for (let i = 0; i < count; i++) image(i); // every image decodes and has the model's size, or one error now
  return { source: root, count, labels: Int32Array.from(labelList.slice(0, count)), classes, inputShape: network.inputShape, image };
}

/** An .npz file or an ImageFolder directory, bound to `network`. */
export function loadDataset(file: string, network: Network, options: DatasetOptions = {}): Dataset {
  let isDirectory: boolean;
  try {
    isDirectory = fs.statSync(file).isDirectory();
  } catch {
    throw new LipcertError('NOT_FOUND', `cannot read dataset '${file}'`);
  }
  if (isDirectory) return loadImageFolder(file, network, options);
  if (path.extname(file).toLowerCase() !== '.npz') throw new BadInputError(`dataset '${file}' must be an .npz file or an ImageFolder directory`);
  return bindNpz(readNpz(readBytes(file), file, options.limit), network, options, file);
}
