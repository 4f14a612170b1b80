/**
 * web/src/extras.ts: the optional result fields (lower bounds, attacks) are selected only where the
 * schema has them, and read by their shape whatever they are called.
 */
import { attacksOf, extraResultSelection, lowerBoundsOf, type SchemaTypes } from '../../web/src/extras.js';

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
});
