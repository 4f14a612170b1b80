/**
 * How errors reach a GraphQL client: a LipcertError (the user's mistake) becomes a GraphQLError with
 * its code in `extensions.code`; anything else is our bug and is reported as INTERNAL_SERVER_ERROR.
 */
import { GraphQLError } from 'graphql';
import { LipcertError, type ErrorCode } from '../errors.js';

/** A user mistake found by the server itself (as opposed to the library). */
export function userError(code: ErrorCode, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code } });
}

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
