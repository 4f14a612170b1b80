/**
 * How errors reach a GraphQL client, in one place: the service throws only LipcertError (the user's
 * mistake), which becomes a GraphQLError with its code in `extensions.code`; anything else is our bug
 * and is reported as INTERNAL_SERVER_ERROR.
 */
import { GraphQLError } from 'graphql';
import { LipcertError } from '../errors.js';

export function toGraphQLError(error: unknown): GraphQLError {
  if (error instanceof GraphQLError) return error;
  if (error instanceof LipcertError) {
    return new GraphQLError(error.message, { extensions: { code: error.code }, originalError: error });
  }
  const e = error instanceof Error ? error : new Error(String(error));
  return new GraphQLError(e.message, { extensions: { code: 'INTERNAL_SERVER_ERROR' }, originalError: e });
}

/** `{ code, message }` of a failed run. */
export function runErrorOf(error: unknown): { code: string; message: string } {
  if (error instanceof LipcertError) return { code: error.code, message: error.message };
  const e = error instanceof Error ? error : new Error(String(error));
  return { code: 'INTERNAL_SERVER_ERROR', message: e.message };
}

/** The row, or NOT_FOUND naming what was looked for. */
export function found<T>(row: T | null, what: string, id: string): T {
  if (row === null) throw new LipcertError('NOT_FOUND', `no ${what} with id '${id}'`);
  return row;
}
