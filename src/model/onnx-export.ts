/**
 * Network IR → ONNX, in the form torch.onnx.export gives the same layers (opset 13): Conv, Gemm with
 * transB=1, Relu, MaxPool, AveragePool, Flatten, BatchNormalization for an unfolded scale. Weights are
 * raw_data views over the IR's arrays (no copy). A model whose weights would take the protobuf past
 * its 2 GB limit stores them as external data in one file beside it (`<file>.data`), which
 * importOnnxFile reads back.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TensorProto_DataLocation, type NodeProto, type TensorProto } from 'onnx-buf';
import { invariant } from '../errors.js';
import type { Network } from './ir.js';
import { externalDataEntries, floatTensor, modelBytes, node, valueInfo } from './onnx-builder.js';

/** Protobuf messages cannot exceed 2 GiB; keep a margin for the graph itself. */
export const EXTERNAL_DATA_THRESHOLD = 2 ** 31 - 2 ** 26;

/** The nodes and initializers of the network's graph (input 'input', output 'logits'). */
function graphOf(network: Network): { nodes: NodeProto[]; initializers: TensorProto[] } {
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  let current = network.inputName || 'input';
  const last = network.layers.length - 1;
  const emit = (opType: string, inputs: string[], attributes: Parameters<typeof node>[3], name: string, isLast: boolean) => {
    const output = isLast ? 'logits' : `${name}_out`;
    nodes.push(node(opType, [current, ...inputs], [output], attributes, name));
    current = output;
  };
  for (const [index, layer] of network.layers.entries()) {
    const id = `l${index}`;
    const isLast = index === last;
    const withRelu = 'relu' in layer && layer.relu;
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
        }, `${id}_Conv`, isLast && !withRelu);
        break;
      }
      case 'dense':
        initializers.push(floatTensor(`${id}.weight`, [layer.outputShape[0], layer.inputShape[0]], layer.weight));
        initializers.push(floatTensor(`${id}.bias`, [layer.outputShape[0]], layer.bias));
        emit('Gemm', [`${id}.weight`, `${id}.bias`], { alpha: { float: 1 }, beta: { float: 1 }, transB: 1 }, `${id}_Gemm`, isLast && !withRelu);
        break;
      case 'avgpool':
        emit('AveragePool', [], {
          kernel_shape: layer.kernel,
          strides: layer.strides,
          pads: layer.pads,
          count_include_pad: layer.countIncludePad ? 1 : 0,
          ceil_mode: 0,
        }, `${id}_AveragePool`, isLast && !withRelu);
        break;
      case 'scale': {
        const channels = layer.scale.length;
        initializers.push(
          floatTensor(`${id}.scale`, [channels], layer.scale),
          floatTensor(`${id}.shift`, [channels], layer.shift),
          floatTensor(`${id}.mean`, [channels], new Float32Array(channels)),
          floatTensor(`${id}.var`, [channels], new Float32Array(channels).fill(1)),
        );
        emit('BatchNormalization', [`${id}.scale`, `${id}.shift`, `${id}.mean`, `${id}.var`], { epsilon: { float: 0 } }, `${id}_BatchNormalization`, isLast && !withRelu);
        break;
      }
      case 'maxpool':
        emit('MaxPool', [], { kernel_shape: layer.kernel, strides: layer.strides, pads: layer.pads, dilations: layer.dilations, ceil_mode: 0 }, `${id}_MaxPool`, isLast);
        break;
      case 'flatten':
        emit('Flatten', [], { axis: 1 }, `${id}_Flatten`, isLast);
        break;
      case 'relu':
        emit('Relu', [], {}, `${id}_Relu`, isLast);
        break;
      default:
        invariant(false, `export: unexpected layer kind ${(layer as { kind: string }).kind}`);
    }
    if (withRelu) emit('Relu', [], {}, `${id}_Relu`, isLast);
  }
  invariant(current === 'logits', 'export: the chain must end at the output');
  return { nodes, initializers };
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
