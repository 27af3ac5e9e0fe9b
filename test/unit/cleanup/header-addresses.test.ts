/** findAddresses / replaceAddresses: RFC 5322 address lists, kept byte for byte. */

import { describe, expect, it } from 'vitest';
import { findAddresses, replaceAddresses } from '../../../src/cleanup/header-addresses.js';

const cases: [string, string, string[]][] = [
  ['RFC 5322 3.4 addr-spec', ' joe@example.com', ['joe@example.com']],
  [
    'RFC 5322 3.4 name-addr',
    ' "Joe Q. Public" <john.q.public@example.com>',
    ['john.q.public@example.com'],
  ],
  [
    'RFC 5322 A.1.2 list with groups',
    ' Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>',
    ['mary@x.test', 'jdoe@example.org', 'one@y.test'],
  ],
  [
    'RFC 5322 A.1.3 group',
    ' A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;',
    ['c@a.test', 'joe@where.test', 'jdoe@one.test'],
  ],
  ['RFC 5322 A.1.3 empty group', ' Undisclosed recipients:;', []],
  ['comma inside a quoted display name', ' "Doe, John" <jd@example.com>', ['jd@example.com']],
  ['quoted local part', ' "john doe"@example.com', ['john doe@example.com']],
  ['comment after the address', ' joe@example.com (Joe, at home)', ['joe@example.com']],
  ['folded list', ' a@example.com,\r\n\tb@example.com', ['a@example.com', 'b@example.com']],
  ['source route in brackets', ' <@relay.test:joe@example.com>', ['joe@example.com']],
  ['unqualified', ' joe', ['joe']],
  ['unbalanced hostile input ends quietly', ' "unterminated <a@b', []],
];

describe('findAddresses', () => {
  for (const [source, value, expected] of cases) {
    it(source, () => {
      expect(findAddresses(value).map((a) => a.address)).toEqual(expected);
    });
  }

  it('replaces only the addr-spec spans', () => {
    const value = ' "Doe, John" <jd@old.example>, x@old.example (home)';
    const spans = findAddresses(value).map((a) => ({
      start: a.start,
      end: a.end,
      text: a.address.replace('old', 'new'),
    }));
    expect(replaceAddresses(value, spans)).toBe(
      ' "Doe, John" <jd@new.example>, x@new.example (home)',
    );
  });

  it('never throws on arbitrary text', () => {
    let seed = 7;
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const alphabet = 'ab@.,;:<>()"\\ \t\r\n';
    for (let i = 0; i < 2000; i++) {
      let s = '';
      const n = rnd() % 40;
      for (let j = 0; j < n; j++) s += alphabet[rnd() % alphabet.length];
      const found = findAddresses(s);
      for (const a of found) {
        expect(a.start).toBeGreaterThanOrEqual(0);
        expect(a.end).toBeLessThanOrEqual(s.length);
      }
    }
  });
});
