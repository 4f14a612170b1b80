/**
 * How errors reach a GraphQL client, in one place: the service throws only LipcertError (the user's
 * mistake), which becomes a GraphQLError with its code in `extensions.code`; anything else is our bug,
 * reported as INTERNAL_SERVER_ERROR with one fixed sentence (its own text, a library's words or a
 * typed-array length, goes to the server's log, not to the client).
 */
import { GraphQLError } from 'graphql';
import { LipcertError } from '../errors.js';

export function toGraphQLError(error: unknown): GraphQLError {
  if (error instanceof GraphQLError) return error;
  if (error instanceof LipcertError) {
    return new GraphQLError(error.message, { extensions: { code: error.code }, originalError: error });
  }
  const e = error instanceof Error ? error : new Error(String(error));
  console.error('lipcert: internal error:', e);
  return new GraphQLError(INTERNAL_MESSAGE, { extensions: { code: 'INTERNAL_SERVER_ERROR' }, originalError: e });
}

/** What a client reads of an error that is not its mistake (the details are in the server's log). */
export const INTERNAL_MESSAGE = "internal error in lipcert: the server's log has the details";

/** `{ code, message }` of a failed run (the caller logs an internal error's details). */
export function runErrorOf(error: unknown): { code: string; message: string } {
  if (error instanceof LipcertError) return { code: error.code, message: error.message };
  return { code: 'INTERNAL_SERVER_ERROR', message: INTERNAL_MESSAGE };
}

/** NOT_FOUND naming what was looked for. */
export function notFound(what: string, id: string): LipcertError {
  return new LipcertError('NOT_FOUND', `no ${what} with id '${id}'`);
}

/** The row, or NOT_FOUND naming what was looked for. */
export function found<T>(row: T | null, what: string, id: string): T {
  if (row === null) throw notFound(what, id);
  return row;
}
