/**
 * Files in the browser: base64 for the API, previews of PNGs and image-shaped .npy arrays, the
 * normalisation presets, and thumbnails kept in localStorage (the server stores an input's values,
 * not its picture, so a picture is shown only in the browser that added it).
 */
export interface Preset {
  id: string;
  label: string;
  mean: number[];
  std: number[];
}
export const PRESETS: Preset[] = [
  { id: 'mnist', label: 'MNIST', mean: [0.1307], std: [0.3081] },
  { id: 'fashion-mnist', label: 'Fashion-MNIST', mean: [0.286], std: [0.353] },
  { id: 'cifar10', label: 'CIFAR-10', mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
  { id: 'imagenet', label: 'ImageNet', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  { id: 'none', label: 'None (pixel / 255)', mean: [0], std: [1] },
];

/** The preset that fits a model's input shape [C, H, W]. */
export function presetFor(inputShape: number[]): string {
  const [c, h] = inputShape;
  if (inputShape.length !== 3) return 'none';
  if (c === 1) return 'mnist';
  if (c === 3 && (h ?? 0) <= 64) return 'cifar10';
  if (c === 3) return 'imagenet';
  return 'none';
}

export function readBase64(file: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => {
      const url = String(reader.result);
      resolve(url.slice(url.indexOf(',') + 1));
    };
    reader.onerror = () => reject(reader.error ?? new Error('the file could not be read'));
    reader.readAsDataURL(file);
  });
}

const THUMB_SIZE = 112;
const THUMB_KEY = 'lipcert.thumbnail.';

function canvasOf(width: number, height: number): [HTMLCanvasElement, CanvasRenderingContext2D] {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  return [canvas, canvas.getContext('2d')!];
}

/** A PNG data URL of at most THUMB_SIZE pixels a side. */
async function thumbnailOf(image: CanvasImageSource & { width: number; height: number }): Promise<string> {
  const scale = Math.min(1, THUMB_SIZE / Math.max(image.width, image.height));
  const [canvas, ctx] = canvasOf(Math.max(1, Math.round(image.width * scale)), Math.max(1, Math.round(image.height * scale)));
  ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
  return canvas.toDataURL('image/png');
}

export async function pngPreview(file: Blob): Promise<string> {
  const bitmap = await createImageBitmap(file);
  try {
    return await thumbnailOf(bitmap);
  } finally {
    bitmap.close();
  }
}

interface NpyArray {
  shape: number[];
  values: Float64Array;
}

/** Parses a little-endian .npy (float32/float64/uint8/int32, C order). */
export function parseNpy(buffer: ArrayBuffer): NpyArray | null {
  const bytes = new Uint8Array(buffer);
  if (bytes[0] !== 0x93 || String.fromCharCode(...bytes.slice(1, 6)) !== 'NUMPY') return null;
  const major = bytes[6]!;
  const view = new DataView(buffer);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.slice(start, start + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || fortran || shapeText === undefined) return null;
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLength;
  const readers: Record<string, [number, (o: number) => number]> = {
    '<f4': [4, (o) => view.getFloat32(o, true)],
    '<f8': [8, (o) => view.getFloat64(o, true)],
    '|u1': [1, (o) => view.getUint8(o)],
    '<i4': [4, (o) => view.getInt32(o, true)],
  };
  const reader = readers[descr];
  if (!reader || offset + count * reader[0] > buffer.byteLength) return null;
  const values = new Float64Array(count);
  for (let i = 0; i < count; i++) values[i] = reader[1](offset + i * reader[0]);
  return { shape, values };
}

/** A picture of an image-shaped array ([1,]C,H,W with C 1 or 3), scaled from its min to its max. */
export async function npyPreview(file: Blob): Promise<string | null> {
  const array = parseNpy(await file.arrayBuffer());
  if (!array) return null;
  const dims = array.shape[0] === 1 && array.shape.length === 4 ? array.shape.slice(1) : array.shape;
  if (dims.length !== 3 || (dims[0] !== 1 && dims[0] !== 3)) return null;
  const [c, h, w] = dims as [number, number, number];
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of array.values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const span = hi > lo ? hi - lo : 1;
  const [canvas, ctx] = canvasOf(w, h);
  const pixels = ctx.createImageData(w, h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = (y * w + x) * 4;
      for (let k = 0; k < 3; k++) {
        const v = array.values[(c === 1 ? 0 : k) * h * w + y * w + x]!;
        pixels.data[p + k] = Math.round((255 * (v - lo)) / span);
      }
      pixels.data[p + 3] = 255;
    }
  }
  ctx.putImageData(pixels, 0, 0);
  return thumbnailOf(canvas);
}

export function saveThumbnail(inputId: string, dataUrl: string): void {
  try {
    localStorage.setItem(THUMB_KEY + inputId, dataUrl);
  } catch {
    // Storage full or disabled: the picture is simply not kept.
  }
}

export function loadThumbnail(inputId: string | null | undefined): string | null {
  if (!inputId) return null;
  try {
    return localStorage.getItem(THUMB_KEY + inputId);
  } catch {
    return null;
  }
}
