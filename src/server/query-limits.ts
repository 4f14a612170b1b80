/**
 * Limits on what one GraphQL request may ask for, decided before anything runs:
 * - nesting: brackets deeper than MAX_NESTING are refused by a scan of the text, before the parser
 *   (graphql-js parses recursively: a few thousand levels exhaust the stack);
 * - tokens: more than MAX_TOKENS are refused by the lexer, also before parsing and validation (the
 *   validation of a request as long as 1000 aliased fields takes the event loop for a second);
 * - cost: fields × list sizes, aliases counted, by graphql-query-complexity with the estimator below,
 *   at most `maxCost` per operation (variables known: `runs(first: $n)` costs what $n asks for).
 * The same checks serve HTTP (an express guard and an Apollo plugin) and graphql-ws (`prepareOperation`).
 * Every refusal is a GraphQLError with extensions.code QUERY_TOO_COMPLEX.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import type { NextFunction, Request, Response } from 'express';
import {
  getNamedType,
  getNullableType,
  GraphQLError,
  isAbstractType,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isLeafType,
  isListType,
  isObjectType,
  Lexer,
  Source,
  TokenKind,
  type DocumentNode,
  type GraphQLInterfaceType,
  type GraphQLObjectType,
  type GraphQLSchema,
} from 'graphql';
import { getComplexity, type ComplexityEstimator } from 'graphql-query-complexity';

/** Deepest bracket nesting ({, (, [) accepted; the standard introspection query nests 10 deep. */
export const MAX_NESTING = 64;
/** Most tokens in one document (the standard introspection query has about 500). */
export const MAX_TOKENS = 5_000;
/** Default cost limit: one page of 100 runs with every result field fits (about 65 000). */
export const DEFAULT_MAX_COST = 100_000;
/** Assumed length of a list the request does not size (models, layers, inputs, local bounds). */
export const DEFAULT_LIST_SIZE = 10;
/** `runs` without `first` returns this many (service.listRuns). */
export const DEFAULT_PAGE_SIZE = 20;

export function tooComplex(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'QUERY_TOO_COMPLEX' } });
}

/** Deepest nesting of {, ( and [ in a GraphQL source, outside strings and comments. */
export function nestingDepth(source: string): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '#') {
      while (i < source.length && source[i] !== '\n' && source[i] !== '\r') i++;
    } else if (c === '"') {
      if (source.startsWith('"""', i)) {
        let end = source.indexOf('"""', i + 3);
        while (end > 0 && source[end - 1] === '\\') end = source.indexOf('"""', end + 3); // \""" is escaped
        i = end < 0 ? source.length : end + 2;
      } else {
        for (i++; i < source.length && source[i] !== '"' && source[i] !== '\n'; i++) if (source[i] === '\\') i++;
      }
    } else if (c === '{' || c === '(' || c === '[') {
      deepest = Math.max(deepest, ++depth);
    } else if (c === '}' || c === ')' || c === ']') {
      depth--;
    }
  }
  return deepest;
}

/** Whether a source has more than `limit` tokens (lexing stops there; a lexical error is the parser's to report). */
function moreTokensThan(source: string, limit: number): boolean {
  const lexer = new Lexer(new Source(source));
  try {
    for (let n = 0; lexer.advance().kind !== TokenKind.EOF; n++) if (n >= limit) return true;
  } catch {
    return false;
  }
  return false;
}

/** The refusal of a source nested deeper than MAX_NESTING or longer than MAX_TOKENS, or null. */
export function sourceError(source: string): GraphQLError | null {
  const depth = nestingDepth(source);
  if (depth > MAX_NESTING) return tooComplex(`the request nests ${depth} levels deep; the limit is ${MAX_NESTING}`);
  if (moreTokensThan(source, MAX_TOKENS)) return tooComplex(`the request has more than ${MAX_TOKENS} tokens (names, punctuation, values): split it`);
  return null;
}

/**
 * Cost of one field: 1, plus its selection times the number of items it returns — `first` where
 * the field takes it (a page), DEFAULT_LIST_SIZE for other lists of objects (1 for a page's
 * `nodes`, already counted by `first`), the schema's average sizes inside introspection (a
 * recursive introspection selection grows by a type's fields per level, as its answer does; the
 * standard introspection query costs a few thousand). Lists of scalars cost 1.
 */
/** Average list lengths of introspection (`__Type.fields` …) in this schema, at least 1. */
function introspectionSizes(schema: GraphQLSchema): Map<string, number> {
  const types = Object.values(schema.getTypeMap());
  const average = (counts: number[]) => Math.max(1, Math.ceil(counts.reduce((a, b) => a + b, 0) / Math.max(1, counts.length)));
  const objects = types.filter((t) => isObjectType(t) || isInterfaceType(t)) as (GraphQLObjectType | GraphQLInterfaceType)[];
  const fields = objects.flatMap((t) => Object.values(t.getFields()));
  const inputs = types.filter(isInputObjectType);
  const enums = types.filter(isEnumType);
  return new Map([
    ['__Schema.types', types.length],
    ['__Schema.directives', schema.getDirectives().length],
    ['__Type.fields', average(objects.map((t) => Object.keys(t.getFields()).length))],
    ['__Type.inputFields', average(inputs.map((t) => Object.keys(t.getFields()).length))],
    ['__Type.enumValues', average(enums.map((t) => t.getValues().length))],
    ['__Type.interfaces', average(objects.map((t) => t.getInterfaces().length))],
    ['__Type.possibleTypes', average(types.filter(isAbstractType).map((t) => schema.getPossibleTypes(t).length))],
    ['__Field.args', average(fields.map((f) => f.args.length))],
    ['__Directive.args', average(schema.getDirectives().map((d) => d.args.length))],
  ]);
}

function estimator(schema: GraphQLSchema): ComplexityEstimator {
  const introspection = introspectionSizes(schema);
  return ({ type, field, args, childComplexity }) => {
    if (isLeafType(getNamedType(field.type))) return 1;
    let items = 1;
    if (field.args.some((a) => a.name === 'first')) items = typeof args.first === 'number' ? Math.max(0, args.first) : DEFAULT_PAGE_SIZE;
    else if (isListType(getNullableType(field.type))) {
      if (type.name.startsWith('__')) items = introspection.get(`${type.name}.${field.name}`) ?? DEFAULT_LIST_SIZE;
      else items = field.name === 'nodes' && type.name.endsWith('Page') ? 1 : DEFAULT_LIST_SIZE;
    }
    return 1 + items * childComplexity;
  };
}

/** Cost of the operation that would run (fields × list sizes, aliases counted). */
export function queryCost(schema: GraphQLSchema, document: DocumentNode, variables?: Record<string, unknown> | null, operationName?: string | null): number {
  return getComplexity({
    schema,
    query: document,
    variables: variables ?? {},
    operationName: operationName ?? undefined,
    estimators: [estimator(schema)],
    maxQueryNodes: MAX_TOKENS,
  });
}

/** The refusal of an operation costing more than `maxCost`, or null (also when the cost cannot be computed: execution reports that). */
export function costError(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown> | null | undefined,
  operationName: string | null | undefined,
  maxCost: number,
): GraphQLError | null {
  let cost: number;
  try {
    cost = queryCost(schema, document, variables, operationName);
  } catch (error) {
    // Bad variables or an unknown operation are execution's to report; too many nodes is ours.
    if (error instanceof GraphQLError && /maximum allowed number of nodes/.test(error.message)) {
      return tooComplex(`the request selects more than ${MAX_TOKENS} fields`);
    }
    return null;
  }
  if (cost <= maxCost) return null;
  return tooComplex(`the request would cost ${cost} (fields times list sizes); the limit is ${maxCost}: select fewer fields, aliases or items (first)`);
}

/** Apollo plugin: refuses, after validation and before execution, an operation above the cost limit. */
export function queryCostPlugin(maxCost: number): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, request }) {
          const error = costError(schema, document, request.variables, request.operationName, maxCost);
          if (error) {
            throw new GraphQLError(error.message, { extensions: { ...error.extensions, http: { status: 400 } } });
          }
        },
      };
    },
  };
}

/** Express guard before Apollo: refuses a JSON or GET request whose query nests too deep or is too long. */
export function sourceGuard(req: Request, res: Response, next: NextFunction): void {
  const body: unknown = req.body;
  const sources = [req.query?.query, ...(Array.isArray(body) ? body : [body]).map((b) => (b as { query?: unknown } | null)?.query)];
  for (const source of sources) {
    const error = typeof source === 'string' ? sourceError(source) : null;
    if (error) {
      res.status(400).json({ errors: [{ message: error.message, extensions: { code: 'QUERY_TOO_COMPLEX' } }] });
      return;
    }
  }
  next();
}
