/**
 * What the importer says when it refuses an op: why, and what the user can do instead. Kept apart
 * from the op handlers so that every refusal reads the same way and the advice lives in one place.
 * The bounds of Avant & Morgansen need piecewise-linear monotone activations with slopes in [0, 1]
 * (Theorem 1's λ); ReLU is the one supported today.
 */
import type { GraphProto, NodeProto } from 'onnx-buf';

export const BRANCHING =
  'residual and branching graphs (a tensor read by two layers, Add of two branches, Concat) are not supported yet: the network must be a chain of layers';

const SOFTMAX = (op: string) =>
  `${op} turns logits into probabilities, and lipcert certifies the logits (a different function with a different Lipschitz constant; the top-1 class is the same): export the model without its final ${op} and certify the logits`;

const NOT_YET = (what: string) => () => `${what} is not supported yet: ReLU is the only activation lipcert can bound today`;

const NON_MONOTONE = (what: string) => () =>
  `${what} is not monotone, so the slope bounds the method rests on (Theorem 1: every unit's slope in [0, 1]) do not hold; networks with it are refused`;

const BRANCHING_OP = (op: string) => `${op}: ${BRANCHING}`;

/** Advice per ONNX op type that the importer does not handle. */
const OP_ADVICE: Record<string, (op: string) => string> = {
  Softmax: SOFTMAX,
  LogSoftmax: SOFTMAX,
  Clip: NOT_YET('Clip (ReLU6 is exported as Clip(0, 6), HardTanh as Clip(−1, 1))'),
  LeakyRelu: NOT_YET('LeakyRelu'),
  PRelu: NOT_YET('PRelu'),
  Sigmoid: NOT_YET('Sigmoid'),
  HardSigmoid: NOT_YET('HardSigmoid'),
  Tanh: NOT_YET('Tanh'),
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
  Concat: BRANCHING_OP,
  Sum: BRANCHING_OP,
  Split: BRANCHING_OP,
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
 * concerns, or null. Run before the chain walk, whose "feeds two nodes" message would hide the reason.
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
