/**
 * Creates the WebGPU backend for a test file, or says why the suite is skipped: only when no
 * adapter can be had at all (BACKEND_UNAVAILABLE). In CI (CI set) a missing adapter fails instead,
 * since llvmpipe must be installed there.
 */
import { SHARE_ENV, Worker } from 'node:worker_threads';
import type { Backend } from '../../src/backend/backend.js';
import { LipcertError } from '../../src/errors.js';
import { createWebGpuBackend, type WebGpuBackendOptions } from '../../src/backend/webgpu/index.js';

/**
 * Jest hands tests a copy of process.env, so the backend's `EGL_PLATFORM=surfaceless` (needed by
 * Mesa's EGL without a display) would never reach the C environment that Mesa reads. A worker
 * sharing the environment (SHARE_ENV) writes the real one.
 */
async function setRealEnvironment(name: string, value: string): Promise<void> {
  const worker = new Worker(`process.env[${JSON.stringify(name)}] ??= ${JSON.stringify(value)};`, { eval: true, env: SHARE_ENV });
  await new Promise((resolve, reject) => worker.once('exit', resolve).once('error', reject));
}

export async function tryCreateWebGpuBackend(options?: WebGpuBackendOptions): Promise<{ backend: Backend | null; reason: string }> {
  await setRealEnvironment('EGL_PLATFORM', 'surfaceless');
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
