/**
 * Client-side routes under /app (the server answers every /app path with the page):
 *   /app/                 certify: models, inputs, a new run
 *   /app/models/<id>      the same, with a model selected
 *   /app/runs             past runs, filtered by ?model= and ?status=
 *   /app/runs/<id>        one run: progress, then its results
 *   /app/datasets         datasets: import one, certify it on a model, past dataset runs
 *   /app/datasets/runs/<id>  one dataset run: progress, certified accuracy, radii, the images
 * An old-style hash (#/runs/<id>) is turned into the path form.
 */
import { useEffect, useState } from 'preact/hooks';

export const BASE = '/app';

export type Route =
  | { page: 'certify'; modelId: string | null }
  | { page: 'runs'; modelId: string | null; status: string | null }
  | { page: 'run'; runId: string }
  | { page: 'datasets' }
  | { page: 'dataset-run'; datasetRunId: string };

export function parseRoute(pathname: string, search: string): Route {
  const path = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : pathname;
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const query = new URLSearchParams(search);
  if (parts[0] === 'runs' && parts[1]) return { page: 'run', runId: parts[1] };
  if (parts[0] === 'runs') return { page: 'runs', modelId: query.get('model'), status: query.get('status') };
  if (parts[0] === 'models' && parts[1]) return { page: 'certify', modelId: parts[1] };
  if (parts[0] === 'datasets' && parts[1] === 'runs' && parts[2]) return { page: 'dataset-run', datasetRunId: parts[2] };
  if (parts[0] === 'datasets') return { page: 'datasets' };
  return { page: 'certify', modelId: null };
}

export function href(route: Route): string {
  switch (route.page) {
    case 'certify':
      return route.modelId ? `${BASE}/models/${encodeURIComponent(route.modelId)}` : `${BASE}/`;
    case 'run':
      return `${BASE}/runs/${encodeURIComponent(route.runId)}`;
    case 'datasets':
      return `${BASE}/datasets`;
    case 'dataset-run':
      return `${BASE}/datasets/runs/${encodeURIComponent(route.datasetRunId)}`;
    case 'runs': {
      const q = new URLSearchParams();
      if (route.modelId) q.set('model', route.modelId);
      if (route.status) q.set('status', route.status);
      const s = q.toString();
      return `${BASE}/runs${s ? `?${s}` : ''}`;
    }
  }
}

const CHANGE = 'lipcert:navigate';

export function navigate(to: string, replace = false): void {
  if (to === location.pathname + location.search) return;
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  window.dispatchEvent(new Event(CHANGE));
  window.scrollTo(0, 0);
}

function current(): Route {
  if (location.hash.startsWith('#/')) {
    const [path, search = ''] = location.hash.slice(1).split('?');
    history.replaceState(null, '', `${BASE}${path}${search ? `?${search}` : ''}`);
  }
  return parseRoute(location.pathname, location.search);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const update = () => setRoute(current());
    window.addEventListener('popstate', update);
    window.addEventListener(CHANGE, update);
    return () => {
      window.removeEventListener('popstate', update);
      window.removeEventListener(CHANGE, update);
    };
  }, []);
  return route;
}

/** A link that changes the route without reloading the page (modifier clicks open a tab as usual). */
export function onLinkClick(event: MouseEvent): void {
  const anchor = event.currentTarget as HTMLAnchorElement;
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(anchor.getAttribute('href')!);
}
