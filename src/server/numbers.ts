/**
 * Numbers the API can carry. A result is complete when every `Float!` of its schema type holds a
 * finite number and no `Float` holds NaN or ±Infinity (GraphQL cannot serialise them, and JSON
 * stores them as null): `incompleteNumbers` lists the paths where it is not, so that a run whose
 * arithmetic overflowed ends FAILED with NUMERIC_OVERFLOW instead of SUCCEEDED without a number.
 * `epsError` refuses, before any work, a radius whose bound cannot be represented.
 */
import {
  getNullableType,
  isListType,
  isNonNullType,
  isObjectType,
  isScalarType,
  type GraphQLOutputType,
  type GraphQLSchema,
} from 'graphql';
import { LipcertError } from '../errors.js';

/** Paths (`local.0.bound`) where `value`, read as the schema's type `typeName`, lacks a number the type requires. */
export function incompleteNumbers(schema: GraphQLSchema, typeName: string, value: unknown): string[] {
  const type = schema.getType(typeName);
  if (!type || !isObjectType(type)) throw new Error(`lipcert internal error: no object type ${typeName} in the schema`);
  const found: string[] = [];
  const walk = (t: GraphQLOutputType, v: unknown, path: string) => {
    const required = isNonNullType(t);
    const inner = getNullableType(t);
    if (v === null || v === undefined) {
      if (required && isScalarType(inner) && inner.name === 'Float') found.push(path);
      return;
    }
    if (isListType(inner)) {
      if (Array.isArray(v)) v.forEach((item, i) => walk(inner.ofType, item, `${path}.${i}`));
    } else if (isObjectType(inner)) {
      for (const [name, field] of Object.entries(inner.getFields())) {
        walk(field.type, (v as Record<string, unknown>)[name], path ? `${path}.${name}` : name);
      }
    } else if (isScalarType(inner) && inner.name === 'Float' && !(typeof v === 'number' && Number.isFinite(v))) {
      found.push(path);
    }
  };
  walk(type, value, '');
  return found;
}

/** NUMERIC_OVERFLOW naming the first incomplete number, or null when the value is complete. */
export function overflowError(schema: GraphQLSchema, typeName: string, value: unknown): LipcertError | null {
  const paths = incompleteNumbers(schema, typeName, value);
  if (paths.length === 0) return null;
  return new LipcertError(
    'NUMERIC_OVERFLOW',
    `the computation left the range of floating point (${paths.length} number${paths.length > 1 ? 's' : ''} missing or infinite, first ${typeName}.${paths[0]}): use a smaller eps, or a model with smaller weights`,
  );
}

/** Largest eps accepted: far beyond any input's scale, and below where x0 ± eps leaves float32. */
export const MAX_EPS = 1e30;
/** Float32 range with room for a few layers' sums: the local bound's boxes are float32 (tight.ts). */
export const MAX_SCALED_RADIUS = 3.4e38 / 2 ** 20;

/**
 * Why `eps` cannot be bounded, or null: not finite and positive, above MAX_EPS, or (when the model's
 * global bound L is known) eps·L past MAX_SCALED_RADIUS, where a layer's radius eps·Π L_k leaves
 * float32. L itself bounds L(x0, eps) at every eps, which the message says.
 */
export function epsError(eps: number, globalBound?: number | null): string | null {
  if (!Number.isFinite(eps) || eps <= 0) return `eps must be finite and > 0 (got ${eps})`;
  if (eps > MAX_EPS) return `eps must be at most ${MAX_EPS} (got ${eps}): larger radii overflow the bound's arithmetic`;
  if (globalBound != null && Number.isFinite(globalBound) && eps * globalBound > MAX_SCALED_RADIUS) {
    return `eps ${eps} times the model's global bound ${globalBound.toPrecision(4)} exceeds ${MAX_SCALED_RADIUS.toPrecision(2)}, past single precision; the global bound itself bounds L(x0, eps) at every eps`;
  }
  return null;
}
