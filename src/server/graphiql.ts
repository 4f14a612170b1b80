/**
 * The offline GraphiQL page served at / (and instead of Apollo's CDN landing page at /graphql).
 * @graphql-yoga/render-graphiql inlines GraphiQL's 9 MB bundle, so it is loaded on first use.
 *
 * With LIPCERT_TOKEN, the token goes into the headers editor ({"Authorization": "Bearer …"}), which
 * GraphiQL sends with every HTTP request but not in graphql-ws's connection_init (graphql/graphiql
 * #2181, #3736). A small script before GraphiQL's bundle closes that gap: it remembers the
 * Authorization header of the page's last request and adds it to connection_init as `authorization`.
 */
const pages = new Map<boolean, Promise<string>>();

/** Runs in the browser before GraphiQL: the headers editor's Authorization also opens the WebSocket. */
const CONNECTION_INIT_AUTHORIZATION = `<script>
(() => {
  let authorization = null;
  const nativeFetch = window.fetch.bind(window);
  window.fetch = (input, init) => {
    const headers = new Headers(init && init.headers ? init.headers : input instanceof Request ? input.headers : undefined);
    if (headers.has('authorization')) authorization = headers.get('authorization');
    return nativeFetch(input, init);
  };
  const NativeWebSocket = window.WebSocket;
  window.WebSocket = class extends NativeWebSocket {
    send(data) {
      if (authorization && typeof data === 'string') {
        try {
          const message = JSON.parse(data);
          if (message && message.type === 'connection_init') {
            message.payload = Object.assign({}, message.payload, { authorization });
            data = JSON.stringify(message);
          }
        } catch {}
      }
      super.send(data);
    }
  };
})();
</script>`;

/** The page; `tokenRequired` opens the headers editor with a template for the token. */
export function graphiqlPage(tokenRequired = false): Promise<string> {
  let page = pages.get(tokenRequired);
  if (!page) {
    page = import('@graphql-yoga/render-graphiql').then(({ renderGraphiQL }) =>
      renderGraphiQL({
        title: 'lipcert',
        endpoint: '/graphql',
        subscriptionsProtocol: 'WS',
        ...(tokenRequired
          ? { headers: JSON.stringify({ Authorization: 'Bearer <LIPCERT_TOKEN>' }, null, 2), defaultEditorToolsVisibility: 'headers' as const }
          : {}),
        defaultQuery: `# lipcert: local Lipschitz bounds of ReLU networks
query Models {
  models {
    id name inputShape parameterCount globalBound globalBoundQuality globalBoundStatus
    inputs { id name predictedClass margin }
  }
}
`,
      }).replace(/<head>/i, (head) => `${head}\n${CONNECTION_INIT_AUTHORIZATION}`),
    );
    pages.set(tokenRequired, page);
  }
  return page;
}
