/** The fixture images of the paper's Table III (listed in src/cli/table.ts), loaded with their normalisation, and reference.json. */
import fs from 'node:fs';
import path from 'node:path';
import type { FixtureImage } from '../../src/cli/table.js';
import { loadInputFile } from '../../src/model/input.js';
import type { Network } from '../../src/model/ir.js';
import { importOnnxFile } from '../../src/model/onnx-import.js';

export const FIXTURES = path.resolve('fixtures');
export { type FixtureImage, TABLE_III_IMAGES } from '../../src/cli/table.js';

export async function loadFixture(f: FixtureImage): Promise<{ network: Network; x0: Float32Array }> {
  const network = await importOnnxFile(path.join(FIXTURES, `${f.model}.onnx`));
  return { network, x0: loadInputFile(path.join(FIXTURES, f.file), network, f.norm) };
}

export interface ReferenceImage {
  class: number;
  certified_radius_local: number;
  lower_bound_gradient_ascent: Record<string, number>;
}

export function referenceFor(f: FixtureImage): ReferenceImage {
  const ref = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'reference.json'), 'utf8'));
  return ref.models[f.model].images[f.image];
}
