/**
 * What the importer says when it refuses an op: why, and what the user can do instead. Kept apart
 * from the op handlers so that every refusal reads the same way and the advice lives in one place.
 * The bounds need monotone activations (Theorem 1's λ generalised, docs/graphs.md §3): ReLU,
 * LeakyReLU, PReLU, Clip, Sigmoid and Tanh are supported; non-monotone ones are refused.
 */
import type { GraphProto, NodeProto } from 'onnx-buf';

const SOFTMAX = (op: string) =>
  `${op} turns logits into probabilities, and lipcert certifies the logits (a different function with a different Lipschitz constant; the top-1 class is the same): export the model without its final ${op} and certify the logits`;

const NOT_YET = (what: string) => () =>
  `${what} is not supported yet: lipcert bounds ReLU, LeakyRelu, PRelu, Clip (ReLU6, HardTanh), Sigmoid and Tanh; export the model with one of them`;

const NON_MONOTONE = (what: string) => () =>
  `${what} is not monotone, so the slope bounds the method rests on (Theorem 1 and its generalisation to monotone activations, docs/graphs.md) do not hold; networks with it are refused`;

/** Advice per ONNX op type that the importer does not handle. */
const OP_ADVICE: Record<string, (op: string) => string> = {
  Softmax: SOFTMAX,
  LogSoftmax: SOFTMAX,
  HardSigmoid: NOT_YET('HardSigmoid'),
  Elu: NOT_YET('Elu'),
  Selu: NOT_YET('Selu'),
  Celu: NOT_YET('Celu'),
  Softplus: NOT_YET('Softplus'),
  Softsign: NOT_YET('Softsign'),
  ThresholdedRelu: NOT_YET('ThresholdedRelu'),
  Gelu: NON_MONOTONE('GELU'),
  Erf: NON_MONOTONE('GELU (exported as x·(1 + erf(x/√2))/2)'),
  HardSwish: NON_MONOTONE('HardSwish'),
  Mish: NON_MONOTONE('Mish'),
  Split: (op) => `${op} is not supported: give each branch its own convolution on the whole tensor`,
  LRN: () => 'LRN (local response normalisation) is not supported: it is neither an affine map nor an activation; export the model without it',
  Resize: (op) => `${op} is not supported yet`,
  Upsample: (op) => `${op} is not supported yet`,
};

/** Why `opType` is refused and what to do, or undefined for an op with nothing particular to say. */
export function opAdvice(opType: string): string | undefined {
  return OP_ADVICE[opType]?.(opType);
}

const NON_MONOTONE_OPS = new Set(['Gelu', 'Erf', 'HardSwish', 'Mish']);

/**
 * A non-monotone activation anywhere in the graph: GELU (an op, or x·(1 + erf(x/√2))/2 before
 * opset 20), HardSwish, Mish, and the spellings torch.onnx.export uses for SiLU/Swish (x·Sigmoid(x))
 * and for HardSwish before opset 14 (x·HardSigmoid(x)). Returns the refusal and the node it
 * concerns, or null. Run before the graph walk, whose message about a product of two computed
 * tensors would hide the reason.
 */
export function nonMonotoneActivation(graph: GraphProto): { message: string; node: NodeProto } | null {
  const producer = new Map<string, NodeProto>();
  for (const node of graph.node) for (const o of node.output) producer.set(o, node);
  for (const node of graph.node) {
    if (NON_MONOTONE_OPS.has(node.opType) && (!node.domain || node.domain === 'ai.onnx')) return { message: opAdvice(node.opType)!, node };
    if (node.opType !== 'Mul' || node.input.length !== 2) continue;
    for (const [gate, other] of [[node.input[0], node.input[1]], [node.input[1], node.input[0]]]) {
      const p = producer.get(gate);
      if (p && p.input[0] === other && p.opType === 'Sigmoid') return { message: NON_MONOTONE('SiLU/Swish (x·sigmoid(x))')(), node };
      if (p && p.input[0] === other && p.opType === 'HardSigmoid') return { message: NON_MONOTONE('HardSwish (x·hardsigmoid(x))')(), node };
    }
  }
  return null;
}
