import { describe, expect, it } from 'vitest';
import { TableError } from '../../../src/errors.js';
import {
  FunctionTable,
  InlineTable,
  StaticTable,
  TableList,
} from '../../../src/tables/lookup-table.js';
import type { LookupAddressOptions } from '../../../src/tables/search-order.js';
import { lookupAddress, searchKeys, splitExtension } from '../../../src/tables/search-order.js';

/** A fixed-key table that records every key it is asked for. */
function recorder(values: Record<string, string> = {}): { table: FunctionTable; asked: string[] } {
  const asked: string[] = [];
  const table = new FunctionTable('function:recorder', (k) => {
    asked.push(k);
    return values[k];
  });
  return { table, asked };
}

async function order(address: string, options: LookupAddressOptions): Promise<string[]> {
  const { table, asked } = recorder();
  await lookupAddress(table, address, options);
  return asked;
}

describe('splitExtension (split_addr.c)', () => {
  const cases: [string, string, [string, string] | undefined][] = [
    ['user+foo', '+', ['user', '+foo']],
    ['user+foo+bar', '+', ['user', '+foo+bar']],
    ['user-foo', '+-', ['user', '-foo']],
    ['user', '+', undefined],
    ['+foo', '+', undefined],
    ['user+foo', '', undefined],
    ['postmaster', '+', undefined],
    ['Postmaster+x', '+', ['Postmaster', '+x']],
    ['MAILER-DAEMON', '-', undefined],
    ['owner-list', '-', undefined],
    ['list-request', '-', undefined],
    ['owner-list', '+', undefined],
  ];
  for (const [local, delim, expected] of cases) {
    it(`${local} with ${JSON.stringify(delim)}`, () => {
      const r = splitExtension(local, delim);
      expect(r ? [r.user, r.extension] : undefined).toEqual(expected);
    });
  }
});

describe('transport(5) search order', () => {
  // transport(5) TABLE SEARCH ORDER: user+extension@domain, user@domain, domain, .domain, *
  it('tries the address, the stripped address, the domain, its parents as .domain, then *', async () => {
    expect(
      await order('user+foo@a.b.example', { style: 'transport', recipientDelimiter: '+' }),
    ).toEqual([
      'user+foo@a.b.example',
      'user@a.b.example',
      'a.b.example',
      '.b.example',
      '.example',
      '*',
    ]);
  });

  it('has no stripped key without a delimiter', async () => {
    expect(await order('user+foo@example.com', { style: 'transport' })).toEqual([
      'user+foo@example.com',
      'example.com',
      '.com',
      '*',
    ]);
  });

  // postconf(5) parent_domain_matches_subdomains: with transport_maps listed, "domain" matches subdomains.
  it('walks parent domains without the dot in parent style', async () => {
    expect(await order('u@a.b.example', { style: 'transport', parentDomains: true })).toEqual([
      'u@a.b.example',
      'a.b.example',
      'b.example',
      'example',
      '*',
    ]);
  });

  it('returns the first match with its key', async () => {
    const t = new InlineTable({
      '.example.com': 'smtp:[sub]',
      'example.com': 'smtp:[top]',
      '*': 'smtp:[any]',
    });
    expect(await lookupAddress(t, 'u@example.com', { style: 'transport' })).toEqual({
      key: 'example.com',
      value: 'smtp:[top]',
    });
    expect(await lookupAddress(t, 'u@mail.example.com', { style: 'transport' })).toEqual({
      key: '.example.com',
      value: 'smtp:[sub]',
    });
    expect(await lookupAddress(t, 'u@other.example', { style: 'transport' })).toEqual({
      key: '*',
      value: 'smtp:[any]',
    });
  });
});

describe('access(5) search order', () => {
  // access(5) EMAIL ADDRESS PATTERNS: user@domain, domain.tld (parent domains with
  // smtpd_access_maps in parent_domain_matches_subdomains, the default), user@;
  // with recipient_delimiter: user+foo@domain, user@domain, domain, user+foo@, user@.
  it('follows the man page with an extension', async () => {
    expect(
      await order('user+foo@mail.example.com', { style: 'access', recipientDelimiter: '+' }),
    ).toEqual([
      'user+foo@mail.example.com',
      'user@mail.example.com',
      'mail.example.com',
      'example.com',
      'com',
      'user+foo@',
      'user@',
    ]);
  });

  it('uses .domain keys when parent style is off', async () => {
    expect(await order('u@mail.example.com', { style: 'access', parentDomains: false })).toEqual([
      'u@mail.example.com',
      'mail.example.com',
      '.example.com',
      '.com',
      'u@',
    ]);
  });

  // postconf(5) smtpd_null_access_lookup_key (default <>).
  it('looks the null sender up as <>', async () => {
    expect(await order('', { style: 'access' })).toEqual(['<>']);
    const t = new InlineTable({ '<>': 'REJECT' });
    expect(await lookupAddress(t, '', { style: 'access' })).toEqual({ key: '<>', value: 'REJECT' });
  });
});

describe('virtual(5) search order', () => {
  // virtual(5) TABLE SEARCH ORDER: user@domain, user (local domains only), @domain;
  // with recipient_delimiter: user+foo@domain, user@domain, user+foo, user, @domain.
  it('follows the man page for a local domain with an extension', async () => {
    expect(
      await order('user+foo@example.com', {
        style: 'virtual',
        recipientDelimiter: '+',
        localDomain: true,
      }),
    ).toEqual(['user+foo@example.com', 'user@example.com', 'user+foo', 'user', '@example.com']);
  });

  it('skips the bare user keys for a remote domain', async () => {
    expect(await order('user+foo@example.com', { recipientDelimiter: '+' })).toEqual([
      'user+foo@example.com',
      'user@example.com',
      '@example.com',
    ]);
  });

  it('is the default style', async () => {
    expect(await order('u@example.com', {})).toEqual(['u@example.com', '@example.com']);
  });

  it('returns the wildcard key so callers can tell @domain matches apart', async () => {
    const t = new InlineTable({ '@example.com': 'catchall@example.net' });
    expect(await lookupAddress(t, 'anyone@example.com', {})).toEqual({
      key: '@example.com',
      value: 'catchall@example.net',
    });
  });

  it('finds nothing as undefined', async () => {
    expect(
      await lookupAddress(new InlineTable({ x: 'y' }), 'u@example.com', { localDomain: true }),
    ).toBeUndefined();
  });
});

describe('pattern tables', () => {
  // transport(5) REGULAR EXPRESSION TABLES: only the full address (and the * wildcard)
  it('get only the whole address (and transport *)', async () => {
    const asked: string[] = [];
    const t = new FunctionTable(
      'function:pattern',
      (k) => {
        asked.push(k);
        return undefined;
      },
      { pattern: true, foldCase: false },
      { ttl: 0 },
    );
    await lookupAddress(t, 'User+x@Example.com', { style: 'transport', recipientDelimiter: '+' });
    await lookupAddress(t, 'u@example.com', { style: 'virtual', localDomain: true });
    await lookupAddress(t, 'u@example.com', { style: 'access' });
    expect(asked).toEqual(['User+x@Example.com', '*', 'u@example.com', 'u@example.com']);
  });

  it('in a list, only fixed members see partial keys', async () => {
    const fixed = recorder({ 'example.com': 'relay' });
    const list = new TableList([new StaticTable('never-for-partial'), fixed.table]);
    // The static table answers the full-address lookup first.
    expect(await lookupAddress(list, 'u@example.com', { style: 'transport' })).toEqual({
      key: 'u@example.com',
      value: 'never-for-partial',
    });
    const list2 = new TableList([
      new InlineTable({ 'example.com': 'relay' }),
      new StaticTable('s'),
    ]);
    expect(await lookupAddress(list2, 'u@example.com', { style: 'transport' })).toEqual({
      key: 'u@example.com',
      value: 's',
    });
  });
});

describe('failures', () => {
  it('a retry error stops the search', async () => {
    const asked: string[] = [];
    const t = new FunctionTable('function:flaky', (k) => {
      asked.push(k);
      if (k === 'example.com') throw new Error('timeout');
      return k === '*' ? 'smtp' : undefined;
    });
    let err: unknown;
    try {
      await lookupAddress(t, 'u@example.com', { style: 'transport' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TableError);
    expect((err as TableError).kind).toBe('retry');
    expect(asked).toEqual(['u@example.com', 'example.com']);
  });
});

describe('searchKeys', () => {
  it('marks full and partial keys', () => {
    expect(searchKeys('u+x@example.com', { style: 'transport', recipientDelimiter: '+' })).toEqual([
      { key: 'u+x@example.com', full: true },
      { key: 'u@example.com', full: false },
      { key: 'example.com', full: false },
      { key: '.com', full: false },
      { key: '*', full: true },
    ]);
  });

  it('handles an unqualified address', () => {
    expect(searchKeys('user+x', { recipientDelimiter: '+' }).map((k) => k.key)).toEqual([
      'user+x',
      'user',
    ]);
    expect(searchKeys('user', { style: 'transport' }).map((k) => k.key)).toEqual(['user', '*']);
  });
});
