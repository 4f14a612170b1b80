/**
 * The command line, run in-process: the JSON that scripts rely on, the human report, and one clear
 * line with exit status 2 for every kind of bad input.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lipcert } from './helpers/cli.js';
import { fixture, reference } from './helpers/fixtures.js';

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { status, stdout, stderr } = await lipcert(...args);
  return { code: status, stdout, stderr };
}

const mnist = fixture('mnist_lenet.onnx');
const mnistArgs = ['--input', fixture('mnist_8.png'), '--mean', '0.1307', '--std', '0.3081'];
/** The paper's method with Lanczos estimates: what reference.json holds. */
const paper = ['--method', 'paper', '--certify', 'estimate'];

test('--json prints the documented fields', async () => {
  const { code, stdout, stderr } = await run(['bound', mnist, ...mnistArgs, ...paper, '--eps', '0.001,0.1', '--radius', '--json']);
  expect(stderr).toBe('');
  expect(code).toBe(0);
  const result = JSON.parse(stdout);
  const expected = reference.models.mnist_lenet.images['8'];
  expect(result.class).toBe(8);
  expect(result.margin).toBeCloseTo(expected.margin_top2, 3);
  expect(Math.abs(result.global.bound / expected.global_bound - 1)).toBeLessThan(1e-3);
  expect(result.local.map((l: { eps: number }) => l.eps)).toEqual([0.001, 0.1]);
  for (const l of result.local) {
    expect(l.seconds).toBeGreaterThan(0);
    expect(l.layers).toHaveLength(8);
    expect(l.layers[0]).toEqual(expect.objectContaining({ index: 0, kind: 'conv', inputShape: [1, 28, 28], outputShape: [6, 24, 24], epsIn: l.eps }));
    expect(l.layers[0].lambdaZero + l.layers[0].lambdaPartial + l.layers[0].lambdaOne).toBe(6 * 24 * 24);
    expect(l.layers[0].spectral).toEqual(expect.objectContaining({ iterations: expect.any(Number), relativeChange: expect.any(Number) }));
  }
  expect(Math.abs(result.local[0].bound / expected.local_bound_converged['0.001'] - 1)).toBeLessThan(1e-3);
  expect(Math.abs(result.radius.local / expected.certified_radius_local - 1)).toBeLessThan(5e-3);
  expect(result.radius.global).toBeCloseTo(expected.certified_radius_global, 6);
  expect(result.radius.evaluations).toBeGreaterThan(0);
  expect(result.backend).toBe('cpu');
  expect(result.seconds).toBeGreaterThan(0);
});

test('human output: per-layer table and totals; .npy and .json inputs', async () => {
  const npy = await run(['bound', mnist, ...paper, '--input', fixture('mnist_lenet_x0.npy'), '--eps', '0.01']);
  expect(npy.code).toBe(0);
  expect(npy.stdout).toMatch(/global bound: 10395\d/);
  expect(npy.stdout).toMatch(/local bound at eps 0\.01: 396\.2/);
  expect(npy.stdout).toMatch(/conv\+relu\s+\[1,28,28\]→\[6,24,24\]/);
  const json = await run(['bound', mnist, ...paper, '--input', fixture('mnist_lenet_x0.json'), '--eps', '0.01', '--json']);
  expect(json.code).toBe(0);
  expect(JSON.parse(json.stdout).local[0].bound).toBeCloseTo(JSON.parse((await run(['bound', mnist, ...paper, '--input', fixture('mnist_lenet_x0.npy'), '--eps', '0.01', '--json'])).stdout).local[0].bound, 6);
});

test('the default is the tight method with certified norms, each layer naming its certificate', async () => {
  const { code, stdout } = await run(['bound', mnist, ...mnistArgs, '--eps', '0.001', '--seed', '7', '--json']);
  expect(code).toBe(0);
  const result = JSON.parse(stdout);
  const local = result.local[0];
  expect(local.method).toBe('tight');
  expect(local.quality).toBe('upper');
  expect(result.global.quality).toBe('upper');
  for (const l of local.layers) {
    if (l.spectral && l.spectral.quality !== 'exact') expect(l.certificate).toMatch(/^(deterministic:(gram|collatz-wielandt)|probabilistic:kw\(delta=0\.001\))$/);
  }
  // Union bound: the failure probability is the sum of the per-norm deltas.
  const deltas = local.layers.reduce((a: number, l: { spectral?: { failureProbability?: number } }) => a + (l.spectral?.failureProbability ?? 0), 0);
  expect(local.failureProbability).toBeGreaterThanOrEqual(deltas);
  expect(local.bound).toBeLessThan(reference.models.mnist_lenet.images['8'].local_bound_converged['0.001']);
  const human = await run(['bound', mnist, ...mnistArgs, '--eps', '0.001', '--certify', 'deterministic']);
  expect(human.code).toBe(0);
  expect(human.stdout).toMatch(/local bound at eps 0\.001: .* \[guaranteed upper bound\]/);
  expect(human.stdout).toMatch(/deterministic:collatz-wielandt/);
});

test('bound --lower --attacks: one analysis with lower bounds at each eps and the attacks, each saying what it is', async () => {
  const args = ['bound', mnist, ...mnistArgs, ...paper, '--eps', '0.001,0.01', '--lower', '--samples', '20', '--restarts', '1', '--steps', '10', '--attacks', 'pgd,fgsm', '--attack-steps', '10', '--seed', '3'];
  const { code, stdout, stderr } = await run([...args, '--json']);
  expect(stderr).toBe('');
  expect(code).toBe(0);
  const result = JSON.parse(stdout);
  expect([result.method, result.certificate, result.seed]).toEqual(['paper', 'estimate', 3]);
  expect(result.failureProbability).toBeUndefined(); // estimates carry no failure probability
  expect(result.lowerBounds.map((l: { eps: number; method: string }) => [l.eps, l.method])).toEqual([
    [0.001, 'gradient'],
    [0.001, 'random'],
    [0.01, 'gradient'],
    [0.01, 'random'],
  ]);
  for (const l of result.lowerBounds) {
    expect(l.kind).toBe('lower');
    expect(l.bound).toBeLessThanOrEqual(result.local.find((b: { eps: number }) => b.eps === l.eps).bound);
  }
  expect(result.attacks.map((a: { method: string; kind: string }) => [a.method, a.kind])).toEqual([
    ['pgd', 'upper'],
    ['fgsm', 'upper'],
  ]);
  // The search is seeded: the same command finds the same lower bounds.
  const again = JSON.parse((await run([...args, '--json'])).stdout);
  expect(again.lowerBounds.map((l: { bound: number }) => l.bound)).toEqual(result.lowerBounds.map((l: { bound: number }) => l.bound));
  const human = await run(args);
  expect(human.stdout).toMatch(/lower bounds on L\(x0, eps\) found by search \(not certified/);
  expect(human.stdout).toMatch(/attacks: smallest L2 perturbation found/);
  expect(human.stdout).toMatch(/^method paper \(the paper's Algorithm 1 and Proposition 6\), spectral norms: estimate$/m);
});

describe('bad input: one line on stderr, exit status 2, no stack trace', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lipcert-cli-'));
  const wrongShape = path.join(tmp, 'wrong.json');
  fs.writeFileSync(wrongShape, JSON.stringify({ shape: [1, 1, 10, 10], data: new Array(100).fill(0) }));
  const notOnnx = path.join(tmp, 'bad.onnx');
  fs.writeFileSync(notOnnx, 'not a model');

  test.each([
    ['a missing model file', ['bound', '/nonexistent.onnx', ...mnistArgs, '--eps', '0.1'], /cannot read model file/],
    ['a missing input file', ['bound', mnist, '--input', '/nonexistent.png', '--eps', '0.1'], /cannot read input file/],
    ['a wrong input shape', ['bound', mnist, '--input', wrongShape, '--eps', '0.1'], /shape \[1,1,10,10\], the model expects \[1,1,28,28\]/],
    ['eps <= 0', ['bound', mnist, ...mnistArgs, '--eps', '0.1,0'], /--eps values must be > 0/],
    ['eps not finite', ['bound', mnist, ...mnistArgs, '--eps', 'inf'], /--eps must be a comma-separated list of numbers/],
    ['an unknown flag', ['bound', mnist, ...mnistArgs, '--frobnicate'], /unknown option '--frobnicate'/],
    ['a rejected model', ['bound', notOnnx, ...mnistArgs, '--eps', '0.1'], /not a valid ONNX file/],
    ['a bad --certify', ['bound', mnist, ...mnistArgs, '--eps', '0.1', '--certify', 'probabilistic:2'], /--certify must be/],
    ['an unknown --method', ['bound', mnist, ...mnistArgs, '--eps', '0.1', '--method', 'magic'], /argument 'magic' is invalid/],
    ['a wrong PNG size', ['bound', fixture('cifar10_net.onnx'), ...mnistArgs, '--eps', '0.1'], /the PNG is 28×28, the model expects 32×32/],
    ['an unknown attack', ['bound', mnist, ...mnistArgs, '--eps', '0.1', '--attacks', 'pgd,cw'], /unknown attack 'cw'/],
    ['a search budget without --lower', ['bound', mnist, ...mnistArgs, '--eps', '0.1', '--samples', '10'], /budgets of --lower: give --lower too/],
    ['--lower without eps', ['bound', mnist, ...mnistArgs, '--lower'], /lower bounds are searched at the eps of the analysis/],
  ])('%s', async (_label, args, message) => {
    const { code, stdout, stderr } = await run(args);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).not.toMatch(/\bat .*\.(ts|js):\d+/);
  });
});

test('zoo models, seeded random inputs and export through the CLI', async () => {
  const first = await run(['bound', 'zoo:mnist-lenet:7', '--input', 'random:3', '--eps', '0.01', '--backend', 'cpu', '--seed', '1', '--json']);
  expect(first.code).toBe(0);
  const again = await run(['bound', 'zoo:mnist-lenet:7', '--input', 'random:3', '--eps', '0.01', '--backend', 'cpu', '--seed', '1', '--json']);
  expect(JSON.parse(again.stdout).logits).toEqual(JSON.parse(first.stdout).logits); // seeded: reproducible
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lipcert-export-')), 'lenet.onnx');
  expect((await run(['export', 'zoo:mnist-lenet:7', out])).code).toBe(0);
  const imported = await run(['bound', out, '--input', 'random:3', '--eps', '0.01', '--backend', 'cpu', '--seed', '1', '--json']);
  expect(imported.code).toBe(0);
  expect(JSON.parse(imported.stdout).local[0].bound).toBeCloseTo(JSON.parse(first.stdout).local[0].bound, 6);
  expect((await run(['bound', 'zoo:resnet50', '--input', 'random', '--eps', '0.01'])).code).toBe(2);
});
