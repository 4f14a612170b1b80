/**
 * The model page's graph gutter (web/src/graph.ts): lanes for every read other than the layer
 * above, reused once free; a chain draws nothing; what each layer reads, in words.
 */
import { graphGutter, readsLabel } from '../../web/src/graph.js';
import { buildNetwork, resnet18 } from '../../src/model/zoo/index.js';
import { inputsOf } from '../../src/model/ir.js';

const wired = (inputs: number[][]) => inputs.map((i, index) => ({ index, inputs: i }));

test('a chain has no lanes', () => {
  expect(graphGutter(wired([[-1], [0], [1]]))).toEqual(['', '', '']);
});

test('a residual block, a Fire module reading its squeeze twice, and the network input read again', () => {
  // 0 conv, 1 conv, 2 add(0, 1) — the shortcut 0 → 2 passes row 1.
  expect(graphGutter(wired([[-1], [0], [0, 1]]))).toEqual(['╮', '│', '╯']);
  // 0 squeeze, 1 e1(0), 2 e3(0), 3 concat(1, 2), 4 concat(3, input): lane 0 carries the input from
  // the top to row 4, lane 1 the squeeze output to e3, lane 2 e1's output past e3 to the concat.
  expect(graphGutter(wired([[-1], [0], [0], [1, 2], [3, -1]]))).toEqual(['│╮ ', '││╮', '│╯│', '│ ╯', '╯  ']);
});

test('ResNet-18 needs two lanes (a block’s shortcut, and a projection reading the block input)', () => {
  const network = buildNetwork(resnet18({ inputSize: 32, widths: [2, 2, 2, 2] }), 0, { initialise: false });
  const gutter = graphGutter(network.layers.map((l, index) => ({ index, inputs: inputsOf(network, index) })));
  expect(Math.max(...gutter.map((g) => g.length))).toBe(2);
  const addRows = network.layers.flatMap((l, i) => (l.kind === 'add' ? [i] : []));
  for (const row of addRows) expect(gutter[row]).toMatch(/╯/);
});

test('what a layer reads', () => {
  expect(readsLabel({ index: 3, kind: 'conv', inputs: [2] })).toBe('');
  expect(readsLabel({ index: 3, kind: 'add', inputs: [2, 0] })).toBe('#2 + #0');
  expect(readsLabel({ index: 4, kind: 'concat', inputs: [3, -1] })).toBe('#3 ‖ input');
  expect(readsLabel({ index: 5, kind: 'conv', inputs: [1] })).toBe('#1');
});
