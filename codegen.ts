/**
 * GraphQL Code Generator: the server's and the web page's TypeScript types for the API, from
 * schema.graphql (offline, the local file only). Run by `npm run codegen` (part of `npm run build`,
 * so of `npm install`); the outputs are generated, not committed (.gitignore).
 * - src/server/generated/graphql.ts: the schema's types and resolver signatures, with enums as the
 *   library's internal values ('tight', 'estimate', ...) and store rows as the parents of Model,
 *   Input and Run (resolvers.ts maps one to the other).
 * - web/src/generated/graphql.ts: the page's operations (web/src/graphql/*.graphql) as typed
 *   document strings with the types of their variables and answers.
 */
import type { CodegenConfig } from '@graphql-codegen/cli';

const LIBRARY_ENUM_VALUES = {
  BoundQuality: { EXACT: 'exact', UPPER: 'upper', ESTIMATE: 'estimate' },
  Backend: { AUTO: 'auto', CPU: 'cpu', WEBGPU: 'webgpu' },
  Method: { TIGHT: 'tight', PAPER: 'paper' },
  Certificate: { DETERMINISTIC: 'deterministic', PROBABILISTIC: 'probabilistic', ESTIMATE: 'estimate' },
  AttackMethod: { FGSM: 'fgsm', IFGSM: 'ifgsm', PGD: 'pgd' },
  LowerBoundMethod: { GRADIENT: 'gradient', RANDOM: 'random' },
  SearchKind: { LOWER: 'lower', UPPER: 'upper' },
};

const config: CodegenConfig = {
  schema: 'schema.graphql',
  silent: true,
  generates: {
    'src/server/generated/graphql.ts': {
      plugins: [{ add: { content: '/* Generated from schema.graphql by GraphQL Code Generator (codegen.ts): do not edit. */' } }, 'typescript', 'typescript-resolvers'],
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        enumValues: LIBRARY_ENUM_VALUES,
        // An enum mapped to its own (generated) type keeps the library's values in resolver types.
        mappers: {
          ...Object.fromEntries(Object.keys(LIBRARY_ENUM_VALUES).map((name) => [name, name])),
          Model: '../../store/db.js#ModelRow',
          Input: '../../store/db.js#InputRow',
          Run: '../../store/db.js#RunRow',
          RunTimings: '../../store/db.js#RunRow',
          RunEvent: '../events.js#RunEventPayload',
          Dataset: '../../store/db.js#DatasetRow',
          DatasetRun: '../../store/db.js#DatasetRunRow',
          DatasetImage: '../../store/db.js#DatasetImageRow',
          DatasetRunEvent: '../events.js#DatasetRunEventPayload',
        },
      },
    },
    'web/src/generated/graphql.ts': {
      documents: 'web/src/graphql/*.graphql',
      plugins: [{ add: { content: '/* Generated from schema.graphql and web/src/graphql/ by GraphQL Code Generator (codegen.ts): do not edit. */' } }, 'typescript-operations', 'typed-document-node'],
      config: { useTypeImports: true, enumsAsTypes: true, documentMode: 'string', avoidOptionals: { field: true, inputValue: false, object: true } },
    },
  },
};
export default config;
