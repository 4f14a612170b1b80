/**
 * The backends this machine can run, for tests parameterised over them: the CPU always, WebGPU
 * where an adapter exists (llvmpipe through EGL here and in CI; see webgpu-setup.ts).
 */
import { afterAll, beforeAll, describe } from '@jest/globals';
import type { Backend } from '../../src/backend/backend.js';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { tryCreateWebGpuBackend } from './webgpu-setup.js';

const webgpu = await tryCreateWebGpuBackend();

/** Whether this machine has a WebGPU adapter (else the WebGPU suites are skipped). */
export const webgpuAvailable = webgpu.backend !== null;

/**
 * One `describe` per backend ("cpu backend", "webgpu backend"): the backend is created before its
 * tests and disposed after them; `body` reaches it through `backend()`.
 */
export function describeEachBackend(body: (backend: () => Backend) => void): void {
  const makers: [string, () => Promise<Backend>][] = [['cpu', async () => createCpuBackend()]];
  if (webgpu.backend) makers.push(['webgpu', async () => webgpu.backend!]);
  describe.each(makers)('%s backend', (_name, make) => {
    let current: Backend;
    beforeAll(async () => {
      current = await make();
    });
    afterAll(async () => {
      await current.dispose();
    });
    body(() => current);
  });
}
