/**
 * Jest's node environment with the host realm's typed arrays, for the server tests (selected by the
 * `@jest-environment` docblock of each suite that computes): onnxruntime-node returns tensors built
 * in the host realm, and `instanceof Float32Array` fails against the sandbox's constructors.
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
