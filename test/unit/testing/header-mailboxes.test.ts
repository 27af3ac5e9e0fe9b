import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseMailboxes } from '../../../src/testing/header-mailboxes.js';

describe('parseMailboxes', () => {
  it.each([
    ['a@example.com', [{ name: '', address: 'a@example.com' }]],
    ['Ann <ann@example.com>', [{ name: 'Ann', address: 'ann@example.com' }]],
    ['"Doe, Jane" <jane@example.com>', [{ name: 'Doe, Jane', address: 'jane@example.com' }]],
    ['"Say \\"hi\\"" <q@example.com>', [{ name: 'Say "hi"', address: 'q@example.com' }]],
    ['=?UTF-8?Q?J=C3=BCrgen?= <j@example.org>', [{ name: 'Jürgen', address: 'j@example.org' }]],
    ['Ann (work) <ann@example.com> (home)', [{ name: 'Ann', address: 'ann@example.com' }]],
    ['"odd local"@example.org', [{ name: '', address: 'odd local@example.org' }]],
    ['undisclosed-recipients:;', []],
    [
      'team: a@x.example, "B" <b@y.example>;, c@z.example',
      [
        { name: '', address: 'a@x.example' },
        { name: 'B', address: 'b@y.example' },
        { name: '', address: 'c@z.example' },
      ],
    ],
    ['', []],
    ['"unterminated <x@example.com>', []],
  ])('%s', (value, expected) => {
    expect(parseMailboxes(value)).toEqual(expected);
  });

  it('never throws on hostile text, and gives addresses without line breaks', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (value) => {
        for (const m of parseMailboxes(value)) {
          expect(m.address).not.toMatch(/[\r\n]/);
          expect(typeof m.name).toBe('string');
        }
      }),
      { numRuns: 500 },
    );
  });
});
