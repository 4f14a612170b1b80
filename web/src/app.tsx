/** The page's frame: header with navigation, the routed page, and a boundary that keeps a render error from blanking the page. */
import { Component, type ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { gql } from './api';
import { TokenButton, TokenPanel } from './components/token';
import { Link } from './components/ui';
import { CertifyPage } from './pages/certify';
import { DatasetRunPage, DatasetsPage } from './pages/datasets';
import { RunPage } from './pages/run';
import { RunsPage } from './pages/runs';
import { ABOUT } from './queries';
import { href, useRoute, type Route } from './router';

class ErrorBoundary extends Component<{ children: ComponentChildren; resetKey: string }, { error: Error | null; key: string }> {
  override state = { error: null as Error | null, key: this.props.resetKey };
  static getDerivedStateFromProps(props: { resetKey: string }, state: { key: string }) {
    return props.resetKey !== state.key ? { error: null, key: props.resetKey } : null;
  }
  override componentDidCatch(error: Error) {
    console.error('lipcert page error:', error);
    this.setState({ error });
  }
  override render() {
    if (this.state.error) {
      return (
        <div class="callout error" role="alert">
          <strong>This part of the page failed to display.</strong> {this.state.error.message}
          <div>
            <a href={location.href}>Reload</a>
          </div>
        </div>
      );
    }
    return this.props.children;
  }
}

function page(route: Route) {
  switch (route.page) {
    case 'certify':
      return <CertifyPage modelId={route.modelId} />;
    case 'runs':
      return <RunsPage modelId={route.modelId} status={route.status} />;
    case 'run':
      return <RunPage key={route.runId} runId={route.runId} />;
    case 'datasets':
      return <DatasetsPage />;
    case 'dataset-run':
      return <DatasetRunPage key={route.datasetRunId} datasetRunId={route.datasetRunId} />;
  }
}

export function App() {
  const route = useRoute();
  const [engine, setEngine] = useState<string | null>(null);
  const [tokenOpen, setTokenOpen] = useState(false);
  useEffect(() => {
    gql(ABOUT).then((d) => setEngine(d.about.engineVersion), () => setEngine(null));
  }, []);
  useEffect(() => {
    const titles: Record<Route['page'], string> = { certify: 'lipcert', runs: 'Runs · lipcert', run: 'Run', datasets: 'Datasets · lipcert', 'dataset-run': 'Dataset run' };
    document.title = route.page === 'run' ? `Run ${route.runId.slice(0, 8)} · lipcert` : route.page === 'dataset-run' ? `Dataset run ${route.datasetRunId.slice(0, 8)} · lipcert` : titles[route.page];
  }, [route]);
  return (
    <>
      <header class="topbar">
        <div class="topbar-inner">
          <Link href={href({ page: 'certify', modelId: null })} class="brand">
            <svg viewBox="0 0 16 16" width="22" height="22" aria-hidden="true">
              <rect width="16" height="16" rx="3.5" fill="#2156c9" />
              <path d="M3 12 L7 6 L10 9 L13 4" stroke="white" stroke-width="1.6" fill="none" stroke-linecap="round" stroke-linejoin="round" />
            </svg>
            <span>lipcert</span>
          </Link>
          <span class="tagline">certified local Lipschitz bounds of ReLU networks</span>
          <nav>
            <Link href={href({ page: 'certify', modelId: null })} class={route.page === 'certify' ? 'active' : ''}>
              Certify
            </Link>
            <Link href={href({ page: 'runs', modelId: null, status: null })} class={route.page === 'runs' || route.page === 'run' ? 'active' : ''}>
              Runs
            </Link>
            <Link href={href({ page: 'datasets' })} class={route.page === 'datasets' || route.page === 'dataset-run' ? 'active' : ''}>
              Datasets
            </Link>
            <a href="/" title="The GraphQL API in GraphiQL">
              GraphiQL ↗
            </a>
            <TokenButton onClick={() => setTokenOpen(!tokenOpen)} />
          </nav>
        </div>
      </header>
      <TokenPanel open={tokenOpen} />
      <main class="container">
        <ErrorBoundary resetKey={JSON.stringify(route)}>{page(route)}</ErrorBoundary>
      </main>
      <footer class="container footer">
        <span>Bounds after Avant &amp; Morgansen, “Analytical bounds on the local Lipschitz constants of ReLU networks”, IEEE TNNLS 2023.</span>
        {engine && <span>engine {engine}</span>}
      </footer>
    </>
  );
}
