/**
 * Choosing a backend: 'cpu', 'webgpu' (an error if no adapter), or 'auto' (WebGPU when an adapter
 * is found, else the CPU). The WebGPU code is loaded lazily so the CPU path never touches Dawn.
 */
import { BadInputError, LipcertError } from '../errors.js';
import type { Backend, BackendName } from './backend.js';
import { createCpuBackend } from './cpu/index.js';

export const BACKEND_NAMES: BackendName[] = ['cpu', 'webgpu', 'auto'];

async function createWebGpu(): Promise<Backend> {
  let mod: { createWebGpuBackend: () => Promise<Backend> };
  try {
    const modulePath = './webgpu/index.js'; // resolved at run time: Dawn is only loaded when asked for
    mod = await import(modulePath);
  } catch (e) {
    throw new LipcertError('BACKEND_UNAVAILABLE', `the WebGPU backend cannot be loaded: ${(e as Error).message}`);
  }
  return mod.createWebGpuBackend();
}

export async function createBackend(name: BackendName = 'cpu'): Promise<Backend> {
  switch (name) {
    case 'cpu':
      return createCpuBackend();
    case 'webgpu':
      return createWebGpu();
    case 'auto':
      try {
        return await createWebGpu();
      } catch (e) {
        if (e instanceof LipcertError && e.code === 'BACKEND_UNAVAILABLE') return createCpuBackend();
        throw e;
      }
    default:
      throw new BadInputError(`unknown backend '${name as string}' (expected one of ${BACKEND_NAMES.join(', ')})`);
  }
}
