/**
 * Entry point of the WebGPU backend, loaded lazily by backend/select.ts (`--backend webgpu|auto`)
 * so that Dawn is only touched when asked for.
 */
import type { Backend } from '../backend.js';
import { acquireGpuDevice } from './device.js';
import { GpuRuntime } from './runtime.js';
import { WebGpuBackend } from './webgpu-backend.js';

export interface WebGpuBackendOptions {
  /**
   * Largest storage binding to use, in bytes (default: the device's limit). Tests lower it to
   * exercise the splitting of large dense layers.
   */
  maxBindingBytes?: number;
  /**
   * Accept a software adapter such as Mesa's llvmpipe (default true). `--backend auto` should
   * pass false: on a machine without a GPU the CPU backend is several times faster.
   */
  allowSoftware?: boolean;
}

/** A WebGPU backend on the best adapter available; throws LipcertError BACKEND_UNAVAILABLE if none. */
export async function createWebGpuBackend(options: WebGpuBackendOptions = {}): Promise<Backend> {
  const gpu = await acquireGpuDevice({ allowSoftware: options.allowSoftware });
  try {
    const runtime = await GpuRuntime.create(gpu, options);
    return new WebGpuBackend(runtime, gpu.description);
  } catch (error) {
    gpu.device.destroy();
    throw error;
  }
}

export { WebGpuBackend } from './webgpu-backend.js';
