import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { CidrList } from '../../../src/tables/cidr.js';

describe('CidrList', () => {
  const cases: [string[], string, boolean][] = [
    // Postfix's default mynetworks-style list.
    [['127.0.0.0/8', '::1/128'], '127.0.0.1', true],
    [['127.0.0.0/8', '::1/128'], '127.255.255.255', true],
    [['127.0.0.0/8', '::1/128'], '128.0.0.1', false],
    [['127.0.0.0/8', '::1/128'], '::1', true],
    [['127.0.0.0/8', '::1/128'], '::2', false],
    [['127.0.0.0/8', '::1/128'], '0:0:0:0:0:0:0:1', true],
    // IPv4-mapped IPv6 clients match IPv4 entries (RFC 4291 section 2.5.5.2).
    [['127.0.0.0/8'], '::ffff:127.0.0.1', true],
    [['127.0.0.0/8'], '::FFFF:7f00:1', true],
    [['127.0.0.0/8'], '::ffff:10.0.0.1', false],
    [['::ffff:0:0/96'], '192.0.2.1', true],
    // Not mapped: the IPv4-compatible form is a different address.
    [['127.0.0.0/8'], '::127.0.0.1', false],
    // /0, /32, /128
    [['0.0.0.0/0'], '203.0.113.9', true],
    [['0.0.0.0/0'], '2001:db8::1', false],
    [['::/0'], '2001:db8::1', true],
    [['::/0'], '192.0.2.1', true],
    [['192.0.2.7/32'], '192.0.2.7', true],
    [['192.0.2.7/32'], '192.0.2.6', false],
    [['192.0.2.7'], '192.0.2.7', true],
    [['192.0.2.7'], '192.0.2.8', false],
    [['2001:db8::7/128'], '2001:db8::7', true],
    [['2001:db8::7/128'], '2001:db8::8', false],
    [['::1'], '::1', true],
    // Odd prefix lengths.
    [['192.0.2.128/25'], '192.0.2.200', true],
    [['192.0.2.128/25'], '192.0.2.127', false],
    [['2001:db8:8000::/33'], '2001:db8:8000::1', true],
    [['2001:db8:8000::/33'], '2001:db8:7fff::1', false],
    // Postfix writes IPv6 networks in brackets; clients may arrive bracketed or with a zone.
    [['[2001:db8::]/32'], '2001:db8:ffff::1', true],
    [['[2001:db8::]/32'], '[2001:db8::1]', true],
    [['fe80::/10'], 'fe80::1%eth0', true],
    // Embedded IPv4 tails in IPv6 text.
    [['64:ff9b::/96'], '64:ff9b::192.0.2.1', true],
    [['1:2:3:4:5:6:0:0/96'], '1:2:3:4:5:6:7.8.9.10', true],
    // Hostile or empty client addresses never match.
    [['0.0.0.0/0', '::/0'], '', false],
    [['0.0.0.0/0', '::/0'], 'localhost', false],
    [['0.0.0.0/0', '::/0'], '1.2.3.4.5', false],
    [['0.0.0.0/0', '::/0'], '1.2.3.4\r\n', false],
    [[], '127.0.0.1', false],
  ];
  for (const [entries, address, expected] of cases) {
    it(`${JSON.stringify(entries)} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(address)}`, () => {
      expect(new CidrList(entries).matches(address)).toBe(expected);
    });
  }

  const badEntries = [
    '192.0.2.1/24',
    '192.0.2.0/33',
    '::1/129',
    'example.com',
    '10.0.0.0/-1',
    '10.0.0.0/',
    '',
    '10/8',
    'fe80::1%eth0',
  ];
  for (const entry of badEntries) {
    it(`refuses entry ${JSON.stringify(entry)} with a ConfigError naming it`, () => {
      let caught: unknown;
      try {
        new CidrList(['127.0.0.0/8', entry]);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as Error).message).toContain(`"${entry}"`);
    });
  }

  it('suggests the network when host bits are set', () => {
    expect(() => new CidrList(['192.0.2.1/24'])).toThrow('192.0.2.0/24');
  });
});
