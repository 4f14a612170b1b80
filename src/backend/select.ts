/**
 * Choosing a backend: 'cpu', 'webgpu' (an error if no adapter; a software adapter such as llvmpipe
 * is accepted), or 'auto' (WebGPU on a hardware adapter, else the CPU: on a machine without a GPU
 * the CPU backend is several times faster than llvmpipe). The WebGPU code is loaded lazily so the
 * CPU path never touches Dawn.
 */
import fs from 'node:fs';
import { BadInputError, LipcertError } from '../errors.js';
import type { Backend, BackendName } from './backend.js';
import { createCpuBackend } from './cpu/index.js';

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

export async function createBackend(name: BackendName = 'cpu'): Promise<Backend> {
  switch (name) {
    case 'cpu':
      return createCpuBackend();
    case 'webgpu':
      return createWebGpu(true);
    case 'auto':
      if (!mayHaveGpu()) return createCpuBackend();
      try {
        return await createWebGpu(false);
      } catch (e) {
        if (e instanceof LipcertError && e.code === 'BACKEND_UNAVAILABLE') return createCpuBackend();
        throw e;
      }
    default:
      throw new BadInputError(`unknown backend '${name as string}' (expected one of ${BACKEND_NAMES.join(', ')})`);
  }
}
