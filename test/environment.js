/**
 * Jest's node environment with the host realm's typed arrays: onnxruntime-node builds its output
 * tensors in the host realm, and its `instanceof Float32Array` checks fail against the sandbox's own
 * constructors otherwise.
 */
import NodeEnvironment from 'jest-environment-node';

export default class HostTypedArrayEnvironment extends NodeEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of [
      'ArrayBuffer', 'SharedArrayBuffer', 'DataView', 'Float32Array', 'Float64Array', 'Int8Array', 'Int16Array', 'Int32Array',
      'Uint8Array', 'Uint8ClampedArray', 'Uint16Array', 'Uint32Array', 'BigInt64Array', 'BigUint64Array',
    ]) {
      this.global[name] = globalThis[name];
    }
  }
}
