/**
 * Vite build of the web page: web/ → dist/web, served by the lipcert server at /app.
 * `npm run dev:web` serves it with hot reload and proxies /graphql (HTTP and WebSocket) to a
 * server started with `npm start` (LIPCERT_URL, default http://127.0.0.1:4000).
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const target = process.env.LIPCERT_URL ?? 'http://127.0.0.1:4000';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/app/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    // Chart.js is most of the bundle; one file is fine for a page served from localhost.
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: {
      '/graphql': { target, ws: true },
      '/models': { target },
    },
  },
});
