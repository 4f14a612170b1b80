/**
 * web/src/extras.ts: the optional result fields (lower bounds, attacks) are selected only where the
 * schema has them, and read by their shape whatever they are called.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSchema, graphqlSync, parse, validate } from 'graphql';
import { attacksOf, extraResultSelection, lowerBoundsOf, SCHEMA_TYPES, type SchemaTypes } from '../../web/src/extras.js';
import { runFields, runQuery, startRunMutation } from '../../web/src/queries.js';

const scalar = (name: string) => ({ kind: 'SCALAR', name, ofType: null });
const nonNull = (of: object) => ({ kind: 'NON_NULL', name: null, ofType: of });
const list = (of: object) => ({ kind: 'LIST', name: null, ofType: of });
const object = (name: string) => ({ kind: 'OBJECT', name, ofType: null });
const field = (name: string, type: object) => ({ name, type });

const core = [field('class', nonNull(scalar('Int'))), field('local', nonNull(list(nonNull(object('LocalBound')))))];

describe('extras', () => {
  test('a schema without the extra fields adds nothing to the selection', () => {
    const schema = { types: [{ name: 'CertifyResult', kind: 'OBJECT', fields: core }] } as SchemaTypes;
    expect(extraResultSelection(schema)).toBe('');
  });

  test('selects every scalar of lower bounds and attacks, one object level down', () => {
    const schema = {
      types: [
        {
          name: 'CertifyResult',
          kind: 'OBJECT',
          fields: [...core, field('lower', list(nonNull(object('LowerBound')))), field('attacks', object('AttacksResult'))],
        },
        { name: 'LowerBound', kind: 'OBJECT', fields: [field('eps', scalar('Float')), field('bound', scalar('Float')), field('method', { kind: 'ENUM', name: 'M', ofType: null })] },
        { name: 'AttacksResult', kind: 'OBJECT', fields: [field('seconds', scalar('Float')), field('attacks', list(object('Attack')))] },
        { name: 'Attack', kind: 'OBJECT', fields: [field('method', scalar('String')), field('perturbation', scalar('Float')), field('adversarialClass', scalar('Int'))] },
      ],
    } as SchemaTypes;
    const selection = extraResultSelection(schema).replace(/\s+/g, ' ');
    expect(selection).toBe('lower { eps bound method } attacks { seconds attacks { method perturbation adversarialClass } }');
  });

  test('reads lower bounds and attacks by their shape', () => {
    const result = {
      class: 8,
      local: [{ eps: 0.1, bound: 400 }],
      lower: [
        { eps: 0.1, bound: 120, method: 'gradient' },
        { eps: 0.1, bound: 90, method: 'random' },
      ],
      attacks: { seconds: 2, attacks: [{ method: 'pgd', perturbation: 1.3, adversarialClass: 3 }, { method: 'fgsm', perturbation: null }] },
    };
    expect(lowerBoundsOf(result)).toEqual([
      { eps: 0.1, bound: 120, method: 'gradient', distance: null },
      { eps: 0.1, bound: 90, method: 'random', distance: null },
    ]);
    expect(attacksOf(result).map((a) => [a.method, a.perturbation, a.adversarialClass])).toEqual([
      ['pgd', 1.3, 3],
      ['fgsm', null, null],
    ]);
    // The core local bounds are never read as lower bounds.
    expect(lowerBoundsOf({ local: result.local })).toEqual([]);
  });

  test('finds the server\'s lowerBounds and attacks in schema.graphql, and the run query stays valid', () => {
    const schema = buildSchema(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'schema.graphql'), 'utf8'));
    const introspected = graphqlSync({ schema, source: SCHEMA_TYPES }).data as unknown as { __schema: SchemaTypes };
    const selection = extraResultSelection(introspected.__schema).replace(/\s+/g, ' ');
    expect(selection).toMatch(/^lowerBounds \{ eps method kind bound distance .*\} attacks \{ method kind perturbation adversarialClass perturbationLinf .*\}$/);
    expect(validate(schema, parse(runQuery(runFields(selection))))).toEqual([]);
    // The start form's mutation, with its lower-bound and attack options, is valid against the schema too.
    expect(validate(schema, parse(startRunMutation(runFields(selection))))).toEqual([]);

    // Entries as the server sends them (enum names for method and kind).
    const result = {
      local: [{ eps: 0.001, bound: 360 }],
      lowerBounds: [{ eps: 0.001, method: 'GRADIENT', kind: 'LOWER', bound: 45, distance: 0.001 }],
      attacks: [{ method: 'PGD', kind: 'UPPER', perturbation: 3.8, adversarialClass: 3, perturbationLinf: 0.64, seconds: 0.9 }],
    };
    expect(lowerBoundsOf(result)).toEqual([{ eps: 0.001, bound: 45, method: 'GRADIENT', distance: 0.001 }]);
    expect(attacksOf(result)).toEqual([{ method: 'PGD', perturbation: 3.8, adversarialClass: 3, perturbationLinf: 0.64, seconds: 0.9 }]);
  });
});
