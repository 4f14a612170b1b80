/**
 * The single-vector half of the Backend interface from its block half: a vector is a block of one.
 * Both backends run one vector through the same sessions and kernels as a block (the CPU backend
 * keeps a batch-1 session for it, see cpu/index.ts), so they extend this class and implement only
 * the block operations and the Gram operator of one vector (whose device vectors differ from
 * blocks).
 */
import type { AffineLayer, MaxPoolLayer, Network } from '../model/ir.js';
import type { Backend, BasisOps, BlockGramOperator, BlockVectorOps, GramOperator, VectorOps } from './backend.js';

export abstract class BlocksOfOneBackend implements Backend {
  abstract readonly name: string;
  abstract readonly adapter: string;
  abstract readonly vectors: VectorOps;
  abstract readonly blocks: BlockVectorOps;
  abstract readonly basis: BasisOps;
  abstract prepare(network: Network): Promise<void>;
  abstract gramOperator(layer: AffineLayer, domainMask: Float32Array | null, slopeSquared: Float32Array | null): Promise<GramOperator>;
  abstract forwardBlock(layer: AffineLayer, x: Float32Array, count: number): Promise<Float32Array>;
  abstract applyABlock(layer: AffineLayer, v: Float32Array, count: number): Promise<Float32Array>;
  abstract applyATBlock(layer: AffineLayer, u: Float32Array, count: number): Promise<Float32Array>;
  abstract rowNormsSquaredBlock(layer: AffineLayer, masks: Float32Array, count: number): Promise<Float32Array>;
  abstract maxPoolBlock(layer: MaxPoolLayer, x: Float32Array, count: number): Promise<Float32Array>;
  abstract poolMaskBlock(layer: MaxPoolLayer, masks: Float32Array, count: number): Promise<Float32Array>;
  abstract gramBlockOperator(layer: AffineLayer, domainMasks: Float32Array | null, slopeSquared: Float32Array | null, count: number): Promise<BlockGramOperator>;
  abstract dispose(): Promise<void>;

  forward(layer: AffineLayer, x: Float32Array): Promise<Float32Array> {
    return this.forwardBlock(layer, x, 1);
  }

  applyA(layer: AffineLayer, v: Float32Array): Promise<Float32Array> {
    return this.applyABlock(layer, v, 1);
  }

  applyAT(layer: AffineLayer, u: Float32Array): Promise<Float32Array> {
    return this.applyATBlock(layer, u, 1);
  }

  rowNormsSquared(layer: AffineLayer, mask: Float32Array): Promise<Float32Array> {
    return this.rowNormsSquaredBlock(layer, mask, 1);
  }

  maxPool(layer: MaxPoolLayer, x: Float32Array): Promise<Float32Array> {
    return this.maxPoolBlock(layer, x, 1);
  }

  poolMask(layer: MaxPoolLayer, mask: Float32Array): Promise<Float32Array> {
    return this.poolMaskBlock(layer, mask, 1);
  }
}
