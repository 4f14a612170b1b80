/**
 * WGSL source loading: kernels live in the package's shaders/ directory, one kernel per file, and
 * are read at run time. A line `#include "common/x.wgsl"` is replaced by that file (once per
 * kernel), which is how kernels share the tiled matmul and index helpers.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { invariant } from '../../errors.js';

let shadersRoot: string | undefined;

/**
 * The shaders/ directory beside package.json. Found by walking up from this module, so the same
 * code works from src/backend/webgpu/ (Jest, tsx) and from dist/src/backend/webgpu/ (after tsc).
 */
export function shadersDirectory(): string {
  if (shadersRoot) return shadersRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'shaders'))) {
      shadersRoot = join(dir, 'shaders');
      return shadersRoot;
    }
    const parent = dirname(dir);
    invariant(parent !== dir, `no shaders/ directory above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

const INCLUDE = /^\s*#include\s+"([^"]+)"\s*$/;

/** The WGSL of one kernel file (relative to shaders/), with its includes expanded. */
export function loadShader(file: string): string {
  const root = shadersDirectory();
  const included = new Set<string>();
  const expand = (path: string): string => {
    const full = resolve(root, path);
    invariant(full.startsWith(root), `shader include outside shaders/: ${path}`);
    return readFileSync(full, 'utf8')
      .split('\n')
      .map((line) => {
        const include = INCLUDE.exec(line);
        if (!include) return line;
        if (included.has(include[1])) return '';
        included.add(include[1]);
        return expand(include[1]);
      })
      .join('\n');
  };
  return expand(file);
}
