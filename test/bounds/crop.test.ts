/**
 * Receptive-field crops of the per-unit backward passes (src/bounds/tight/crop.ts, docs/tightness.md
 * §5 "Crops"): a unit's field computed by fieldOf holds the whole support of its row at every layer
 * (checked against the backend's transposed operators on the full maps), and full sweeps with and
 * without crops give the same pre-activation bounds — on small chains with strided, padded, dilated
 * and grouped convolutions, overlapping padded max pools and other activations, and on the
 * Fashion-MNIST CNN.
 */
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { nominalPass, SpectralSolver } from '../../src/bounds/layer-bounds.js';
import { tightSweep } from '../../src/bounds/tight/index.js';
import { CROPS, croppable, fieldsOf, tilePlan } from '../../src/bounds/tight/crop.js';
import { importOnnxFile } from '../../src/model/onnx-import.js';
import { type AffineLayer, type ConvLayer, type Layer, type Network, size } from '../../src/model/ir.js';
import { loadDataset } from '../../src/model/dataset.js';
import { conv, dense, flatten, maxpool, network } from '../helpers/random-networks.js';
import { fixture } from '../helpers/fixtures.js';
import { randomInput } from './small-networks.js';

const backend = createCpuBackend();
afterAll(async () => {
  CROPS.enabled = true;
  CROPS.tileSide = 0;
  await backend.dispose();
});

/** Strided, padded, dilated and grouped convolutions, an overlapping padded max pool, LeakyReLU and a lone ReLU. */
function geometryNet(): Network {
  const c1 = conv([2, 13, 12], 4, [3, 3], { strides: [2, 1], pads: [1, 0, 2, 1], dilations: [1, 2] });
  const p1 = maxpool(c1.outputShape as [number, number, number], [3, 3], [2, 2], [1, 1, 1, 1]);
  const c2 = { ...(conv(p1.outputShape as [number, number, number], 4, [2, 3], { group: 2, pads: [0, 1, 1, 1], relu: false }) as ConvLayer), activation: { kind: 'leakyrelu', alpha: 0.1 } } as Layer;
  const c3 = conv(c2.outputShape as [number, number, number], 3, [3, 3], { pads: [1, 1, 1, 1], relu: false });
  const r: Layer = { kind: 'relu', name: 'relu', inputShape: c3.outputShape, outputShape: c3.outputShape };
  const c4 = conv(r.outputShape as [number, number, number], 4, [2, 2], { strides: [1, 2] });
  const f = flatten(c4.outputShape);
  return network([c1, p1, c2, c3, r, c4, f, dense(f.outputShape[0], 6), dense(6, 3, false)]);
}

test('fieldOf: the transposed operators of a tile of output units stay inside its field, layer by layer, and reach its edges', async () => {
  const net = geometryNet();
  const index = 5; // c4
  expect(croppable(net, index)).toBe(true);
  expect(croppable(net, 7)).toBe(false); // a dense layer after flatten: its units see everything
  const [channels, h, w] = net.layers[index].outputShape;
  for (const tile of [{ h0: 0, h1: 1, w0: 0, w1: 1 }, { h0: 1, h1: 3, w0: 1, w1: 2 }, { h0: h - 1, h1: h, w0: w - 1, w1: w }]) {
    const { inputs } = fieldsOf(net, index, tile);
    // Rows of every unit of the tile, all ones (positive weights through |A|ᵀ reach every entry the field may hold).
    let rows: Float32Array = new Float32Array(size(net.layers[index].outputShape));
    for (let c = 0; c < channels; c++) for (let y = tile.h0; y < tile.h1; y++) for (let x = tile.w0; x < tile.w1; x++) rows[(c * h + y) * w + x] = 1;
    for (let k = index; k >= 0; k--) {
      const layer = net.layers[k];
      const [ci, hi, wi] = layer.inputShape;
      if (layer.kind === 'conv') {
        rows = await backend.applyATBlock({ ...layer, weight: layer.weight.map(Math.abs) } as AffineLayer, rows, 1);
      } else if (layer.kind === 'maxpool') {
        // Every input of a window the row touches (the pool's backward takes one of them).
        const [, ho, wo] = layer.outputShape;
        const next = new Float32Array(size(layer.inputShape));
        for (let c = 0; c < ci; c++)
          for (let y = 0; y < ho; y++)
            for (let x = 0; x < wo; x++) {
              if (rows[(c * ho + y) * wo + x] === 0) continue;
              for (let a = 0; a < layer.kernel[0]; a++)
                for (let b = 0; b < layer.kernel[1]; b++) {
                  const yy = y * layer.strides[0] - layer.pads[0] + a * layer.dilations[0];
                  const xx = x * layer.strides[1] - layer.pads[1] + b * layer.dilations[1];
                  if (yy >= 0 && yy < hi && xx >= 0 && xx < wi) next[(c * hi + yy) * wi + xx] = 1;
                }
            }
        rows = next;
      }
      // The support's bounding box is the field.
      let [y0, y1, x0, x1] = [Infinity, -Infinity, Infinity, -Infinity];
      rows.forEach((v, i) => {
        if (v === 0) return;
        const y = Math.floor(i / wi) % hi;
        const x = i % wi;
        [y0, y1, x0, x1] = [Math.min(y0, y), Math.max(y1, y + 1), Math.min(x0, x), Math.max(x1, x + 1)];
      });
      expect({ k, h0: y0, h1: y1, w0: x0, w1: x1 }).toEqual({ k, ...inputs[k] });
    }
  }
});

/** The full sweep's pre-activation bounds with and without crops, compared per unit. */
async function compareSweeps(net: Network, x0: Float32Array, eps: number, tileSide = 0) {
  const nominal = await nominalPass(net, backend, x0);
  const run = async (enabled: boolean) => {
    CROPS.enabled = enabled;
    CROPS.tileSide = tileSide;
    const solver = new SpectralSolver(backend, { tolerance: 1e-6, maxIterations: 500 });
    try {
      return await tightSweep(net, backend, nominal, eps, solver, undefined, { refinement: 'full' });
    } finally {
      solver.dispose();
      CROPS.enabled = true;
      CROPS.tileSide = 0;
    }
  };
  const [cut, whole] = [await run(true), await run(false)];
  let compared = 0;
  let cropped = 0;
  let moved = 0; // units whose interval the per-unit bounds narrowed (so the crops were exercised)
  for (const [k, state] of whole.states.entries()) {
    const [lo, hi] = [state.preActivationLower, state.preActivationUpper];
    if (!lo || !hi || !croppable(net, k)) continue;
    const [cutLo, cutHi] = [cut.states[k].preActivationLower!, cut.states[k].preActivationUpper!];
    for (let i = 0; i < lo.length; i++) {
      expect(Math.abs(cutLo[i] - lo[i])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(lo[i])));
      expect(Math.abs(cutHi[i] - hi[i])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(hi[i])));
      compared++;
    }
    const nominalValues = nominal.preActivations[k]!;
    const units = Array.from(lo.keys()).filter((i) => lo[i] < nominalValues[i] && hi[i] > nominalValues[i]);
    moved += units.length;
    // Tiles smaller than the map: the passes did run on crops.
    CROPS.tileSide = tileSide;
    const plan = tilePlan(net, k, units);
    CROPS.tileSide = 0;
    if (plan.some(({ tile }) => (tile.h1 - tile.h0) * (tile.w1 - tile.w0) < net.layers[k].outputShape[1] * net.layers[k].outputShape[2])) cropped++;
  }
  expect(cropped).toBeGreaterThan(0); // some layer's passes ran on tiles smaller than its map
  return { compared, moved };
}

test.each([1, 2, 3])('a small chain of every croppable kind, tiles of side %p: the full sweep gives the same bounds with crops', async (side) => {
  const net = geometryNet();
  const { compared, moved } = await compareSweeps(net, randomInput(size(net.inputShape), 4), 0.3, side);
  expect(compared).toBeGreaterThan(100);
  expect(moved).toBeGreaterThan(10);
});

test('the Fashion-MNIST CNN: the full sweep gives the same bounds with crops', async () => {
  const net = importOnnxFile(fixture('fashion_cnn.onnx'));
  const data = loadDataset(fixture('fashion_test_1000.npz'), net, { mean: [0.286], std: [0.353], limit: 1 });
  const { compared, moved } = await compareSweeps(net, data.image(0), 0.05);
  expect(compared).toBeGreaterThan(10000);
  expect(moved).toBeGreaterThan(100);
});
