/**
 * The background global bound of each model: after an import (and again after a restart, for the
 * ones left PENDING or RUNNING) a compute job runs analyse() at a zero input of the model's shape
 * (the global bound does not depend on the input) with the defaults of bounds/defaults.ts, and
 * records the bound with how it was obtained (method, certificate). Status PENDING → RUNNING →
 * DONE | FAILED; a job stopped by a server stop goes back to PENDING.
 */
import { analyse } from '../analysis/analyse.js';
import type { Backend, BackendName } from '../backend/backend.js';
import { createBackend } from '../backend/select.js';
import { CancelledError } from '../errors.js';
import { size } from '../model/ir.js';
import type { Store } from '../store/db.js';
import { runErrorOf } from './errors.js';
import type { Models } from './models.js';
import type { JobQueue } from './queue.js';

const jobId = (modelId: string) => `global:${modelId}`;

export class GlobalBounds {
  /** Global bounds computed by this process (for tests and logs). */
  computed = 0;
  private stopping = false;

  constructor(
    private readonly store: Store,
    private readonly queue: JobQueue,
    private readonly models: Models,
    private readonly options: { backend: BackendName; log: (message: string) => void },
  ) {}

  private get prisma() {
    return this.store.prisma;
  }

  enqueue(modelId: string): void {
    this.queue.push({ id: jobId(modelId), run: (signal) => this.compute(modelId, signal) });
  }

  cancel(modelId: string): void {
    this.queue.cancel(jobId(modelId));
  }

  /** Queues again the models whose global bound a stop or crash left unfinished, oldest first. */
  async recover(): Promise<void> {
    const models = await this.prisma.model.findMany({ where: { globalStatus: { in: ['PENDING', 'RUNNING'] } }, orderBy: { createdAt: 'asc' } });
    for (const m of models) {
      await this.prisma.model.update({ where: { id: m.id }, data: { globalStatus: 'PENDING' } });
      this.enqueue(m.id);
    }
  }

  /** Jobs aborted from now on are a stop, not a failure. */
  stop(): void {
    this.stopping = true;
  }

  private async compute(modelId: string, signal: AbortSignal): Promise<void> {
    const model = await this.models.find(modelId);
    if (!model) return;
    await this.prisma.model.updateMany({ where: { id: modelId }, data: { globalStatus: 'RUNNING' } });
    let backend: Backend | undefined;
    try {
      const network = await this.models.network(model);
      backend = await createBackend(this.options.backend, network);
      if (signal.aborted) throw new CancelledError();
      // The defaults (bounds/defaults.ts); the result says which method and certificate they were.
      const result = await analyse(network, new Float32Array(size(network.inputShape)), backend, { eps: [], global: true, signal });
      const global = result.global;
      if (!global) throw new Error('lipcert internal error: the analysis returned no global bound');
      this.computed++;
      await this.prisma.model.updateMany({
        where: { id: modelId },
        data: {
          globalStatus: 'DONE',
          globalBound: global.bound,
          globalQuality: global.quality,
          globalResult: JSON.stringify(global),
          globalMethod: result.method,
          globalCertificate: result.certificate,
          globalError: null,
        },
      });
      this.options.log(`global bound of '${model.name}': ${global.bound} (${global.quality}, ${result.method} method, ${result.certificate} certificates)`);
    } catch (error) {
      const stopped = this.stopping || signal.aborted;
      const { message } = runErrorOf(error);
      await this.prisma.model
        .updateMany({ where: { id: modelId }, data: stopped ? { globalStatus: 'PENDING' } : { globalStatus: 'FAILED', globalError: message } })
        .catch(() => undefined);
      if (!stopped) this.options.log(`global bound of '${model.name}' failed: ${message}`);
    } finally {
      await backend?.dispose().catch(() => undefined);
    }
  }
}
