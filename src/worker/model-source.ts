/**
 * A worker's models: ONNX bytes fetched from the server by sha256 (`GET /models/<sha256>`, with the
 * API token when the server has one), checked against that sha256, cached on disk under the cache
 * directory (the next job, and the next worker process on this machine, read them from there), and
 * parsed once per process (the most recently used few kept in memory). The server imported and
 * checked the model; the sha256 says these are the same bytes.
 */
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LipcertError } from '../errors.js';
import type { Network } from '../model/ir.js';
import { importOnnx } from '../model/onnx-import.js';
import { writeAtomically } from '../server/models.js';
import { sha256Hex } from '../store/cache-key.js';

const NETWORKS_IN_MEMORY = 4;

/** The server's base URL from what a user may give: http://host:4000, .../ or .../graphql. */
export function serverBase(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new LipcertError('BAD_USER_INPUT', `--server ${url} is not a URL (e.g. http://server:4000)`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new LipcertError('BAD_USER_INPUT', `--server ${url} must be an http:// or https:// URL`);
  return parsed.toString().replace(/\/graphql\/?$/, '').replace(/\/+$/, '');
}

export class ModelSource {
  private readonly networks = new Map<string, Network>();
  /** Counters for logs and tests. */
  readonly stats = { fetched: 0, fromDisk: 0 };

  constructor(
    private readonly server: string,
    private readonly token: string | undefined,
    private readonly cacheDir: string,
  ) {
    mkdirSync(cacheDir, { recursive: true });
  }

  async network(model: { sha256: string; name: string }): Promise<Network> {
    const cached = this.networks.get(model.sha256);
    if (cached) {
      this.remember(model.sha256, cached);
      return cached;
    }
    const network = importOnnx(await this.bytes(model.sha256), model.name);
    this.remember(model.sha256, network);
    return network;
  }

  private async bytes(sha256: string): Promise<Uint8Array> {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new LipcertError('BAD_USER_INPUT', `'${sha256}' is not a sha256`);
    const file = join(this.cacheDir, `${sha256}.onnx`);
    const onDisk = await readFile(file).catch(() => null);
    if (onDisk && sha256Hex(onDisk) === sha256) {
      this.stats.fromDisk++;
      return onDisk;
    }
    const url = `${this.server}/models/${sha256}`;
    let response: Response;
    try {
      response = await fetch(url, { headers: this.token ? { authorization: `Bearer ${this.token}` } : {} });
    } catch (error) {
      throw new LipcertError('BACKEND_UNAVAILABLE', `the worker cannot reach the server at ${this.server} for the model's bytes (${(error as Error).message})`);
    }
    if (response.status === 401) throw new LipcertError('UNAUTHENTICATED', `the server at ${this.server} wants its API token: start the worker with --token (or LIPCERT_TOKEN)`);
    if (!response.ok) throw new LipcertError(response.status === 404 ? 'NOT_FOUND' : 'BACKEND_UNAVAILABLE', `GET ${url} answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (sha256Hex(bytes) !== sha256) throw new LipcertError('BACKEND_UNAVAILABLE', `the bytes from ${url} do not have the sha256 asked for`);
    await writeAtomically(file, bytes);
    this.stats.fetched++;
    return bytes;
  }

  private remember(sha256: string, network: Network): void {
    this.networks.delete(sha256);
    this.networks.set(sha256, network);
    while (this.networks.size > NETWORKS_IN_MEMORY) this.networks.delete(this.networks.keys().next().value!);
  }
}
