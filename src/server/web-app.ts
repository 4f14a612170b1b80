/**
 * The web page at /app: the Vite build in dist/web (static files), with every other GET under /app
 * answered by its index.html so that a client-side URL such as /app/runs/<id> survives a reload.
 * The page speaks only to the GraphQL API; this router holds no logic of its own.
 */
import { existsSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Request, type Response, type Router } from 'express';

/** dist/web at the package root, found upwards from this file (src/server/ or dist/src/server/). */
export function defaultWebDir(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'schema.graphql'))) return join(dir, 'dist', 'web');
    dir = dirname(dir);
  }
  return null;
}

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>lipcert</title>
<body style="font:15px system-ui,sans-serif;max-width:40rem;margin:4rem auto;color:#1f2933">
<h1>The lipcert web page is not built</h1>
<p>Run <code>npm run build</code> (or <code>npm install</code>, which builds it) and reload.
GraphiQL is at <a href="/">/</a>.</p></body>`;

export function webApp(webDir: string | null): Router {
  const router = express.Router();
  const index = webDir ? join(webDir, 'index.html') : null;
  const assets = webDir ? join(webDir, 'assets') + sep : null;
  // /app → /app/, so that the page's relative URLs resolve under it.
  router.use((req, res, next) => {
    const [path, query] = req.originalUrl.split(/\?(.*)/s);
    if (path === req.baseUrl && (req.method === 'GET' || req.method === 'HEAD')) {
      res.redirect(301, `${path}/${query ? `?${query}` : ''}`);
      return;
    }
    next();
  });
  // Hashed file names under assets/ never change; index.html always is revalidated.
  router.use(
    express.static(webDir ?? '/nonexistent', {
      index: false,
      redirect: false,
      setHeaders(res, path) {
        res.setHeader('cache-control', assets && path.startsWith(assets) ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    }),
  );
  router.get('/{*path}', (req: Request, res: Response) => {
    // A missing file (it has an extension) is a 404, not the page.
    if (/\.[a-z0-9]+$/i.test(req.path)) {
      res.status(404).type('text').send('not found');
      return;
    }
    if (!index || !existsSync(index)) {
      res.status(503).type('html').send(NOT_BUILT);
      return;
    }
    res.setHeader('cache-control', 'no-cache');
    res.sendFile(index);
  });
  return router;
}
