/** The Run selection for this server: the core fields plus whatever extras its schema has (extras.ts). */
import { gql } from './api';
import { SCHEMA_TYPES, extraResultSelection, type SchemaTypes } from './extras';
import { runFields } from './queries';

let selection: Promise<string> | null = null;

export function runSelection(): Promise<string> {
  selection ??= gql<{ __schema: SchemaTypes }>(SCHEMA_TYPES).then(
    (data) => runFields(extraResultSelection(data.__schema)),
    () => runFields(),
  );
  return selection;
}
