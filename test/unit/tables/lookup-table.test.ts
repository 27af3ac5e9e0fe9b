import { describe, expect, it } from 'vitest';
import { ConfigError, TableError } from '../../../src/errors.js';
import { createTable } from '../../../src/tables/create-table.js';
import {
  FunctionTable,
  InlineTable,
  StaticTable,
  TableList,
} from '../../../src/tables/lookup-table.js';
import type { LookupTable } from '../../../src/tables/types.js';

async function rejection(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return err;
  }
  throw new Error('did not throw');
}

describe('InlineTable', () => {
  it('finds values case-insensitively and misses with undefined', async () => {
    const t = new InlineTable({
      'Example.COM': 'smtp:[mx.example.com]',
      'user@example.org': 'local',
    });
    expect(await t.lookup('example.com')).toBe('smtp:[mx.example.com]');
    expect(await t.lookup('EXAMPLE.com')).toBe('smtp:[mx.example.com]');
    expect(await t.lookup('USER@example.org')).toBe('local');
    expect(await t.lookup('other.example')).toBeUndefined();
    expect(t.flags).toEqual({ pattern: false, foldCase: true, substitution: false });
  });

  it('is built from a Map too, and named inline:{...}', async () => {
    const t = new InlineTable(new Map([['a', 'b']]));
    expect(t.name).toBe('inline:{ a=b }');
    expect(await t.lookup('A')).toBe('b');
  });

  it('treats __proto__ and constructor as plain keys', async () => {
    const t = new InlineTable(
      JSON.parse('{"__proto__": "x", "constructor": "y"}') as Record<string, string>,
    );
    expect(await t.lookup('__proto__')).toBe('x');
    expect(await t.lookup('constructor')).toBe('y');
    expect(await t.lookup('toString')).toBeUndefined();
    expect(await new InlineTable({}).lookup('__proto__')).toBeUndefined();
  });

  it('refuses an empty value as a config error', () => {
    const err = (() => {
      try {
        new InlineTable({ 'example.com': '' });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(TableError);
    expect((err as TableError).kind).toBe('config');
    expect((err as Error).message).toContain('example.com');
  });

  it('refuses non-string values and keys given twice', () => {
    expect(() => new InlineTable({ a: 1 } as unknown as Record<string, string>)).toThrow(
      TableError,
    );
    expect(() => new InlineTable({ A: 'x', a: 'y' })).toThrow(/twice/);
  });

  it('shortens a long name', () => {
    const entries: Record<string, string> = {};
    for (let i = 0; i < 50; i++) entries[`k${i}`] = `v${i}`;
    expect(new InlineTable(entries).name.length).toBeLessThanOrEqual(100);
  });
});

describe('FunctionTable', () => {
  it('folds the key by default and passes the value through', async () => {
    const seen: string[] = [];
    const t = new FunctionTable('function:test', (k) => {
      seen.push(k);
      return k === 'user@example.com' ? 'local' : undefined;
    });
    expect(await t.lookup('User@Example.COM')).toBe('local');
    expect(await t.lookup('x')).toBeUndefined();
    expect(seen).toEqual(['user@example.com', 'x']);
  });

  it('keeps case when foldCase is false and accepts async functions and null', async () => {
    const t = new FunctionTable('f', async (k) => (k === 'Abc' ? 'yes' : null), {
      foldCase: false,
      pattern: true,
    });
    expect(await t.lookup('Abc')).toBe('yes');
    expect(await t.lookup('abc')).toBeUndefined();
    expect(t.flags.pattern).toBe(true);
  });

  it('turns a thrown error into TableError retry', async () => {
    const t = new FunctionTable('function:db', () => {
      throw new Error('connection refused');
    });
    const err = await rejection(t.lookup('k'));
    expect(err).toBeInstanceOf(TableError);
    expect((err as TableError).kind).toBe('retry');
    expect((err as TableError).table).toBe('function:db');
    expect((err as Error).message).toContain('connection refused');
  });

  it('turns a rejected promise into TableError retry, and keeps a TableError as it is', async () => {
    const t1 = new FunctionTable('a', () => Promise.reject(new Error('timeout')));
    expect(((await rejection(t1.lookup('k'))) as TableError).kind).toBe('retry');
    const own = new TableError('config', 'b', 'bad');
    const t2 = new FunctionTable('b', () => {
      throw own;
    });
    expect(await rejection(t2.lookup('k'))).toBe(own);
  });

  it('refuses an empty string or a non-string as a config error', async () => {
    const e1 = await rejection(new FunctionTable('e', () => '').lookup('k'));
    expect((e1 as TableError).kind).toBe('config');
    const e2 = await rejection(new FunctionTable('n', () => 42 as unknown as string).lookup('k'));
    expect((e2 as TableError).kind).toBe('config');
  });
});

describe('TableList (maps.c)', () => {
  const failing = (name: string): LookupTable =>
    new FunctionTable(name, () => {
      throw new Error('down');
    });

  it('returns the first value in table order', async () => {
    const l = new TableList([new InlineTable({ a: '1' }), new InlineTable({ a: '2', b: '3' })]);
    expect(await l.lookup('a')).toBe('1');
    expect(await l.lookup('b')).toBe('3');
    expect(await l.lookup('c')).toBeUndefined();
    expect(l.name).toBe('inline:{ a=1 }, inline:{ a=2, b=3 }');
  });

  it('stops at a failing table even when a later one has the key', async () => {
    const l = new TableList([
      new InlineTable({ x: '0' }),
      failing('function:db'),
      new InlineTable({ a: '2' }),
    ]);
    const err = await rejection(l.lookup('a'));
    expect((err as TableError).kind).toBe('retry');
    expect((err as TableError).table).toBe('function:db');
  });

  it('does not consult a failing table after an earlier one answered', async () => {
    const l = new TableList([new InlineTable({ a: '1' }), failing('f')]);
    expect(await l.lookup('a')).toBe('1');
  });

  it('skips pattern tables for partial keys', async () => {
    const l = new TableList([
      new StaticTable('smtp:[pattern]'),
      new InlineTable({ 'example.com': 'relay' }),
    ]);
    expect(await l.lookupFixed('example.com')).toBe('relay');
    expect(await l.lookup('example.com')).toBe('smtp:[pattern]');
    expect(l.flags.pattern).toBe(false);
    expect(new TableList([new StaticTable('x')]).flags.pattern).toBe(true);
  });

  it('closes every member', async () => {
    let closed = 0;
    const t: LookupTable = {
      name: 't',
      flags: { pattern: false, foldCase: true, substitution: false },
      lookup: async () => undefined,
      close: async () => {
        closed++;
      },
    };
    await new TableList([t, new InlineTable({}), t]).close();
    expect(closed).toBe(2);
  });
});

describe('createTable', () => {
  it('builds an InlineTable from an object', async () => {
    const t = createTable({ 'example.com': 'smtp:[mx]' }, 'transportMaps');
    expect(t).toBeInstanceOf(InlineTable);
    expect(await t.lookup('EXAMPLE.COM')).toBe('smtp:[mx]');
  });

  it('builds a TableList from an array', async () => {
    const t = createTable([{ a: '1' }, 'inline:{ a=2, b=3 }'], 'transportMaps');
    expect(t).toBeInstanceOf(TableList);
    expect(await t.lookup('a')).toBe('1');
    expect(await t.lookup('b')).toBe('3');
  });

  it('parses Postfix inline:{...} syntax with braced entries', async () => {
    const t = createTable(
      'inline:{ example.com=smtp:[mx]:25, { b.example = error:5.1.1 gone, sorry }, c=local }',
      'k',
    );
    expect(await t.lookup('example.com')).toBe('smtp:[mx]:25');
    expect(await t.lookup('b.example')).toBe('error:5.1.1 gone, sorry');
    expect(await t.lookup('c')).toBe('local');
  });

  it('builds static: tables', async () => {
    const t = createTable('static:smtp:[gw]', 'k');
    expect(t.flags.pattern).toBe(true);
    expect(await t.lookup('anything')).toBe('smtp:[gw]');
    expect(await createTable('static:{ smtp:[gw] }', 'k').lookup('x')).toBe('smtp:[gw]');
  });

  it('wraps a function and passes a LookupTable through', async () => {
    const t = createTable((k: string) => (k === 'a' ? 'b' : undefined), 'transportMaps');
    expect(t).toBeInstanceOf(FunctionTable);
    expect(await t.lookup('A')).toBe('b');
    const own = new InlineTable({ x: 'y' });
    expect(createTable(own, 'k')).toBe(own);
  });

  it('refuses unsupported types with a ConfigError naming the key and what exists', () => {
    for (const spec of ['mysql:/etc/postfix/transport.cf', 'ldap:x', 'nocolon']) {
      let err: unknown;
      try {
        createTable(spec, 'transportMaps');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).key).toBe('transportMaps');
      expect((err as Error).message).toMatch(/^transportMaps: /);
      expect((err as Error).message).toContain('inline');
    }
    expect(() => createTable('mysql:/x', 'k')).toThrow(/"mysql" is not supported/);
    expect(() => createTable(['hash:/nonexistent/x'], 'k')).toThrow(/^k\[0\]: hash:/);
  });

  it('refuses null, numbers and malformed inline specs', () => {
    expect(() => createTable(null, 'k')).toThrow(ConfigError);
    expect(() => createTable(5, 'k')).toThrow(ConfigError);
    expect(() => createTable('inline:{ a }', 'k')).toThrow(/has no "="/);
    expect(() => createTable('inline:a=b', 'k')).toThrow(ConfigError);
    expect(() => createTable('inline:{ {a=b }', 'k')).toThrow(ConfigError);
    expect(() => createTable('inline:{ a= }', 'k')).toThrow(/^k: .*empty/);
  });
});
