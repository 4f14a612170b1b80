/**
 * Creates the WebGPU backend for a test file, or says why the suite is skipped: only when no
 * adapter can be had at all (BACKEND_UNAVAILABLE). In CI (CI set) a missing adapter fails instead,
 * since llvmpipe must be installed there.
 */
import type { Backend } from '../../src/backend/backend.js';
import { LipcertError } from '../../src/errors.js';
import { createWebGpuBackend, type WebGpuBackendOptions } from '../../src/backend/webgpu/index.js';

export async function tryCreateWebGpuBackend(options?: WebGpuBackendOptions): Promise<{ backend: Backend | null; reason: string }> {
  try {
    return { backend: await createWebGpuBackend(options), reason: '' };
  } catch (error) {
    if (error instanceof LipcertError && error.code === 'BACKEND_UNAVAILABLE' && !process.env.CI) {
      console.warn(`Skipping WebGPU tests: ${error.message}`);
      return { backend: null, reason: error.message };
    }
    throw error;
  }
}
