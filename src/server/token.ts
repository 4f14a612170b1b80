/**
 * The API token (`LIPCERT_TOKEN`). When set, every HTTP request to /graphql and /models carries
 * `Authorization: Bearer <token>` and every graphql-ws connection the same string as `authorization`
 * in its connection_init payload. A server that listens beyond the loopback interface needs a token
 * unless the operator says otherwise (`LIPCERT_ALLOW_NO_TOKEN=1`).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/** Whether an Authorization value is `Bearer <token>` (compared in constant time). */
export function bearerMatches(authorization: unknown, token: string): boolean {
  if (typeof authorization !== 'string') return false;
  const match = /^Bearer\s+(.+)$/i.exec(authorization.trim());
  return match !== null && timingSafeEqual(digest(match[1]), digest(token));
}

const UNAUTHENTICATED_MESSAGE = 'this server needs its API token: send the header Authorization: Bearer <LIPCERT_TOKEN>';

/** Express middleware: 401 UNAUTHENTICATED without the token (a no-op when there is none). */
export function requireToken(token: string | undefined) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!token || bearerMatches(req.headers.authorization, token)) return next();
    res.setHeader('WWW-Authenticate', 'Bearer realm="lipcert"');
    res.status(401).json({ errors: [{ message: UNAUTHENTICATED_MESSAGE, extensions: { code: 'UNAUTHENTICATED' } }] });
  };
}

/** graphql-ws `onConnect`: false (close 4403 Forbidden) unless connection_init carries the token. */
export function connectionAuthorised(token: string | undefined) {
  return (ctx: { connectionParams?: Readonly<Record<string, unknown>> }): boolean =>
    !token || bearerMatches(ctx.connectionParams?.authorization, token);
}

/** An interface name or address that only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1';
}

/** Why the server must not start on `host` as configured, or null: other machines without a token. */
export function exposureProblem(host: string, token: string | undefined, allowNoToken: boolean): string | null {
  if (isLoopback(host) || token || allowNoToken) return null;
  return `HOST=${host} lets other machines reach the server, which then needs LIPCERT_TOKEN (or LIPCERT_ALLOW_NO_TOKEN=1 to serve without one)`;
}
