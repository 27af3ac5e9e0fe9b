import { describe, expect, it } from 'vitest';
import {
  domainInfo,
  isValidDomain,
  toAsciiDomain,
  toUnicodeDomain,
} from '../../../src/address/domain.js';
import { createTable } from '../../../src/tables/create-table.js';
import { DomainList, domainTableKeys } from '../../../src/tables/domain-list.js';

describe('toAsciiDomain / toUnicodeDomain (UTS #46, RFC 5890)', () => {
  it.each([
    ['Example.COM', 'example.com', 'example.com'],
    ['example.com.', 'example.com', 'example.com'],
    ['Bücher.example', 'xn--bcher-kva.example', 'bücher.example'],
    ['XN--BCHER-KVA.example', 'xn--bcher-kva.example', 'bücher.example'],
    ['ＥＸＡＭＰＬＥ．com', 'example.com', 'example.com'],
    ['ß.de', 'xn--zca.de', 'ß.de'],
    ['[192.0.2.1]', '[192.0.2.1]', '[192.0.2.1]'],
    ['[IPv6:2001:DB8::1]', '[ipv6:2001:db8::1]', '[ipv6:2001:db8::1]'],
    ['under_score.example', 'under_score.example', 'under_score.example'],
  ])('%s → %s / %s', (input, ascii, unicode) => {
    expect(toAsciiDomain(input)).toBe(ascii);
    expect(toUnicodeDomain(input)).toBe(unicode);
  });

  it.each([
    '',
    '.',
    'a..b',
    '-a.example',
    'a-.example',
    'ab--c.example',
    'xn--a.example',
    'a b.example',
    'a@b.example',
    'exa\nmple.com',
    `${'a'.repeat(64)}.example`,
    `${'ü'.repeat(60)}.example`,
    '[1.2.3]',
    '[IPv6:zz::1]',
    'a/b.example',
  ])('%j is not a domain', (input) => {
    expect(toAsciiDomain(input)).toBeUndefined();
    expect(isValidDomain(input)).toBe(false);
  });

  it('takes a name ending in a number only as an IPv4 address, as the WHATWG host parser reads it', () => {
    for (const name of ['09', 'b.90', 'mx.example.0', '256.1.1.1', '4294967296', 'a.0x1']) {
      expect(toAsciiDomain(name), name).toBeUndefined();
    }
    for (const name of [
      '9',
      '1.2.3',
      '192.0.2.1',
      '0x1.2',
      '4294967295',
      'a.0xg',
      'host9.example',
    ]) {
      expect(toAsciiDomain(name), name).toBe(name);
    }
  });

  it('answers the same for a name asked again, after hundreds of other names', () => {
    const names = Array.from({ length: 600 }, (_, i) => `Host-${i}.Example.COM`);
    for (let round = 0; round < 2; round++) {
      for (const [i, name] of names.entries()) {
        expect(toAsciiDomain(name)).toBe(`host-${i}.example.com`);
        expect(toAsciiDomain(`bad name ${i}.example`)).toBeUndefined();
      }
    }
  });

  it('gives a name cut from a longer text the same answer as the name itself', () => {
    const line = `RCPT TO:<user@Mail.Example.ORG> ${'x'.repeat(4000)}`;
    const domain = line.slice(line.indexOf('@') + 1, line.indexOf('>'));
    expect(toAsciiDomain(domain)).toBe('mail.example.org');
    expect(toAsciiDomain('Mail.Example.ORG')).toBe('mail.example.org');
  });
});

describe('domainInfo (tldts public suffix list)', () => {
  it('finds the registrable domain and public suffixes', () => {
    expect(domainInfo('foo.bar.co.uk')).toMatchObject({
      registrable: 'bar.co.uk',
      publicSuffix: 'co.uk',
      isPublicSuffix: false,
      fqdn: true,
    });
    expect(domainInfo('co.uk')).toMatchObject({ isPublicSuffix: true });
    expect(domainInfo('localhost')).toMatchObject({ fqdn: false });
    expect(domainInfo('bücher.de')).toMatchObject({ ascii: 'xn--bcher-kva.de' });
    expect(domainInfo('bad..name')).toBeUndefined();
  });
});

describe('DomainList (match_list)', () => {
  it('keys for table entries: .parent always, parent in parent style', () => {
    expect(domainTableKeys('a.b.c', false)).toEqual(['a.b.c', '.b.c', '.c']);
    expect(domainTableKeys('a.b.c', true)).toEqual(['a.b.c', '.b.c', 'b.c', '.c', 'c']);
  });

  it('names, .parent, !exclusions (first match wins), IDN forms', async () => {
    const l = new DomainList(
      ['!bad.example.com', 'example.com', '.sub.example.org', 'bücher.example'],
      'relayDomains',
      true,
    );
    expect(await l.matches('example.com')).toBe(true);
    expect(await l.matches('x.example.com')).toBe(true);
    expect(await l.matches('bad.example.com')).toBe(false);
    expect(await l.matches('a.sub.example.org')).toBe(true);
    expect(await l.matches('sub.example.org')).toBe(false);
    expect(await l.matches('xn--bcher-kva.example')).toBe(true);
    expect(l.matchesStatic('BÜCHER.example')).toBe(true);
  });

  it('exact names only without parent style; tables and $references', async () => {
    const table = createTable({ 'vdomain.example': 'x', '.wild.example': 'x' }, 't');
    const l = new DomainList(
      ['exact.example', '$virtualAliasMaps', 'inline:{ inl.example=1 }'],
      'virtualAliasDomains',
      false,
      { virtualAliasMaps: table },
    );
    expect(await l.matches('exact.example')).toBe(true);
    expect(await l.matches('sub.exact.example')).toBe(false);
    expect(await l.matches('vdomain.example')).toBe(true);
    expect(await l.matches('sub.vdomain.example')).toBe(false);
    expect(await l.matches('a.wild.example')).toBe(true);
    expect(await l.matches('inl.example')).toBe(true);
    expect(l.matchesStatic('vdomain.example')).toBe(false);
    expect(l.hasTables).toBe(true);
  });

  it('an unset table reference matches nothing; an unknown one is a config error', async () => {
    const l = new DomainList(['$virtualAliasMaps'], 'virtualAliasDomains', false, {
      virtualAliasMaps: undefined,
    });
    expect(await l.matches('any.example')).toBe(false);
    expect(() => new DomainList(['$nope'], 'virtualAliasDomains', false, {})).toThrow(
      /virtualAliasDomains: "\$nope" names no table/,
    );
  });
});
