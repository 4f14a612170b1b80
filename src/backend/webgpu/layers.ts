/**
 * Layers on the GPU: each layer's weights uploaded once, and the recording of its linear maps
 * (A, Aᵀ, A ⊙ A for row norms, the forward pass with bias, max pooling) as kernel dispatches on
 * device buffers, for a block of `count` vectors stored one after another (one dispatch per map
 * for all of them; a single vector is a block of one). Dense weight matrices larger than one storage binding (VGG-16's first fully
 * connected layer is 411 MB) are split into row blocks, one buffer and one dispatch each.
 */
import type { AffineLayer, ConvLayer, DenseLayer, Layer, MaxPoolLayer, Shape } from '../../model/ir.js';
import { size } from '../../model/ir.js';
import { invariant, LipcertError } from '../../errors.js';
import { DENSE_VECTORS_PER_WORKGROUP, GEMV_TRANSPOSE_COLUMNS, LINEAR_WORKGROUP, MATMUL_TILE } from './programs.js';
import type { GpuRuntime, UniformValues } from './runtime.js';

/** Which linear map of an affine layer to record. */
export type AffineMap = 'forward' | 'A' | 'AT' | 'rowNormsSquared';

interface DenseBlock {
  weight: GPUBuffer;
  rowOffset: number;
  rows: number;
}

type LayerWeights =
  | { kind: 'conv'; weight: GPUBuffer; bias: GPUBuffer }
  | { kind: 'dense'; blocks: DenseBlock[]; bias: GPUBuffer }
  | { kind: 'scale'; scale: GPUBuffer; shift: GPUBuffer }
  | { kind: 'none' };

/** [C, H, W] of an image-shaped tensor (a vector [N] reads as [N, 1, 1]). */
function chw(shape: Shape): [number, number, number] {
  if (shape.length === 3) return [shape[0], shape[1], shape[2]];
  if (shape.length === 1) return [shape[0], 1, 1];
  throw new LipcertError('UNSUPPORTED_MODEL', `the WebGPU backend expects [C, H, W] or [N] tensors, got [${shape.join(', ')}]`);
}

export class GpuLayers {
  private readonly weights = new Map<Layer, LayerWeights>();

  constructor(private readonly runtime: GpuRuntime) {}

  /** Uploads the layer's parameters (once; later calls reuse them). */
  upload(layer: Layer): LayerWeights {
    let weights = this.weights.get(layer);
    if (weights) return weights;
    const rt = this.runtime;
    switch (layer.kind) {
      case 'conv':
        weights = { kind: 'conv', weight: rt.createStorage(layer.weight.length, layer.weight, `${layer.name} W`), bias: rt.createStorage(layer.bias.length, layer.bias, `${layer.name} b`) };
        break;
      case 'dense':
        weights = { kind: 'dense', blocks: this.uploadDenseBlocks(layer), bias: rt.createStorage(layer.bias.length, layer.bias, `${layer.name} b`) };
        break;
      case 'scale':
        weights = { kind: 'scale', scale: rt.createStorage(layer.scale.length, layer.scale), shift: rt.createStorage(layer.shift.length, layer.shift) };
        break;
      default:
        weights = { kind: 'none' };
    }
    this.weights.set(layer, weights);
    return weights;
  }

  private uploadDenseBlocks(layer: DenseLayer): DenseBlock[] {
    const cols = size(layer.inputShape);
    const rows = size(layer.outputShape);
    invariant(layer.weight.length === rows * cols, `${layer.name}: weight is not ${rows}×${cols}`);
    const rowsPerBlock = Math.floor(this.runtime.maxBindingBytes / (4 * cols));
    if (rowsPerBlock < 1) {
      throw new LipcertError('UNSUPPORTED_MODEL', `${layer.name}: one row of ${cols} weights exceeds a GPU storage binding`, layer.name);
    }
    const blocks: DenseBlock[] = [];
    for (let rowOffset = 0; rowOffset < rows; rowOffset += rowsPerBlock) {
      const blockRows = Math.min(rowsPerBlock, rows - rowOffset);
      const data = layer.weight.subarray(rowOffset * cols, (rowOffset + blockRows) * cols);
      blocks.push({ weight: this.runtime.createStorage(data.length, data, `${layer.name} W[${rowOffset}:]`), rowOffset, rows: blockRows });
    }
    return blocks;
  }

  /**
   * Keeps the weights of `keep` and releases every other layer's, so a long-lived backend that
   * sees many networks holds one network's weights (a layer released here is uploaded again if
   * it is used later).
   */
  retainOnly(keep: ReadonlySet<Layer>): void {
    for (const [layer, weights] of this.weights) {
      if (keep.has(layer)) continue;
      this.releaseWeights(weights);
      this.weights.delete(layer);
    }
  }

  /**
   * Records `map` of an affine layer from `input` into `output` for `count` vectors (distinct
   * buffers of count × the layer's input then output size, swapped for Aᵀ).
   */
  recordAffine(layer: AffineLayer, map: AffineMap, input: GPUBuffer, output: GPUBuffer, count = 1): void {
    const weights = this.upload(layer);
    switch (layer.kind) {
      case 'conv':
        invariant(weights.kind === 'conv', 'conv weights');
        return this.recordConv(layer, map, weights, input, output, count);
      case 'dense':
        invariant(weights.kind === 'dense', 'dense weights');
        return this.recordDense(layer, map, weights, input, output, count);
      case 'avgpool': {
        const uniforms = poolUniforms(layer, { countIncludePad: layer.countIncludePad ? 1 : 0, divisorPower: map === 'rowNormsSquared' ? 2 : 1 }, count);
        if (map === 'AT') return this.runtime.dispatch('avgpoolTranspose', uniforms, [input, output], linearGroups(count * size(layer.inputShape)));
        return this.runtime.dispatch('avgpool', uniforms, [input, output], linearGroups(count * size(layer.outputShape)));
      }
      case 'scale': {
        invariant(weights.kind === 'scale', 'scale weights');
        const length = size(layer.inputShape);
        const uniforms = {
          length: count * length,
          channelSize: length / layer.scale.length,
          power: map === 'rowNormsSquared' ? 2 : 1,
          addShift: map === 'forward' ? 1 : 0,
          channels: layer.scale.length,
        };
        invariant(Number.isInteger(uniforms.channelSize), `${layer.name}: ${layer.scale.length} scales for ${length} inputs`);
        return this.runtime.dispatch('channelScale', uniforms, [input, weights.scale, weights.shift, output], linearGroups(count * length));
      }
    }
  }

  /**
   * Convolutions are implicit GEMMs on one tiled matmul: one grid of output tiles per group, the
   * block's images side by side in the columns.
   */
  private recordConv(layer: ConvLayer, map: AffineMap, weights: { weight: GPUBuffer; bias: GPUBuffer }, input: GPUBuffer, output: GPUBuffer, count: number): void {
    const [inChannels, inHeight, inWidth] = chw(layer.inputShape);
    const [outChannels, outHeight, outWidth] = chw(layer.outputShape);
    const uniforms: UniformValues = {
      inChannels, inHeight, inWidth, outChannels, outHeight, outWidth,
      kernelH: layer.kernel[0], kernelW: layer.kernel[1],
      strideH: layer.strides[0], strideW: layer.strides[1],
      padTop: layer.pads[0], padLeft: layer.pads[1],
      dilationH: layer.dilations[0], dilationW: layer.dilations[1],
      groups: layer.group,
      addBias: map === 'forward' ? 1 : 0,
      batch: count,
    };
    const grid = (rows: number, cols: number): [number, number, number] =>
      [Math.ceil(cols / MATMUL_TILE.cols), Math.ceil(rows / MATMUL_TILE.rows), layer.group];
    const rt = this.runtime;
    switch (map) {
      case 'forward':
      case 'A':
        return rt.dispatch('conv2d', uniforms, [input, weights.weight, weights.bias, output], grid(outChannels / layer.group, count * outHeight * outWidth));
      case 'AT':
        return rt.dispatch('conv2dTranspose', uniforms, [input, weights.weight, output], grid(inChannels / layer.group, count * inHeight * inWidth));
      case 'rowNormsSquared':
        return rt.dispatch('conv2dRowNorms', uniforms, [input, weights.weight, output], grid(outChannels / layer.group, count * outHeight * outWidth));
    }
  }

  /**
   * Dense layers: GEMV per row block; the transpose sums the blocks' contributions. The grid's z
   * runs over groups of vectors of the block, each weight read once per group.
   */
  private recordDense(layer: DenseLayer, map: AffineMap, weights: { blocks: DenseBlock[]; bias: GPUBuffer }, input: GPUBuffer, output: GPUBuffer, count: number): void {
    const cols = size(layer.inputShape);
    const rt = this.runtime;
    const groups = Math.ceil(count / DENSE_VECTORS_PER_WORKGROUP);
    weights.blocks.forEach((block, index) => {
      const uniforms = { rows: block.rows, cols, rowOffset: block.rowOffset, flag: 0, totalRows: size(layer.outputShape), batch: count };
      switch (map) {
        case 'forward':
        case 'A':
          uniforms.flag = map === 'forward' ? 1 : 0;
          return rt.dispatch('gemv', uniforms, [block.weight, input, weights.bias, output], rt.grid(block.rows, groups));
        case 'AT':
          uniforms.flag = index > 0 ? 1 : 0; // accumulate after the first block
          return rt.dispatch('gemvTranspose', uniforms, [block.weight, input, output], rt.grid(Math.ceil(cols / GEMV_TRANSPOSE_COLUMNS), groups));
        case 'rowNormsSquared':
          return rt.dispatch('gemvRowNorms', uniforms, [block.weight, input, output], rt.grid(block.rows, groups));
      }
    });
  }

  /** Max pool forward, or (`mask`) the max pool of a 0/1 mask with padding contributing 0, for `count` inputs. */
  recordMaxPool(layer: MaxPoolLayer, mode: 'forward' | 'mask', input: GPUBuffer, output: GPUBuffer, count = 1): void {
    const uniforms = poolUniforms(layer, { countIncludePad: 0, divisorPower: 1 }, count);
    this.runtime.dispatch(mode === 'forward' ? 'maxpool' : 'maxpoolMask', uniforms, [input, output], linearGroups(count * size(layer.outputShape)));
  }

  /** Releases every uploaded weight buffer. */
  dispose(): void {
    this.retainOnly(new Set());
  }

  private releaseWeights(weights: LayerWeights): void {
    const release = (...buffers: GPUBuffer[]) => buffers.forEach((buffer) => this.runtime.release(buffer));
    if (weights.kind === 'conv') release(weights.weight, weights.bias);
    else if (weights.kind === 'dense') release(weights.bias, ...weights.blocks.map((b) => b.weight));
    else if (weights.kind === 'scale') release(weights.scale, weights.shift);
  }
}

/** Workgroups for one invocation per element. */
export function linearGroups(length: number): number {
  return Math.ceil(length / LINEAR_WORKGROUP);
}

/** Pool geometry for `count` stacked inputs: one tensor of count·C channels. */
function poolUniforms(
  layer: MaxPoolLayer | Extract<AffineLayer, { kind: 'avgpool' }>,
  extra: { countIncludePad: number; divisorPower: number },
  count: number,
): UniformValues {
  const [layerChannels, inHeight, inWidth] = chw(layer.inputShape);
  const channels = count * layerChannels;
  const [, outHeight, outWidth] = chw(layer.outputShape);
  const dilations = layer.kind === 'maxpool' ? layer.dilations : [1, 1];
  return {
    channels, inHeight, inWidth, outHeight, outWidth,
    kernelH: layer.kernel[0], kernelW: layer.kernel[1],
    strideH: layer.strides[0], strideW: layer.strides[1],
    padTop: layer.pads[0], padLeft: layer.pads[1], padBottom: layer.pads[2], padRight: layer.pads[3],
    dilationH: dilations[0], dilationW: dilations[1],
    ...extra,
  };
}
