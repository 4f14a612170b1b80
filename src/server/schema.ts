/**
 * The API's contract, schema.graphql at the repository root: its text (for the executable schema
 * and codegen) and, built once, its types alone, against which results are checked before they are
 * stored (numbers.ts: every Float! a finite number).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSchema, type GraphQLSchema } from 'graphql';

/** schema.graphql at the repository root, found upwards from this file (src/ or dist/src/). */
export function loadTypeDefs(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const file = join(dir, 'schema.graphql');
    if (existsSync(file)) return readFileSync(file, 'utf8');
    dir = dirname(dir);
  }
  throw new Error('lipcert internal error: schema.graphql not found');
}

let types: GraphQLSchema | undefined;

/** The schema's types (no resolvers), built on first use. */
export function apiTypes(): GraphQLSchema {
  types ??= buildSchema(loadTypeDefs());
  return types;
}
