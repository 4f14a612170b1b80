/**
 * How a graphql-ws `subscribe` message becomes an operation, with the same limits and error codes
 * as HTTP (Apollo): the nesting and token scan, parsing with a token limit (GRAPHQL_PARSE_FAILED), validation
 * with the server's rules (GRAPHQL_VALIDATION_FAILED), the cost limit (QUERY_TOO_COMPLEX); and every
 * error of a result carries a code (INTERNAL_SERVER_ERROR where a resolver gave none).
 */
import {
  GraphQLError,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type FormattedExecutionResult,
  type GraphQLSchema,
  type ValidationRule,
} from 'graphql';
import { costError, MAX_TOKENS, sourceError } from './query-limits.js';

/** A copy of `error` with `code` in extensions unless it has one. */
export function withCode(error: GraphQLError, code: string): GraphQLError {
  if (error.extensions?.code) return error;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: { ...error.extensions, code },
  });
}

export interface OperationLimits {
  schema: GraphQLSchema;
  /** Validation rules beyond graphql's specified ones (the depth limit). */
  rules: ValidationRule[];
  maxCost: number;
}

/** graphql-ws `onSubscribe`: the execution arguments, or the errors (with codes) to answer instead. */
export function prepareOperation(
  limits: OperationLimits,
  payload: { query: string; operationName?: string | null; variables?: Record<string, unknown> | null },
): ExecutionArgs | readonly GraphQLError[] {
  const tooLarge = sourceError(payload.query);
  if (tooLarge) return [tooLarge];
  let document: DocumentNode;
  try {
    document = parse(payload.query, { maxTokens: MAX_TOKENS });
  } catch (error) {
    const e = error instanceof GraphQLError ? error : new GraphQLError(String((error as Error)?.message ?? error));
    return [withCode(e, 'GRAPHQL_PARSE_FAILED')];
  }
  const invalid = validate(limits.schema, document, [...specifiedRules, ...limits.rules]);
  if (invalid.length > 0) return invalid.map((e) => withCode(e, 'GRAPHQL_VALIDATION_FAILED'));
  const expensive = costError(limits.schema, document, payload.variables, payload.operationName, limits.maxCost);
  if (expensive) return [expensive];
  return { schema: limits.schema, document, variableValues: payload.variables, operationName: payload.operationName };
}

/** graphql-ws `onNext`: the result with a code on each error. */
export function resultWithCodes(result: ExecutionResult): FormattedExecutionResult | undefined {
  if (!result.errors?.some((e) => !e.extensions?.code)) return undefined; // unchanged
  return { ...result, errors: result.errors.map((e) => withCode(e, 'INTERNAL_SERVER_ERROR').toJSON()) };
}
