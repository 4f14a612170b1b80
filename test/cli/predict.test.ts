/**
 * `lipcert predict`: the forward pass only (class, margin, logits) through the checked import, on a
 * torch export against torch's own logits and on the paper's MNIST fixture against its stored logits;
 * a refused model is one line on stderr and exit status 2.
 */
import fs from 'node:fs';
import { lipcert } from '../helpers/cli.js';
import { fixture } from '../helpers/fixtures.js';

const TORCH_MODEL = 'test/model/fixtures/padded_avgpool_op9';

function expectClose(ours: number[], expected: number[], relative: number) {
  expect(ours).toHaveLength(expected.length);
  const scale = Math.max(...expected.map(Math.abs));
  ours.forEach((v, i) => expect(Math.abs(v - expected[i])).toBeLessThanOrEqual(relative * scale));
}

test('--json prints class, margin and logits: torch\'s logits for a torch.onnx.export model', async () => {
  const { status, stdout, stderr } = await lipcert('predict', `${TORCH_MODEL}.onnx`, '--input', `${TORCH_MODEL}.json`, '--json');
  expect(stderr).toBe('');
  expect(status).toBe(0);
  const result = JSON.parse(stdout);
  const torch: number[] = JSON.parse(fs.readFileSync(`${TORCH_MODEL}.json`, 'utf8')).torchLogits;
  expectClose(result.logits, torch, 1e-5);
  const sorted = [...result.logits].sort((a, b) => b - a);
  expect(result.class).toBe(torch.indexOf(Math.max(...torch)));
  expect(result.margin).toBeCloseTo(sorted[0] - sorted[1], 10);
  expect(result.model).toBe('padded_avgpool_op9');
});

test('a PNG with --mean/--std on the MNIST fixture: digit 8 and the stored logits; human-readable without --json', async () => {
  const args = ['predict', fixture('mnist_lenet.onnx'), '--input', fixture('mnist_8.png'), '--mean', '0.1307', '--std', '0.3081', '--backend', 'cpu'];
  const json = await lipcert(...args, '--json');
  expect(json.status).toBe(0);
  const result = JSON.parse(json.stdout);
  expect(result.class).toBe(8);
  expectClose(result.logits, JSON.parse(fs.readFileSync(fixture('mnist_lenet_x0.json'), 'utf8')).logits, 1e-5);
  const text = await lipcert(...args);
  expect(text.status).toBe(0);
  expect(text.stdout).toMatch(/^class 8, margin 51\.7\d+ \(top-1 minus top-2 logit\)\nlogits: \[-28\.89/);
});

test('a refused model: one line on stderr, exit status 2', async () => {
  const { status, stdout, stderr } = await lipcert('predict', 'test/model/fixtures/softmax_mlp_op13.onnx', '--input', 'test/model/fixtures/softmax_mlp_op13.json');
  expect(status).toBe(2);
  expect(stdout).toBe('');
  expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(/^lipcert: error: .*\/1\/Softmax.*export the model without its final Softmax and certify the logits/)]);
});

test('a zoo model needs no check and takes a random input', async () => {
  const { status, stdout } = await lipcert('predict', 'zoo:mnist-lenet:3', '--input', 'random:1', '--json');
  expect(status).toBe(0);
  const result = JSON.parse(stdout);
  expect(result.logits).toHaveLength(10);
  expect(result.logits.every(Number.isFinite)).toBe(true);
});
