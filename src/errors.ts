/**
 * Typed errors. A LipcertError is the user's mistake (bad model, bad input, bad option) and carries a
 * code that the CLI maps to exit status 2 and the GraphQL layer passes on as `extensions.code`.
 * `invariant()` is for our own bugs: it throws a plain Error.
 */

export type ErrorCode =
  | 'UNSUPPORTED_MODEL' // the ONNX file is malformed, not a chain, or uses an op we cannot bound
  | 'BAD_USER_INPUT' // wrong input shape, bad eps, unreadable input file, bad option
  | 'NOT_FOUND' // unknown id or missing file
  | 'BACKEND_UNAVAILABLE' // the requested compute backend cannot start on this machine
  | 'CANCELLED' // the caller aborted the computation
  | 'PAYLOAD_TOO_LARGE'
  | 'RESOURCE_LIMIT' // the analysis would need more memory than this machine allows (model/resources.ts)
  | 'NUMERIC_OVERFLOW' // a bound left the range of floating point (too large an eps or weights)
  | 'QUERY_TOO_COMPLEX' // a GraphQL request nested too deep or asking for too much at once
  | 'UNAUTHENTICATED' // the server wants LIPCERT_TOKEN and the request did not carry it
  | 'FORBIDDEN'; // a request from a browser origin or for a host name the server does not serve

export class LipcertError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The ONNX node (or other item) the error is about, where there is one. */
    readonly node?: string,
  ) {
    super(message);
    this.name = 'LipcertError';
  }
}

export class UnsupportedModelError extends LipcertError {
  constructor(message: string, node?: string) {
    super('UNSUPPORTED_MODEL', node ? `node '${node}': ${message}` : message, node);
    this.name = 'UnsupportedModelError';
  }
}

export class BadInputError extends LipcertError {
  constructor(message: string) {
    super('BAD_USER_INPUT', message);
    this.name = 'BadInputError';
  }
}

export class CancelledError extends LipcertError {
  constructor(message = 'computation cancelled') {
    super('CANCELLED', message);
    this.name = 'CancelledError';
  }
}

export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`lipcert internal error: ${message}`);
}
