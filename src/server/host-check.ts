/**
 * Which requests reach the API at all, before any GraphQL: the `Host` header must name this server
 * (a page whose DNS name was rebound to 127.0.0.1 sends its own name: DNS rebinding), and a
 * WebSocket upgrade from a browser must come from an allowed origin (CORS protects fetch only; a
 * browser opens a WebSocket to any site and only tells the server its `Origin`).
 *
 * Names answered by default: `localhost`, `*.localhost` and IP literals (a rebinding attack needs a
 * DNS name, so an address in `Host` cannot be one). `LIPCERT_ALLOWED_HOSTS` adds names (`.example.org`
 * also allows its subdomains; `*` turns the check off).
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { NextFunction, Request, Response } from 'express';
import { originAllowed, type CorsOrigins } from './cors.js';

/** Host names the server answers to besides the defaults: a list, or '*' for any. */
export type AllowedHosts = '*' | string[];

/** The host name of a `Host` header (or of an origin's authority), lower case, without port or brackets. */
export function hostName(authority: string): string {
  const trimmed = authority.trim().toLowerCase();
  const name = trimmed.startsWith('[') ? trimmed.slice(1, trimmed.indexOf(']') > 0 ? trimmed.indexOf(']') : undefined) : trimmed.replace(/:\d*$/, '');
  return name.replace(/\.$/, '');
}

export function hostAllowed(hostHeader: string | undefined, allowed: AllowedHosts): boolean {
  if (allowed === '*') return true;
  if (hostHeader === undefined) return true; // HTTP/1.0 without Host: not a browser, so not a rebound page
  const name = hostName(hostHeader);
  if (name === '') return false;
  if (name === 'localhost' || name.endsWith('.localhost') || isIP(name) !== 0) return true;
  return allowed.some((entry) => {
    const e = entry.trim().toLowerCase().replace(/\.$/, '');
    return e.startsWith('.') ? name === e.slice(1) || name.endsWith(e) : name === e;
  });
}

/** `LIPCERT_ALLOWED_HOSTS`: '*' or comma-separated names (empty: the defaults only). */
export function parseAllowedHosts(value: string | undefined): AllowedHosts {
  if (value?.trim() === '*') return '*';
  return (value ?? '').split(',').map((h) => h.trim()).filter((h) => h !== '');
}

function refusedHost(host: string | undefined): string {
  return `this server does not answer to the host name '${hostName(host ?? '')}'; add it to LIPCERT_ALLOWED_HOSTS to serve it`;
}

/** Express middleware: 403 FORBIDDEN for a `Host` the server does not answer to. */
export function hostCheck(allowed: AllowedHosts) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (hostAllowed(req.headers.host, allowed)) return next();
    res.status(403).json({ errors: [{ message: refusedHost(req.headers.host), extensions: { code: 'FORBIDDEN' } }] });
  };
}

/** Same origin: the page was served by this server under the name it now connects to. */
function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}

/**
 * Why a WebSocket upgrade is refused, or null to accept it: a `Host` the server does not answer to,
 * or an `Origin` (sent by every browser, by no other client unless asked) neither allowed by the
 * CORS setting nor this server's own.
 */
export function upgradeRefusal(req: IncomingMessage, origins: CorsOrigins, hosts: AllowedHosts): string | null {
  if (!hostAllowed(req.headers.host, hosts)) return refusedHost(req.headers.host);
  const origin = req.headers.origin;
  if (origin !== undefined && !originAllowed(origin, origins) && !sameOrigin(origin, req.headers.host)) {
    return `WebSocket connections from the origin '${origin}' are not allowed (LIPCERT_CORS_ORIGINS)`;
  }
  return null;
}

/** `verifyClient` of the `ws` server: refuses the upgrade with 403 before any GraphQL message. */
export function verifyUpgrade(origins: CorsOrigins, hosts: AllowedHosts) {
  return (info: { req: IncomingMessage }, callback: (accept: boolean, code?: number, message?: string) => void): void => {
    const refusal = upgradeRefusal(info.req, origins, hosts);
    if (refusal === null) callback(true);
    else callback(false, 403, refusal);
  };
}
