/**
 * The small random layers the backend tests run every operation on: every affine layer kind
 * (convolutions strided, padded, dilated, grouped, depthwise; dense layers on each CPU path;
 * average pools; scale) and max pools.
 */
import type { AffineLayer, MaxPoolLayer } from '../../src/model/ir.js';
import { avgpool, conv, dense, maxpool, scale } from '../helpers/random-networks.js';

export const affineLayers: [string, AffineLayer][] = [
  ['conv 3×3', conv([3, 7, 6], 4, [3, 3]) as AffineLayer],
  ['conv strided, asymmetric pads', conv([2, 9, 8], 3, [3, 2], { strides: [2, 3], pads: [1, 0, 2, 1] }) as AffineLayer],
  ['conv dilated', conv([2, 9, 9], 3, [2, 3], { dilations: [2, 2], pads: [1, 1, 1, 1] }) as AffineLayer],
  ['conv grouped', conv([4, 6, 6], 6, [3, 3], { group: 2, pads: [1, 1, 1, 1] }) as AffineLayer],
  ['conv depthwise, strided', conv([3, 8, 8], 3, [3, 3], { group: 3, strides: [2, 2] }) as AffineLayer],
  ['dense small', dense(20, 7) as AffineLayer],
  // 2,400 weights: JS loops for one vector, onnxruntime for blocks of 7 or more (CPU backend).
  ['dense medium', dense(60, 40) as AffineLayer],
  ['dense large (onnxruntime path)', dense(300, 260) as AffineLayer],
  ['avgpool count_include_pad', avgpool([2, 7, 7], [3, 3], [2, 2], [1, 1, 1, 1], true) as AffineLayer],
  ['avgpool excluding pads', avgpool([2, 7, 6], [3, 2], [2, 1], [1, 0, 1, 1], false) as AffineLayer],
  ['scale', scale([3, 4, 4]) as AffineLayer],
  ['scale of a vector', scale([10]) as AffineLayer],
];

export const poolLayers: [string, MaxPoolLayer][] = [
  ['2×2 stride 2', maxpool([2, 8, 8], [2, 2], [2, 2]) as MaxPoolLayer],
  ['3×3 stride 2 (AlexNet)', maxpool([2, 13, 13], [3, 3], [2, 2]) as MaxPoolLayer],
  ['padded, dilated', maxpool([1, 9, 9], [2, 3], [1, 2], [1, 1, 0, 1], [2, 1]) as MaxPoolLayer],
];
