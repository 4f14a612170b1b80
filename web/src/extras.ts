/**
 * Result fields beyond the core certification that a server may offer: lower bounds on L(x0, ε)
 * found by search, and adversarial perturbations found by attacks. The page asks the schema (by
 * introspection) which of them exist, selects every scalar inside them, and reads the entries by
 * their shape: a lower bound has `eps` and `bound`; an attack has `perturbation`.
 */
interface TypeRef {
  kind: string;
  name: string | null;
  ofType: TypeRef | null;
}
interface IntrospectedType {
  name: string;
  kind: string;
  fields: { name: string; type: TypeRef }[] | null;
}
export interface SchemaTypes {
  types: IntrospectedType[];
}

export const SCHEMA_TYPES = `query SchemaTypes {
  __schema { types { name kind fields { name type { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}`;

const EXTRA_FIELD = /lower|attack/i;
const MAX_DEPTH = 3;

function namedType(ref: TypeRef): TypeRef {
  let t = ref;
  while (t.ofType) t = t.ofType;
  return t;
}

/** A selection of every scalar and enum below `typeName`, `depth` object levels deep. */
function selectAll(types: Map<string, IntrospectedType>, typeName: string, depth: number, seen: Set<string>): string {
  const type = types.get(typeName);
  if (!type?.fields || seen.has(typeName)) return '';
  const inner = new Set(seen).add(typeName);
  const parts: string[] = [];
  for (const field of type.fields) {
    const named = namedType(field.type);
    if (named.kind === 'SCALAR' || named.kind === 'ENUM') parts.push(field.name);
    else if (named.kind === 'OBJECT' && named.name && depth > 1) {
      const sub = selectAll(types, named.name, depth - 1, inner);
      if (sub) parts.push(`${field.name} { ${sub} }`);
    }
  }
  return parts.join(' ');
}

/** The extra selection inside `result { … }`: '' where the server has none of these fields. */
export function extraResultSelection(schema: SchemaTypes): string {
  const types = new Map(schema.types.map((t) => [t.name, t]));
  const result = types.get('CertifyResult');
  if (!result?.fields) return '';
  const parts: string[] = [];
  for (const field of result.fields) {
    if (!EXTRA_FIELD.test(field.name)) continue;
    const named = namedType(field.type);
    if (named.kind === 'SCALAR' || named.kind === 'ENUM') parts.push(field.name);
    else if (named.kind === 'OBJECT' && named.name) {
      const sub = selectAll(types, named.name, MAX_DEPTH, new Set(['CertifyResult']));
      if (sub) parts.push(`${field.name} { ${sub} }`);
    }
  }
  return parts.join('\n    ');
}

export interface LowerBoundEntry {
  eps: number;
  bound: number;
  method: string | null;
  distance: number | null;
}
export interface AttackEntry {
  method: string;
  perturbation: number | null;
  adversarialClass: number | null;
  perturbationLinf: number | null;
  seconds: number | null;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** Every object below `value` (inclusive) that `accept` takes, depth first. */
function collect(value: unknown, accept: (o: Json) => boolean, out: Json[] = []): Json[] {
  if (Array.isArray(value)) for (const item of value) collect(item, accept, out);
  else if (isObject(value)) {
    if (accept(value)) out.push(value);
    else for (const v of Object.values(value)) collect(v, accept, out);
  }
  return out;
}

function extrasOf(result: Json): unknown[] {
  return Object.entries(result)
    .filter(([name]) => EXTRA_FIELD.test(name))
    .map(([, v]) => v);
}

/** Lower bounds on L(x0, ε) in the result's extra fields (attained ratios: L ≥ bound). */
export function lowerBoundsOf(result: Json): LowerBoundEntry[] {
  return collect(extrasOf(result), (o) => num(o.eps) !== null && num(o.bound) !== null && !('perturbation' in o)).map((o) => ({
    eps: num(o.eps)!,
    bound: num(o.bound)!,
    method: str(o.method),
    distance: num(o.distance),
  }));
}

/** Adversarial perturbations in the result's extra fields (each an upper bound on the minimal one). */
export function attacksOf(result: Json): AttackEntry[] {
  return collect(extrasOf(result), (o) => 'perturbation' in o).map((o) => ({
    method: str(o.method) ?? 'attack',
    perturbation: num(o.perturbation),
    adversarialClass: num(o.adversarialClass),
    perturbationLinf: num(o.perturbationLinf),
    seconds: num(o.seconds),
  }));
}
