/**
 * Choosing a backend: 'cpu', 'webgpu' (an error if no adapter; a software adapter such as llvmpipe
 * is accepted), or 'auto' (WebGPU on a hardware adapter, else the CPU: on a machine without a GPU
 * the CPU backend is several times faster than llvmpipe). Given the network, 'auto' also keeps small
 * networks on the CPU: a Lanczos step on a GPU waits for read-backs (about 1 ms a step on an H200,
 * where the CPU path takes 0.05 ms for the MNIST net), so below AUTO_WEBGPU_MIN_MULTIPLY_ADDS the CPU
 * wins (MNIST net: 5 ms on 2 cores against 80 ms on the H200; CIFAR-10 net: 70 against 160 ms).
 * The WebGPU code is loaded lazily so the CPU path never touches Dawn.
 */
import fs from 'node:fs';
import { BadInputError, LipcertError } from '../errors.js';
import { type Network, networkMultiplyAdds } from '../model/ir.js';
import type { Backend, BackendName } from './backend.js';
import { type CpuBackendOptions, createCpuBackend } from './cpu/index.js';

export const BACKEND_NAMES: BackendName[] = ['cpu', 'webgpu', 'auto'];

async function createWebGpu(allowSoftware: boolean): Promise<Backend> {
  let mod: typeof import('./webgpu/index.js');
  try {
    mod = await import('./webgpu/index.js');
  } catch (e) {
    throw new LipcertError('BACKEND_UNAVAILABLE', `the WebGPU backend cannot be loaded: ${(e as Error).message}`);
  }
  return mod.createWebGpuBackend({ allowSoftware });
}

/**
 * Whether a GPU could be present at all. On Linux a GPU shows up as a device node (/dev/dri/renderD*,
 * /dev/nvidia*); without one, 'auto' goes straight to the CPU instead of probing Dawn's adapters,
 * which takes half a second and prints driver warnings. Other platforms are always probed.
 */
function mayHaveGpu(): boolean {
  if (process.platform !== 'linux') return true;
  const has = (dir: string, pattern: RegExp) => {
    try {
      return fs.readdirSync(dir).some((f) => pattern.test(f));
    } catch {
      return false;
    }
  };
  return has('/dev/dri', /^renderD\d+$/) || has('/dev', /^nvidia\d+$/);
}

/**
 * Set once 'auto' found no hardware adapter: the answer does not change while the process runs, and
 * each probe takes about half a second (a server creates a backend per job).
 */
let noHardwareGpu = false;

/** Networks with fewer multiply-adds per forward pass run on the CPU under 'auto' (AlexNet: 0.7 G). */
export const AUTO_WEBGPU_MIN_MULTIPLY_ADDS = 1e8;

/** Whether 'auto' keeps this network on the CPU whatever the GPU. */
export function autoPrefersCpu(network: Network): boolean {
  return networkMultiplyAdds(network) < AUTO_WEBGPU_MIN_MULTIPLY_ADDS;
}

/**
 * The backend `name`; for 'auto' with `network` given, the CPU for small networks (see above).
 * `cpu`: the CPU backend's options where it is the one chosen.
 */
export async function createBackend(name: BackendName = 'cpu', network?: Network, cpu: CpuBackendOptions = {}): Promise<Backend> {
  switch (name) {
    case 'cpu':
      return createCpuBackend(cpu);
    case 'webgpu':
      return createWebGpu(true);
    case 'auto':
      if (noHardwareGpu || !mayHaveGpu() || (network && autoPrefersCpu(network))) return createCpuBackend(cpu);
      try {
        return await createWebGpu(false);
      } catch (e) {
        if (e instanceof LipcertError && e.code === 'BACKEND_UNAVAILABLE') {
          noHardwareGpu = true;
          return createCpuBackend(cpu);
        }
        throw e;
      }
    default:
      throw new BadInputError(`unknown backend '${name as string}' (expected one of ${BACKEND_NAMES.join(', ')})`);
  }
}
