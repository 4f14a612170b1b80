/**
 * The `lower`, `attack` and `table` commands through commander: JSON shapes, seeds, and the exit
 * status rule (a bad input prints one line on stderr and sets exit status 2).
 */
import { lipcert } from '../helpers/cli.js';
import { figure7Csv, runTable, tableMarkdown } from '../../src/cli/table.js';

const MNIST = ['fixtures/mnist_lenet.onnx', '--input', 'fixtures/mnist_8.png', '--mean', '0.1307', '--std', '0.3081'];

describe('lipcert lower', () => {
  test('prints {"lower": [{eps, method, bound}, ...]} with --json, reproducibly for a seed', async () => {
    const args = ['lower', ...MNIST, '--eps', '0.001,0.01', '--samples', '20', '--restarts', '1', '--steps', '10', '--seed', '7', '--json'];
    const first = await lipcert(...args);
    expect(first.status).toBe(0);
    const result = JSON.parse(first.stdout);
    expect(result.lower.map((l: { eps: number; method: string }) => [l.eps, l.method])).toEqual([
      [0.001, 'gradient'],
      [0.001, 'random'],
      [0.01, 'gradient'],
      [0.01, 'random'],
    ]);
    for (const l of result.lower) {
      expect(l.kind).toBe('lower');
      expect(l.bound).toBeGreaterThan(0);
    }
    expect(result.seed).toBe(7);
    const second = JSON.parse((await lipcert(...args)).stdout);
    expect(second.lower.map((l: { bound: number }) => l.bound)).toEqual(result.lower.map((l: { bound: number }) => l.bound));
  });

  test.each([
    [['lower', ...MNIST, '--eps', '0,1'], /eps must be finite and > 0/],
    [['lower', ...MNIST], /--eps .* is required/],
    [['lower', 'fixtures/mnist_lenet.onnx', '--eps', '0.1'], /--input FILE is required/],
    [['lower', ...MNIST, '--eps', '0.1', '--restarts', '1.5'], /--restarts must be a positive integer/],
    [['lower', 'fixtures/missing.onnx', '--input', 'fixtures/mnist_8.png', '--eps', '0.1'], /cannot read model file/],
  ])('bad input: exit status 2 and one line on stderr (%#)', async (args, message) => {
    const { stdout, stderr, status } = await lipcert(...args);
    expect(status).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('lipcert attack', () => {
  test('prints {"attacks": [{method, perturbation, adversarialClass}, ...]} with --json', async () => {
    const { stdout, status } = await lipcert('attack', ...MNIST, '--methods', 'fgsm,pgd', '--steps', '10', '--tolerance', '0.05', '--json');
    expect(status).toBe(0);
    const result = JSON.parse(stdout);
    expect(result.class).toBe(8);
    expect(result.attacks.map((a: { method: string }) => a.method)).toEqual(['fgsm', 'pgd']);
    for (const a of result.attacks) {
      expect(a.perturbation).toBeGreaterThan(0);
      expect(a.adversarialClass).not.toBe(8);
    }
  });

  test('prints a readable table without --json', async () => {
    const { stdout, status } = await lipcert('attack', ...MNIST, '--methods', 'fgsm');
    expect(status).toBe(0);
    expect(stdout).toMatch(/^class 8 /);
    expect(stdout).toMatch(/fgsm\s+\d+\.\d+\s+\d/);
  });

  test.each([
    [['attack', ...MNIST, '--methods', 'fgsm,cw'], /unknown attack 'cw'/],
    [['attack', 'fixtures/mnist_lenet.onnx', '--input', 'fixtures/cifar10_net_x0.npy'], /the model expects \[1,1,28,28\]/],
    [['attack', ...MNIST, '--tolerance', 'abc'], /--tolerance must be a number/],
  ])('bad input: exit status 2 and one line on stderr (%#)', async (args, message) => {
    const { stderr, status } = await lipcert(...args);
    expect(status).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('lipcert table', () => {
  test('Table III and Fig. 7 on MNIST image 8: attacks above the local radius, the local radius above the global', async () => {
    const result = await runTable({ images: ['8'], eps: [0.001, 0.1], samples: 10, restarts: 1, steps: 10, attackSteps: 10 });
    expect(result.table).toHaveLength(1);
    const [row] = result.table;
    expect(row.globalRadius).toBeLessThan(row.localRadius);
    for (const a of Object.values(row.attacks)) expect(a.perturbation!).toBeGreaterThan(row.localRadius);
    expect(result.figure7.map((r) => r.eps)).toEqual([0.001, 0.1]);
    for (const r of result.figure7) {
      expect(r.randomLower).toBeLessThanOrEqual(r.local);
      expect(r.gradientLower).toBeLessThanOrEqual(r.local);
      expect(r.local).toBeLessThanOrEqual(r.global);
    }
    const markdown = tableMarkdown(result);
    expect(markdown).toContain('|  | MNIST "8" |');
    expect(markdown).toMatch(/\| upper bound: PGD \(L2\) \| \d/);
    expect(markdown).toMatch(/\| lower bound: local \| 0\.05/);
    const csv = figure7Csv(result).trim().split('\n');
    expect(csv[0]).toBe('model,image,eps,global,local,gradient_lower,random_lower');
    expect(csv).toHaveLength(3);
  });

  test('rejects an unknown image with exit status 2', async () => {
    const { stderr, status } = await lipcert('table', '--images', '8,cat');
    expect(status).toBe(2);
    expect(stderr).toMatch(/unknown fixture image 'cat'/);
  });
});
