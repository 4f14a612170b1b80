/**
 * Adapter and device selection through Dawn (npm `webgpu`): the platform's default backend first
 * (Vulkan, Metal, D3D12); on a headless Linux machine without one, Mesa's llvmpipe through EGL and
 * Dawn's OpenGL backend in compatibility mode (docs/environment.md). The device asks the adapter
 * for the limits the kernels need and for its largest buffers.
 */
import { SHARE_ENV, Worker } from 'node:worker_threads';
import { create } from 'webgpu';
import { LipcertError } from '../../errors.js';
import { LINEAR_WORKGROUP } from './programs.js';

export interface GpuDevice {
  /** Keeps dawn.node's instance alive; drop it (with the device) to let the process exit. */
  readonly gpu: GPU;
  readonly device: GPUDevice;
  /** e.g. "llvmpipe-llvm-15-0-6-256-bits, OpenGL version 4.5 (Core Profile) Mesa 22.3.6 (OpenGL via EGL surfaceless, compatibility)". */
  readonly description: string;
}

/** What the kernels need beyond WebGPU's compatibility-mode defaults. */
const REQUIRED = {
  maxComputeInvocationsPerWorkgroup: LINEAR_WORKGROUP,
  maxComputeWorkgroupSizeX: LINEAR_WORKGROUP,
  maxComputeWorkgroupSizeY: 16,
  /** dot4_partials binds six (x, four vectors, partials): WebGPU's core default is 8. */
  maxStorageBuffersPerShaderStage: 6,
  maxComputeWorkgroupStorageSize: 8192,
} as const;

interface AdapterPath {
  label: string;
  options: string[];
  request: GPURequestAdapterOptions;
  environment?: Record<string, string>;
}

const PATHS: AdapterPath[] = [
  { label: 'platform default', options: [], request: { powerPreference: 'high-performance' } },
  {
    label: 'OpenGL via EGL surfaceless, compatibility',
    options: ['backend=opengl'],
    request: { featureLevel: 'compatibility' },
    // EGL cannot initialise without a display unless told to run surfaceless.
    environment: { EGL_PLATFORM: 'surfaceless' },
  },
];

/** CPU implementations of a GPU API: correct, but slower than the CPU backend. */
const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|softpipe|swiftshader/i;

/**
 * The first adapter path that yields a working device; throws BACKEND_UNAVAILABLE otherwise.
 * `allowSoftware: false` refuses software rasterisers such as llvmpipe (for `--backend auto`,
 * where the CPU backend is the faster choice).
 */
export async function acquireGpuDevice({ allowSoftware = true }: { allowSoftware?: boolean } = {}): Promise<GpuDevice> {
  const failures: string[] = [];
  for (const path of PATHS) {
    try {
      for (const [name, value] of Object.entries(path.environment ?? {})) await setNativeEnvironment(name, value);
      const gpu = create(path.options);
      const adapter = await gpu.requestAdapter(path.request);
      if (!adapter) {
        failures.push(`${path.label}: no adapter`);
        continue;
      }
      const name = describeAdapter(adapter.info);
      if (!allowSoftware && (adapter.info.isFallbackAdapter || SOFTWARE_ADAPTER.test(name))) {
        failures.push(`${path.label}: only a software adapter (${name})`);
        continue;
      }
      const device = await requestDevice(adapter);
      return { gpu, device, description: `${name} (${path.label})` };
    } catch (error) {
      failures.push(`${path.label}: ${(error as Error).message}`);
    }
  }
  throw new LipcertError(
    'BACKEND_UNAVAILABLE',
    `no WebGPU adapter is available (${failures.join('; ')}). On headless Linux install Mesa's EGL ` +
      'drivers: apt-get install -y --no-install-recommends libegl1 libegl-mesa0 libgl1-mesa-dri',
  );
}

/**
 * Sets an environment variable (unless already set) where native code reads it. process.env is
 * that environment in plain Node, but a sandbox copy under Jest; a worker created with SHARE_ENV
 * writes the process's real environment in both cases.
 */
async function setNativeEnvironment(name: string, value: string): Promise<void> {
  process.env[name] ??= value;
  const worker = new Worker(`process.env[${JSON.stringify(name)}] ??= ${JSON.stringify(value)};`, { eval: true, env: SHARE_ENV });
  await new Promise((resolve, reject) => worker.once('exit', resolve).once('error', reject));
}

async function requestDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const available = adapter.limits;
  for (const [name, needed] of Object.entries(REQUIRED)) {
    const has = available[name as keyof GPUSupportedLimits] as number;
    if (has < needed) throw new Error(`adapter limit ${name} is ${has}, the kernels need ${needed}`);
  }
  const device = await adapter.requestDevice({
    label: 'lipcert',
    requiredLimits: {
      ...REQUIRED,
      maxStorageBufferBindingSize: available.maxStorageBufferBindingSize,
      maxBufferSize: available.maxBufferSize,
      maxComputeWorkgroupsPerDimension: available.maxComputeWorkgroupsPerDimension,
    },
  });
  // Some drivers hand out a device that fails on first use: try one buffer before trusting it.
  device.pushErrorScope('validation');
  device.createBuffer({ size: 16, usage: GPUBufferUsageFlags.STORAGE }).destroy();
  const error = await device.popErrorScope();
  if (error) {
    device.destroy();
    throw new Error(`device does not work: ${error.message}`);
  }
  return device;
}

function describeAdapter(info: GPUAdapterInfo): string {
  const parts = [info.vendor, info.architecture, info.device, info.description]
    .map((part) => part?.trim().replace(/-+$/, ''))
    .filter((part): part is string => !!part);
  return parts.length > 0 ? [...new Set(parts)].join(', ') : 'unnamed adapter';
}

/** GPUBufferUsage and GPUMapMode flag values (fixed by the WebGPU specification). */
export const GPUBufferUsageFlags = {
  MAP_READ: 0x0001,
  COPY_SRC: 0x0004,
  COPY_DST: 0x0008,
  UNIFORM: 0x0040,
  STORAGE: 0x0080,
} as const;
export const GPUMapModeFlags = { READ: 0x0001 } as const;
