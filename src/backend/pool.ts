/**
 * BackendPool: backends kept between analyses of the same network. Creating a backend and its first
 * analysis build its onnxruntime sessions (or GPU pipelines), which for a small network costs more
 * than the analysis itself; a dataset certifies one network image after image. A backend serves one
 * analysis at a time: `use()` takes an idle backend of that network and name (or creates one) and
 * puts it back afterwards, keeping at most `maxIdle` idle ones (the least recently used go first, and
 * before a new backend is built, so that memory peaks as without the pool).
 * A backend whose analysis threw is disposed rather than kept.
 */
import type { Network } from '../model/ir.js';
import type { Backend, BackendName } from './backend.js';
import type { CpuBackendOptions } from './cpu/index.js';
import { createBackend } from './select.js';

interface Idle {
  network: Network;
  name: BackendName;
  backend: Backend;
}

export class BackendPool {
  private idle: Idle[] = [];
  /** Backends created (for tests and logs). */
  created = 0;

  /** @param cpu options of the CPU backends it creates (e.g. their onnxruntime threads). */
  constructor(
    private readonly maxIdle = 1,
    private readonly cpu: CpuBackendOptions = {},
  ) {}

  async use<T>(network: Network, name: BackendName, work: (backend: Backend) => Promise<T>): Promise<T> {
    const i = this.idle.findIndex((e) => e.network === network && e.name === name);
    let backend: Backend;
    if (i >= 0) backend = this.idle.splice(i, 1)[0].backend;
    else {
      // Room first: an idle backend of another network is not held while a new one is built.
      while (this.idle.length >= this.maxIdle) await this.idle.shift()!.backend.dispose().catch(() => undefined);
      backend = await this.create(name, network);
    }
    let result: T;
    try {
      result = await work(backend);
    } catch (error) {
      await backend.dispose().catch(() => undefined);
      throw error;
    }
    this.idle.push({ network, name, backend });
    while (this.idle.length > this.maxIdle) await this.idle.shift()!.backend.dispose().catch(() => undefined);
    return result;
  }

  async dispose(): Promise<void> {
    const all = this.idle;
    this.idle = [];
    await Promise.allSettled(all.map((e) => e.backend.dispose()));
  }

  private async create(name: BackendName, network: Network): Promise<Backend> {
    const backend = await createBackend(name, network, this.cpu);
    this.created++;
    return backend;
  }
}
