/**
 * The offline GraphiQL page served at / (and instead of Apollo's CDN landing page at /graphql).
 * @graphql-yoga/render-graphiql inlines GraphiQL's 9 MB bundle, so it is loaded on first use.
 */
let page: Promise<string> | null = null;

export function graphiqlPage(): Promise<string> {
  page ??= import('@graphql-yoga/render-graphiql').then(({ renderGraphiQL }) =>
    renderGraphiQL({
      title: 'lipcert',
      endpoint: '/graphql',
      subscriptionsProtocol: 'WS',
      defaultQuery: `# lipcert: local Lipschitz bounds of ReLU networks
query Models {
  models {
    id name inputShape parameterCount globalBound globalBoundQuality globalBoundStatus
    inputs { id name predictedClass margin }
  }
}
`,
    }),
  );
  return page;
}
