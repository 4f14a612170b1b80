/**
 * Nominal inputs x0: .npy (via npyjs), .json ({"shape": [...], "data": [...]}) or .png (via pngjs,
 * scaled to [0,1], converted to the model's channel count, normalised (x − mean)/std per channel).
 * Returns a Float32Array in the model's input layout; every mistake is a BadInputError.
 * What a file declares (the .npy header's shape, dtype and data length; the PNG's IHDR chunk) and
 * the normalisation are checked against the model's input before anything is decoded, so a small
 * file cannot make us allocate a huge array and a mistake is named in the format's own terms.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseNpy } from 'npyjs';
import { PNG } from 'pngjs';
import { BadInputError, LipcertError } from '../errors.js';
import { type Network, size } from './ir.js';

export type InputFormat = 'npy' | 'json' | 'png';

export interface Normalisation {
  mean?: number[];
  std?: number[];
}

function checkShape(network: Network, shape: number[], source: string) {
  // Accept the model's shape with or without a leading batch dimension of 1.
  const expected = network.inputShape;
  const dims = shape.length === expected.length + 1 && shape[0] === 1 ? shape.slice(1) : shape;
  const same = dims.length === expected.length && dims.every((d, i) => d === expected[i]);
  if (!same) throw new BadInputError(`${source} has shape [${shape}], the model expects [1,${expected}]`);
}

function finite(data: Float32Array, source: string): Float32Array {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new BadInputError(`${source} holds a non-finite value at index ${i}`);
  }
  return data;
}

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Bytes per value of the .npy dtypes npyjs reads as real numbers (little-endian or single-byte). */
const NPY_ITEM_SIZES: Record<string, number> = { f2: 2, f4: 4, f8: 8, i1: 1, i2: 2, i4: 4, i8: 8, u1: 1, u2: 2, u4: 4, u8: 8, b1: 1 };

/** What an .npy header declares, and where its data begins. */
export interface NpyHeader {
  shape: number[];
  /** The dtype without its byte order ('f4'). */
  dtype: string;
  itemSize: number;
  fortranOrder: boolean;
  dataOffset: number;
}

/**
 * The header of an .npy file (format versions 1.0 to 3.0: magic, version, header length, then a
 * Python dict literal with 'descr', 'fortran_order' and 'shape'), its dtype one that lipcert reads.
 */
export function npyHeader(bytes: Uint8Array): NpyHeader {
  if (bytes.length < 10 || !NPY_MAGIC.every((b, i) => bytes[i] === b)) throw new BadInputError('not a valid .npy file (no NUMPY magic)');
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [headerStart, headerLength] = major === 1 ? [10, view.getUint16(8, true)] : bytes.length >= 12 ? [12, view.getUint32(8, true)] : [0, -1];
  if (headerLength < 0 || major < 1 || major > 3 || headerStart + headerLength > bytes.length) {
    throw new BadInputError('not a valid .npy file (truncated or unknown header)');
  }
  const header = new TextDecoder('latin1').decode(bytes.subarray(headerStart, headerStart + headerLength));
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!shape) throw new BadInputError('not a valid .npy file (its header has no shape)');
  const dims = shape[1].split(',').map((d) => d.trim()).filter((d) => d !== '');
  if (!dims.every((d) => /^\d+$/.test(d))) throw new BadInputError(`not a valid .npy file (shape (${shape[1]}))`);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  if (descr === undefined) throw new BadInputError('not a valid .npy file (its header has no descr)');
  const order = descr[0];
  const dtype = descr.slice(1);
  const itemSize = NPY_ITEM_SIZES[dtype];
  if (itemSize === undefined || !(order === '<' || order === '|' || (order === '>' && itemSize === 1))) {
    throw new BadInputError(`the .npy array has dtype '${descr}'; lipcert reads little-endian floats, integers and booleans (f2, f4, f8, i1 to i8, u1 to u8, b1)`);
  }
  const dataOffset = headerStart + headerLength;
  if (dataOffset % itemSize !== 0) throw new BadInputError('not a valid .npy file (its header is not padded to align the data)');
  return { shape: dims.map(Number), dtype, itemSize, fortranOrder: /'fortran_order'\s*:\s*True/.test(header), dataOffset };
}

function fromNpy(bytes: Uint8Array, network: Network): Float32Array {
  const header = npyHeader(bytes);
  checkShape(network, header.shape, 'the .npy array');
  if (header.fortranOrder) throw new BadInputError('.npy arrays in Fortran order are not supported');
  const needed = size(header.shape) * header.itemSize;
  const held = bytes.length - header.dataOffset;
  if (held !== needed) {
    throw new BadInputError(`the .npy file holds ${held} bytes of data; its shape [${header.shape}] of ${header.dtype} values needs ${needed}`);
  }
  let array;
  try {
    array = parseNpy(new Uint8Array(bytes).buffer); // a copy: npyjs wants a whole ArrayBuffer
  } catch {
    throw new BadInputError('not a valid .npy file (npyjs cannot read it)');
  }
  const source = array.data as unknown as ArrayLike<number | bigint>;
  const out = new Float32Array(size(network.inputShape));
  if (source.length !== out.length) throw new BadInputError(`the .npy array holds ${source.length} values, the model expects ${out.length}`);
  for (let i = 0; i < out.length; i++) out[i] = Number(source[i]);
  return finite(out, 'the .npy array');
}

function fromJson(bytes: Uint8Array, network: Network): Float32Array {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new BadInputError(`not valid JSON (${(e as Error).message})`);
  }
  const obj = parsed as { shape?: unknown; data?: unknown };
  if (!obj || !Array.isArray(obj.shape) || !Array.isArray(obj.data)) {
    throw new BadInputError('a JSON input must be {"shape": [...], "data": [...]}');
  }
  checkShape(network, obj.shape as number[], 'the JSON input');
  const flat = (obj.data as unknown[]).flat(Infinity);
  const out = new Float32Array(size(network.inputShape));
  if (flat.length !== out.length) throw new BadInputError(`the JSON input holds ${flat.length} values, the model expects ${out.length}`);
  for (let i = 0; i < out.length; i++) {
    if (typeof flat[i] !== 'number') throw new BadInputError(`the JSON input holds a non-number at index ${i}`);
    out[i] = flat[i] as number;
  }
  return finite(out, 'the JSON input');
}

function perChannel(values: number[] | undefined, channels: number, fallback: number, what: string): number[] {
  if (!values || values.length === 0) return new Array(channels).fill(fallback);
  if (values.length === 1) return new Array(channels).fill(values[0]);
  if (values.length !== channels) throw new BadInputError(`${what} has ${values.length} values for ${channels} channels`);
  return values;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Width and height from a PNG's IHDR chunk, which the format requires first (PNG spec §5.6, §11.2.2). */
export function pngDeclaredSize(bytes: Uint8Array): { width: number; height: number } {
  const ihdr = [0x49, 0x48, 0x44, 0x52];
  if (bytes.length < 24 || !PNG_SIGNATURE.every((b, i) => bytes[i] === b) || !ihdr.every((b, i) => bytes[12 + i] === b)) {
    throw new BadInputError('not a valid PNG (no PNG signature and IHDR chunk)');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/** Per-channel mean and std (one value for all channels, one per channel, or 0 and 1), checked. */
export function channelNormalisation(norm: Normalisation, channels: number): { mean: number[]; std: number[] } {
  const mean = perChannel(norm.mean, channels, 0, 'mean');
  const std = perChannel(norm.std, channels, 1, 'std');
  if (std.some((s) => !(s > 0) || !Number.isFinite(s))) throw new BadInputError(`std must be positive and finite, got [${std}]`);
  if (mean.some((m) => !Number.isFinite(m))) throw new BadInputError(`mean must be finite, got [${mean}]`);
  return { mean, std };
}

/**
 * A PNG as the model's input: scaled to [0,1], converted to its 1 or 3 channels, normalised
 * (x − mean)/std per channel. `source` (a file name) prefixes error messages.
 */
export function pngInput(bytes: Uint8Array, network: Network, norm: Normalisation, source?: string): Float32Array {
  const prefix = source === undefined ? '' : `${source}: `;
  if (network.inputShape.length !== 3) throw new BadInputError(`a PNG needs an image model; this one takes [${network.inputShape}]`);
  const [channels, height, width] = network.inputShape;
  if (channels !== 1 && channels !== 3) throw new BadInputError(`a PNG can feed 1 or 3 channels; the model takes ${channels}`);
  let declared: { width: number; height: number };
  try {
    declared = pngDeclaredSize(bytes);
  } catch (e) {
    throw new BadInputError(`${prefix}${(e as Error).message}`);
  }
  if (declared.width !== width || declared.height !== height) {
    throw new BadInputError(`${prefix}the PNG is ${declared.width}×${declared.height}, the model expects ${width}×${height}`);
  }
  const { mean, std } = channelNormalisation(norm, channels);
  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch {
    // pngjs's messages speak of its streams and chunks; a user needs to know the file is broken.
    throw new BadInputError(`${prefix}not a valid PNG: the file is truncated or its image data is corrupt`);
  }
  if (png.width !== width || png.height !== height) {
    throw new BadInputError(`${prefix}the PNG is ${png.width}×${png.height}, the model expects ${width}×${height}`);
  }
  const out = new Float32Array(channels * height * width);
  const rgba = png.data; // pngjs always decodes to RGBA, 8 bits per channel
  for (let p = 0; p < height * width; p++) {
    const [r, g, b] = [rgba[4 * p], rgba[4 * p + 1], rgba[4 * p + 2]];
    if (channels === 1) {
      const gray = r === g && g === b ? r : 0.299 * r + 0.587 * g + 0.114 * b; // ITU-R 601 luma
      out[p] = (gray / 255 - mean[0]) / std[0];
    } else {
      out[p] = (r / 255 - mean[0]) / std[0];
      out[height * width + p] = (g / 255 - mean[1]) / std[1];
      out[2 * height * width + p] = (b / 255 - mean[2]) / std[2];
    }
  }
  return out;
}

export function parseInputBytes(bytes: Uint8Array, format: InputFormat, network: Network, norm: Normalisation = {}): Float32Array {
  switch (format) {
    case 'npy':
      return fromNpy(bytes, network);
    case 'json':
      return fromJson(bytes, network);
    case 'png':
      return pngInput(bytes, network, norm);
    default:
      throw new BadInputError(`unknown input format '${format as string}'`);
  }
}

export function inputFormatOf(file: string): InputFormat {
  const ext = path.extname(file).toLowerCase().slice(1);
  if (ext === 'npy' || ext === 'json' || ext === 'png') return ext;
  throw new BadInputError(`input '${file}' must be a .npy, .json or .png file`);
}

export function loadInputFile(file: string, network: Network, norm: Normalisation = {}): Float32Array {
  const format = inputFormatOf(file);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    throw new LipcertError('NOT_FOUND', `cannot read input file '${file}'`);
  }
  return parseInputBytes(bytes, format, network, norm);
}
