/**
 * The WebGPU backend against the CPU backend on the fixture networks (fixtures/): every backend
 * operation on every layer of the paper's MNIST and CIFAR-10 nets (single vectors and blocks of
 * three), then the local bounds through
 * certify() on both backends against fixtures/reference.json (converged float64 figures).
 * Relative tolerance 1e-4. Skipped only when no WebGPU adapter exists (see webgpu-setup.ts).
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import type { Backend } from '../../src/backend/backend.js';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { certify } from '../../src/bounds/certify.js';
import { PAPER_REPRODUCTION } from '../../src/bounds/defaults.js';
import { loadInputFile } from '../../src/model/input.js';
import { isAffine, size, type Network } from '../../src/model/ir.js';
import { importOnnxFile } from '../../src/model/onnx-import.js';
import { FIXTURE_CASES, fixture, reference } from '../helpers/fixtures.js';
import { expectClose, random, randomArray, randomMask } from './webgpu-reference.js';
import { tryCreateWebGpuBackend } from './webgpu-setup.js';

/** The fixture cases and the ε of each local bound computed here. */
const FIXTURES = FIXTURE_CASES.filter((c) => c.input.endsWith('.npy')).map((c) => ({
  ...c,
  // llvmpipe runs the CIFAR-10 net's convolutions slowly (about 7 s per ε): one radius there.
  eps: c.model === 'mnist_lenet' ? [0.001, 0.01, 0.1, 1] : [0.001],
}));

function load({ model, input, norm }: (typeof FIXTURES)[number]): { network: Network; x0: Float32Array } {
  const network = importOnnxFile(fixture(`${model}.onnx`));
  return { network, x0: loadInputFile(fixture(input), network, norm) };
}

const { backend: gpu, reason } = await tryCreateWebGpuBackend();
const cpu = gpu ? await createCpuBackend() : null;
const suite = gpu ? describe : describe.skip;
if (!gpu) test.skip(`WebGPU unavailable: ${reason}`, () => undefined);

afterAll(async () => {
  await gpu?.dispose();
  await cpu?.dispose();
});

suite.each(FIXTURES)('$model: WebGPU against CPU, layer by layer', (fixtureCase) => {
  const { network, x0 } = load(fixtureCase);

  test('every operation of every layer agrees to 1e-4', async () => {
    await gpu!.prepare(network);
    await cpu!.prepare(network);
    const rand = random(61);
    let x = x0;
    let compared = 0;
    for (const layer of network.layers) {
      const inSize = size(layer.inputShape);
      const outSize = size(layer.outputShape);
      const where = `${layer.kind} ${layer.name}`;
      if (isAffine(layer)) {
        const v = randomArray(inSize, rand);
        const u = randomArray(outSize, rand);
        const mask = randomMask(inSize, rand);
        const checks: [string, Float32Array, Float32Array][] = [
          ['forward', await gpu!.forward(layer, x), await cpu!.forward(layer, x)],
          ['A', await gpu!.applyA(layer, v), await cpu!.applyA(layer, v)],
          ['Aᵀ', await gpu!.applyAT(layer, u), await cpu!.applyAT(layer, u)],
          ['row norms', await gpu!.rowNormsSquared(layer, mask), await cpu!.rowNormsSquared(layer, mask)],
        ];
        for (const [what, actual, expected] of checks) {
          try {
            expectClose(actual, expected);
          } catch (error) {
            throw new Error(`${where} ${what}: ${(error as Error).message}`);
          }
        }
        const slopes = Float32Array.from({ length: outSize }, () => (rand() + 1) / 2);
        const results: Float64Array[] = [];
        for (const backend of [gpu!, cpu!]) {
          const op = await backend.gramOperator(layer, mask, slopes);
          const input = backend.vectors.upload(v);
          const out = backend.vectors.alloc(inSize);
          await op.apply(input, out);
          results.push(await backend.vectors.download(out));
          backend.vectors.free(input);
          backend.vectors.free(out);
          op.dispose();
        }
        expectClose(results[0], results[1]);
        x = await cpu!.forward(layer, x);
        if (layer.relu) x = x.map((value) => Math.max(value, 0));
        compared++;
      } else if (layer.kind === 'maxpool') {
        expectClose(await gpu!.maxPool(layer, x), await cpu!.maxPool(layer, x));
        const mask = randomMask(inSize, rand, 0.3);
        expect(Array.from(await gpu!.poolMask(layer, mask))).toEqual(Array.from(await cpu!.poolMask(layer, mask)));
        x = await cpu!.maxPool(layer, x);
        compared++;
      } else if (layer.kind === 'relu') {
        x = x.map((value) => Math.max(value, 0));
      }
    }
    expect(compared).toBeGreaterThanOrEqual(5);
  });
});

suite.each(FIXTURES)('$model: WebGPU against CPU, blocks of 3 vectors', (fixtureCase) => {
  const { network } = load(fixtureCase);

  test('every block operation of every layer agrees to 1e-4 (each vector its own mask and slopes)', async () => {
    await gpu!.prepare(network);
    const rand = random(67);
    const count = 3;
    let compared = 0;
    for (const layer of network.layers) {
      const inSize = size(layer.inputShape);
      const outSize = size(layer.outputShape);
      const where = `${layer.kind} ${layer.name}`;
      const x = randomArray(count * inSize, rand);
      const masks = randomMask(count * inSize, rand);
      const compare = (what: string, actual: ArrayLike<number>, expected: ArrayLike<number>) => {
        try {
          expectClose(actual, expected);
        } catch (error) {
          throw new Error(`${where} ${what}: ${(error as Error).message}`);
        }
      };
      if (isAffine(layer)) {
        const u = randomArray(count * outSize, rand);
        compare('forward', await gpu!.forwardBlock(layer, x, count), await cpu!.forwardBlock(layer, x, count));
        compare('A', await gpu!.applyABlock(layer, x, count), await cpu!.applyABlock(layer, x, count));
        compare('Aᵀ', await gpu!.applyATBlock(layer, u, count), await cpu!.applyATBlock(layer, u, count));
        compare('row norms', await gpu!.rowNormsSquaredBlock(layer, masks, count), await cpu!.rowNormsSquaredBlock(layer, masks, count));
        const slopes = Float32Array.from({ length: count * outSize }, () => (rand() + 1) / 2);
        const results: Float64Array[] = [];
        for (const backend of [gpu!, cpu!]) {
          const op = await backend.gramBlockOperator(layer, masks, slopes, count);
          const input = backend.blocks.uploadBlock(x, count);
          const out = backend.blocks.allocBlock(count, inSize);
          await op.apply(input, out);
          results.push(await backend.blocks.downloadBlock(out));
          backend.blocks.freeBlock(input);
          backend.blocks.freeBlock(out);
          op.dispose();
        }
        compare('Gram', results[0], results[1]);
        compared++;
      } else if (layer.kind === 'maxpool') {
        compare('max pool', await gpu!.maxPoolBlock(layer, x, count), await cpu!.maxPoolBlock(layer, x, count));
        expect(Array.from(await gpu!.poolMaskBlock(layer, masks, count))).toEqual(Array.from(await cpu!.poolMaskBlock(layer, masks, count)));
        compared++;
      }
    }
    expect(compared).toBeGreaterThanOrEqual(5);
  });
});

describe.each(FIXTURES)('$model image $image: local bounds against reference.json', (fixtureCase) => {
  const { network, x0 } = load(fixtureCase);
  const { model, image, eps } = fixtureCase;
  const expected: Record<string, number> = reference.models[model].images[image].local_bound_converged;

  const backends: [string, () => Backend | null][] = [
    ['cpu', () => cpu],
    ['webgpu', () => gpu],
  ];
  (gpu ? test.each(backends) : test.skip.each(backends))('%s backend', async (_name, backend) => {
    const result = await certify(network, x0, backend()!, { ...PAPER_REPRODUCTION, eps: [...eps] });
    expect(result.local.map((bound) => bound.eps)).toEqual([...eps]);
    for (const bound of result.local) {
      const want = expected[Number.isInteger(bound.eps) ? bound.eps.toFixed(1) : String(bound.eps)];
      expect(want).toBeGreaterThan(0);
      expect(Math.abs(bound.bound - want) / want).toBeLessThan(1e-4);
    }
  });
});
