/**
 * Network IR → ONNX, in the form torch.onnx.export gives the same layers (opset 13): Conv, Gemm with
 * transB=1, MaxPool, AveragePool, Flatten, BatchNormalization for an unfolded scale, Add (Sum for more
 * than two inputs), Concat on the channel axis, and the activations Relu, LeakyRelu, PRelu, Clip
 * (bounds as inputs), Sigmoid and Tanh; each tensor named after the layer that writes it. Weights are
 * raw_data views over the IR's arrays (no copy). A model whose weights would take the protobuf past
 * its 2 GB limit stores them as external data in one file beside it (`<file>.data`), which
 * importOnnxFile reads back.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TensorProto_DataLocation, type NodeProto, type TensorProto } from 'onnx-buf';
import { invariant } from '../errors.js';
import { activationOf, type AnyActivation } from './activations.js';
import { inputsOf, type Network } from './ir.js';
import { externalDataEntries, floatTensor, modelBytes, node, valueInfo } from './onnx-builder.js';

/** Protobuf messages cannot exceed 2 GiB; keep a margin for the graph itself. */
export const EXTERNAL_DATA_THRESHOLD = 2 ** 31 - 2 ** 26;

/** The nodes and initializers of the network's graph (input 'input', output 'logits'). */
function graphOf(network: Network): { nodes: NodeProto[]; initializers: TensorProto[] } {
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  const last = network.layers.length - 1;
  const outputs: string[] = [];
  const tensorOf = (j: number) => (j < 0 ? network.inputName || 'input' : outputs[j]);
  for (const [index, layer] of network.layers.entries()) {
    const id = `l${index}`;
    const activation = activationOf(layer);
    const folded = activation && layer.kind !== 'relu' && layer.kind !== 'activation';
    let current = inputsOf(network, index).map(tensorOf);
    // Each op reads `current` (plus its initializers); the last op of the layer writes its output.
    const emit = (opType: string, inputs: string[], attributes: Parameters<typeof node>[3], name: string, isLastOp: boolean) => {
      const output = isLastOp ? (index === last ? 'logits' : `${id}_out`) : `${name}_out`;
      nodes.push(node(opType, [...current, ...inputs], [output], attributes, name));
      current = [output];
    };
    switch (layer.kind) {
      case 'conv': {
        const [k] = layer.outputShape;
        initializers.push(floatTensor(`${id}.weight`, [k, layer.inputShape[0] / layer.group, ...layer.kernel], layer.weight));
        initializers.push(floatTensor(`${id}.bias`, [k], layer.bias));
        emit('Conv', [`${id}.weight`, `${id}.bias`], {
          kernel_shape: layer.kernel,
          strides: layer.strides,
          pads: layer.pads,
          dilations: layer.dilations,
          group: layer.group,
        }, `${id}_Conv`, !folded);
        break;
      }
      case 'dense':
        initializers.push(floatTensor(`${id}.weight`, [layer.outputShape[0], layer.inputShape[0]], layer.weight));
        initializers.push(floatTensor(`${id}.bias`, [layer.outputShape[0]], layer.bias));
        emit('Gemm', [`${id}.weight`, `${id}.bias`], { alpha: { float: 1 }, beta: { float: 1 }, transB: 1 }, `${id}_Gemm`, !folded);
        break;
      case 'avgpool':
        emit('AveragePool', [], {
          kernel_shape: layer.kernel,
          strides: layer.strides,
          pads: layer.pads,
          count_include_pad: layer.countIncludePad ? 1 : 0,
          ceil_mode: 0,
        }, `${id}_AveragePool`, !folded);
        break;
      case 'scale': {
        const channels = layer.scale.length;
        initializers.push(
          floatTensor(`${id}.scale`, [channels], layer.scale),
          floatTensor(`${id}.shift`, [channels], layer.shift),
          floatTensor(`${id}.mean`, [channels], new Float32Array(channels)),
          floatTensor(`${id}.var`, [channels], new Float32Array(channels).fill(1)),
        );
        emit('BatchNormalization', [`${id}.scale`, `${id}.shift`, `${id}.mean`, `${id}.var`], { epsilon: { float: 0 } }, `${id}_BatchNormalization`, !folded);
        break;
      }
      case 'maxpool':
        emit('MaxPool', [], { kernel_shape: layer.kernel, strides: layer.strides, pads: layer.pads, dilations: layer.dilations, ceil_mode: 0 }, `${id}_MaxPool`, true);
        break;
      case 'flatten':
        emit('Flatten', [], { axis: 1 }, `${id}_Flatten`, true);
        break;
      case 'add':
        emit(current.length === 2 ? 'Add' : 'Sum', [], {}, `${id}_Add`, !folded);
        break;
      case 'concat':
        emit('Concat', [], { axis: 1 }, `${id}_Concat`, true);
        break;
      case 'relu':
      case 'activation':
        break;
      default:
        invariant(false, `export: unexpected layer kind ${(layer as { kind: string }).kind}`);
    }
    if (activation) emitActivation(activation, layer.outputShape, id, initializers, (op, inputs, attributes) => emit(op, inputs, attributes, `${id}_${op}`, true));
    outputs.push(current[0]);
  }
  invariant(outputs.at(-1) === 'logits', 'export: the last layer must write the output');
  return { nodes, initializers };
}

/** The ONNX op of an activation, as torch.onnx.export writes it (Clip bounds as inputs, opset 13). */
function emitActivation(
  activation: AnyActivation,
  shape: number[],
  id: string,
  initializers: TensorProto[],
  emit: (op: string, inputs: string[], attributes: Parameters<typeof node>[3]) => void,
) {
  switch (activation.kind) {
    case 'relu':
      return emit('Relu', [], {});
    case 'leakyrelu':
      return emit('LeakyRelu', [], { alpha: { float: activation.alpha } });
    case 'prelu': {
      // One slope per channel, broadcast over the spatial axes of an image.
      const dims = shape.length === 3 ? [activation.alpha.length, 1, 1] : [activation.alpha.length];
      initializers.push(floatTensor(`${id}.slope`, dims, activation.alpha));
      return emit('PRelu', [`${id}.slope`], {});
    }
    case 'clip': {
      const inputs = [Number.isFinite(activation.min) ? `${id}.min` : '', ...(Number.isFinite(activation.max) ? [`${id}.max`] : [])];
      if (Number.isFinite(activation.min)) initializers.push(floatTensor(`${id}.min`, [], [activation.min]));
      if (Number.isFinite(activation.max)) initializers.push(floatTensor(`${id}.max`, [], [activation.max]));
      return emit('Clip', inputs, {});
    }
    case 'sigmoid':
      return emit('Sigmoid', [], {});
    case 'tanh':
      return emit('Tanh', [], {});
  }
}

function modelOf(network: Network, nodes: NodeProto[], initializers: TensorProto[]): Uint8Array {
  return modelBytes({
    name: network.name,
    nodes,
    initializers,
    inputs: [valueInfo(network.inputName || 'input', [1, ...network.inputShape])],
    outputs: [valueInfo('logits', [1, ...network.outputShape])],
  });
}

/** The network as ONNX bytes, weights inline (it must fit the 2 GiB protobuf limit). */
export function exportOnnx(network: Network): Uint8Array {
  const { nodes, initializers } = graphOf(network);
  return modelOf(network, nodes, initializers);
}

export interface ExportSummary {
  file: string;
  /** The external data file, when the weights were stored outside the model. */
  externalData: string | null;
  bytes: number;
  parameters: number;
}

/**
 * Write the network to `file`. Weights go to `<file>.data` (external data) when they exceed
 * `externalThreshold` bytes, else inline.
 */
export function exportOnnxFile(network: Network, file: string, externalThreshold = EXTERNAL_DATA_THRESHOLD): ExportSummary {
  const { nodes, initializers } = graphOf(network);
  const weightBytes = initializers.reduce((n, t) => n + t.rawData.byteLength, 0);
  const parameters = weightBytes / 4;
  if (weightBytes <= externalThreshold) {
    const bytes = modelOf(network, nodes, initializers);
    fs.writeFileSync(file, bytes);
    return { file, externalData: null, bytes: bytes.byteLength, parameters };
  }
  const dataFile = `${file}.data`;
  const location = path.basename(dataFile);
  const fd = fs.openSync(dataFile, 'w');
  let offset = 0;
  try {
    for (const t of initializers) {
      const raw = t.rawData;
      fs.writeSync(fd, raw, 0, raw.byteLength, offset);
      t.externalData = externalDataEntries(location, offset, raw.byteLength);
      t.dataLocation = TensorProto_DataLocation.EXTERNAL;
      t.rawData = new Uint8Array(0);
      offset += raw.byteLength;
      offset = Math.ceil(offset / 64) * 64; // keep every tensor aligned for readers that map the file
    }
  } finally {
    fs.closeSync(fd);
  }
  const bytes = modelOf(network, nodes, initializers);
  fs.writeFileSync(file, bytes);
  return { file, externalData: dataFile, bytes: bytes.byteLength + offset, parameters };
}
