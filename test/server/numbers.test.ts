/**
 * Completeness of results against the schema (every Float! a finite number) on real certify()
 * results: a healthy one passes, a broken one is named by its paths; eps 1e305 and weights of 1e25
 * stop the computation with NUMERIC_OVERFLOW (bounds/norms.ts), never a bound of 0; eps limits
 * refuse such radii up front.
 */
import { buildSchema } from 'graphql';
import { createBackend } from '../../src/backend/select.js';
import { certify } from '../../src/bounds/certify.js';
import { importOnnxFile } from '../../src/model/onnx-import.js';
import { loadInputFile } from '../../src/model/input.js';
import type { Network } from '../../src/model/ir.js';
import { epsError, incompleteNumbers, MAX_EPS, overflowError } from '../../src/server/numbers.js';
import { loadTypeDefs } from '../../src/server/schema.js';
import { fixture, MNIST_NORM } from '../helpers/fixtures.js';

const schema = buildSchema(loadTypeDefs());

async function run(network: Network, eps: number[]) {
  const x0 = loadInputFile(fixture('mnist_8.png'), network, MNIST_NORM);
  const backend = await createBackend('cpu', network);
  try {
    return await certify(network, x0, backend, { eps, global: true, radius: eps.length > 0 });
  } finally {
    await backend.dispose();
  }
}

describe('result completeness', () => {
  const mnist = importOnnxFile(fixture('mnist_lenet.onnx'));

  test('a healthy result is complete; a missing or infinite number is named by its path', async () => {
    const result = await run(mnist, [0.01]);
    expect(incompleteNumbers(schema, 'CertifyResult', result)).toEqual([]);
    expect(overflowError(schema, 'CertifyResult', result)).toBeNull();
    const broken = structuredClone(result);
    broken.local[0].bound = Infinity;
    broken.local[0].layers[2].bound = NaN;
    (broken as { margin: number | null }).margin = null;
    broken.logits[3] = -Infinity;
    broken.radius!.seconds = undefined as unknown as number;
    expect(incompleteNumbers(schema, 'CertifyResult', broken)).toEqual(['margin', 'logits.3', 'local.0.bound', 'local.0.layers.2.bound', 'radius.seconds']);
    const error = overflowError(schema, 'CertifyResult', broken)!;
    expect(error.code).toBe('NUMERIC_OVERFLOW');
    expect(error.message).toMatch(/^the computation left the range of floating point \(5 numbers missing or infinite, first CertifyResult.margin\)/);
    // A nullable Float may be null, never infinite.
    const nullable = structuredClone(result);
    nullable.local[0].layers[0].epsIn = null as unknown as number;
    expect(incompleteNumbers(schema, 'CertifyResult', nullable)).toEqual([]);
    nullable.local[0].layers[0].epsIn = Infinity;
    expect(incompleteNumbers(schema, 'CertifyResult', nullable)).toEqual(['local.0.layers.0.epsIn']);
  });

  test('eps 1e305 overflows the local bound: the computation stops with NUMERIC_OVERFLOW, and epsError refuses it up front', async () => {
    await expect(run(mnist, [1e305])).rejects.toMatchObject({ code: 'NUMERIC_OVERFLOW' });
    expect(epsError(1e305)).toBe(`eps must be at most ${MAX_EPS} (got 1e+305): larger radii overflow the bound's arithmetic`);
    expect(epsError(0.01)).toBeNull();
    expect(epsError(MAX_EPS)).toBeNull();
    expect(epsError(0)).toMatch(/finite and > 0/);
    expect(epsError(NaN)).toMatch(/finite and > 0/);
    const global = (await run(mnist, [])).global!.bound;
    expect(epsError(1e29, global)).toMatch(/times the model's global bound .* the global bound itself bounds L\(x0, eps\) at every eps$/);
    expect(epsError(1e20, global)).toBeNull();
  });

  test('weights of 1e25 overflow the global bound: the computation stops with NUMERIC_OVERFLOW, never a bound of 0', async () => {
    const huge = importOnnxFile(fixture('mnist_lenet.onnx'));
    for (const layer of huge.layers) if (layer.kind === 'conv' || layer.kind === 'dense') layer.weight.forEach((w, i, a) => (a[i] = w * 1e25));
    await expect(run(huge, [])).rejects.toMatchObject({ code: 'NUMERIC_OVERFLOW', message: expect.stringMatching(/^the computation left the range of floating point/) });
  });
});
