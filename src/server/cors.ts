/**
 * CORS for browser frontends served from another origin. By default only local origins
 * (localhost, 127.0.0.1, [::1], any port) may call the server: it has no authentication, so an
 * arbitrary web page must not drive it. `'*'` allows every origin.
 */
import type { NextFunction, Request, Response } from 'express';

const LOCAL_ORIGIN = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/;

export type CorsOrigins = '*' | 'local' | string[];

export function originAllowed(origin: string, allowed: CorsOrigins): boolean {
  if (allowed === '*') return true;
  if (allowed === 'local') return LOCAL_ORIGIN.test(origin);
  return allowed.includes(origin);
}

export function cors(allowed: CorsOrigins) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const origin = req.headers.origin;
    if (origin && originAllowed(origin, allowed)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
      if (req.method === 'OPTIONS') {
        res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
        res.setHeader(
          'Access-Control-Allow-Headers',
          req.headers['access-control-request-headers'] ?? 'content-type, apollo-require-preflight',
        );
        res.setHeader('Access-Control-Max-Age', '600');
      }
    }
    if (req.method === 'OPTIONS') {
      res.status(204).end();
      return;
    }
    next();
  };
}
