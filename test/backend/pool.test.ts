/**
 * BackendPool on real CPU backends: the same network's next analysis reuses the idle backend (its
 * sessions), another network gets its own after the idle one is disposed, an analysis that throws
 * does not give its backend back, and the numbers are those of a fresh backend.
 */
import { readFileSync } from 'node:fs';
import { BackendPool } from '../../src/backend/pool.js';
import { createBackend } from '../../src/backend/select.js';
import type { Backend } from '../../src/backend/backend.js';
import { certify } from '../../src/bounds/certify.js';
import { importOnnx } from '../../src/model/onnx-import.js';
import { fixture } from '../helpers/fixtures.js';

const mnist = importOnnx(readFileSync(fixture('mnist_lenet.onnx')), 'mnist');
const fashion = importOnnx(readFileSync(fixture('fashion_cnn.onnx')), 'fashion');
const x = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed + i));
const bound = (backend: Backend, network = mnist) => certify(network, x(784, 1), backend, { eps: [0.01], method: 'paper', certificate: 'estimate' }).then((r) => r.local[0].bound);

describe('BackendPool', () => {
  test('reuses an idle backend of the same network, with the numbers of a fresh one', async () => {
    const pool = new BackendPool(1);
    const seen: Backend[] = [];
    const first = await pool.use(mnist, 'cpu', (b) => (seen.push(b), bound(b)));
    const second = await pool.use(mnist, 'cpu', (b) => (seen.push(b), bound(b)));
    expect(seen[1]).toBe(seen[0]);
    expect(pool.created).toBe(1);
    const fresh = await createBackend('cpu');
    expect(second).toBe(first);
    expect(second).toBe(await bound(fresh));
    await fresh.dispose();
    await pool.dispose();
  });

  test('serves one analysis at a time: two at once get two backends', async () => {
    const pool = new BackendPool(2);
    const seen: Backend[] = [];
    await Promise.all([pool.use(mnist, 'cpu', (b) => (seen.push(b), bound(b))), pool.use(mnist, 'cpu', (b) => (seen.push(b), bound(b)))]);
    expect(seen[0]).not.toBe(seen[1]);
    expect(pool.created).toBe(2);
    await pool.dispose();
  });

  test('another network gets its own backend; a backend whose analysis threw is not reused', async () => {
    const pool = new BackendPool(1);
    const seen: Backend[] = [];
    await pool.use(mnist, 'cpu', (b) => (seen.push(b), bound(b)));
    await pool.use(fashion, 'cpu', (b) => (seen.push(b), bound(b, fashion)));
    expect(seen[1]).not.toBe(seen[0]);
    await expect(pool.use(fashion, 'cpu', async (b) => (seen.push(b), Promise.reject(new Error('boom'))))).rejects.toThrow('boom');
    expect(seen[2]).toBe(seen[1]);
    await pool.use(fashion, 'cpu', (b) => (seen.push(b), bound(b, fashion)));
    expect(seen[3]).not.toBe(seen[2]);
    expect(pool.created).toBe(3);
    await pool.dispose();
  });
});
