import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { Logger } from '../../../src/log.js';
import { createTable } from '../../../src/tables/create-table.js';
import { FunctionTable } from '../../../src/tables/lookup-table.js';
import { logicalLines } from '../../../src/tables/table-source.js';
import { TextTable } from '../../../src/tables/text-table.js';
import type { LogEvent } from '../../../src/types.js';

const dir = mkdtempSync(join(tmpdir(), 'postern-file-tables-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string): string {
  const path = join(dir, `f${n++}`);
  writeFileSync(path, text);
  return path;
}

describe('logical lines (readlline)', () => {
  it('drops comments and blank lines and joins continuation lines', () => {
    expect(logicalLines('# c\n\na b\n  c\n\t# not a comment? joined\n  #x\nd e  \r\n')).toEqual([
      { text: 'a b  c', line: 3 },
      { text: 'd e', line: 7 },
    ]);
  });
});

describe('texthash / hash tables', () => {
  it('reads postmap source format: folded keys, kept value case, first duplicate wins', async () => {
    const events: LogEvent[] = [];
    const logger = new Logger([(e) => events.push(e)]);
    // virtual(5) EXAMPLE.
    const path = file(
      [
        'virtual-alias.domain    anything',
        'postmaster@virtual-alias.domain    postmaster',
        'user1@virtual-alias.domain address1',
        'user2@virtual-alias.domain address2,',
        '    address3',
        'User1@Virtual-Alias.Domain  second',
      ].join('\n'),
    );
    const t = createTable(`hash:${path}`, 'virtualAliasMaps', { logger });
    expect(t.name).toBe(`hash:${path}`);
    expect(await t.lookup('USER1@virtual-alias.domain')).toBe('address1');
    expect(await t.lookup('user2@virtual-alias.domain')).toBe('address2,    address3');
    expect(await t.lookup('virtual-alias.domain')).toBe('anything');
    expect(events.some((e) => e.level === 'warning' && e.text.includes('duplicate'))).toBe(true);
  });

  it('resolves relative paths against the working directory', async () => {
    const path = file('a b\n');
    const t = createTable(`texthash:${relative(process.cwd(), path)}`, 'k');
    expect(await t.lookup('a')).toBe('b');
  });

  it('names the file and line of a key without a value', () => {
    const path = file('good value\nbad\n');
    expect(() => createTable(`texthash:${path}`, 'transportMaps')).toThrow(`${path}:2:`);
    expect(() => createTable('texthash:', 'transportMaps')).toThrow(/names no file/);
    expect(() => createTable(`texthash:${join(dir, 'missing')}`, 'k')).toThrow(ConfigError);
  });

  it('reloads a changed file at most once per check interval, and keeps old content on a bad edit', async () => {
    let now = 0;
    const events: LogEvent[] = [];
    const path = file('a one\n');
    const t = new TextTable('texthash', path, {
      now: () => now,
      checkInterval: 1000,
      logger: new Logger([(e) => events.push(e)]),
    });
    expect(await t.lookup('a')).toBe('one');
    writeFileSync(path, 'a two-changed\n');
    now = 500;
    expect(await t.lookup('a')).toBe('one');
    now = 1000;
    expect(await t.lookup('a')).toBe('two-changed');
    writeFileSync(path, 'a three\nbroken\n');
    now = 2000;
    expect(await t.lookup('a')).toBe('two-changed');
    expect(events.some((e) => e.level === 'warning' && e.text.includes(`${path}:2`))).toBe(true);
    unlinkSync(path);
    now = 3000;
    expect(await t.lookup('a')).toBe('two-changed');
    writeFileSync(path, 'a four\n');
    now = 4000;
    expect(await t.lookup('a')).toBe('four');
  });

  it('reloads regexp and cidr files too', async () => {
    let now = 0;
    const re = file('/^a/ one\n');
    const cidr = file('192.0.2.0/24 one\n');
    const opts = { now: () => now };
    const r = createTable(`regexp:${re}`, 'k', opts);
    const c = createTable(`cidr:${cidr}`, 'k', opts);
    expect(await r.lookup('abc')).toBe('one');
    expect(await c.lookup('192.0.2.9')).toBe('one');
    writeFileSync(re, '/^a/ two-re\n');
    writeFileSync(cidr, '192.0.2.0/24 two-cidr\n');
    now = 5000;
    expect(await r.lookup('abc')).toBe('two-re');
    expect(await c.lookup('192.0.2.9')).toBe('two-cidr');
  });
});

describe('cidr tables (cidr_table(5))', () => {
  it('matches first rule, IPv6 in brackets, negation and if/endif', async () => {
    const t = createTable(
      `cidr:${file(
        [
          '# cidr_table(5) EXAMPLE SMTPD ACCESS MAP',
          '192.168.1.1             OK',
          '192.168.0.0/16          REJECT',
          '2001:db8::1             OK',
          '[2001:db8::]/32         REJECT',
          'if 10.0.0.0/8',
          '!10.1.0.0/16 not-ten-one',
          'endif',
        ].join('\n'),
      )}`,
      'k',
    );
    expect(await t.lookup('192.168.1.1')).toBe('OK');
    expect(await t.lookup('192.168.7.7')).toBe('REJECT');
    expect(await t.lookup('2001:db8::1')).toBe('OK');
    expect(await t.lookup('2001:db8:1::5')).toBe('REJECT');
    expect(await t.lookup('10.2.0.1')).toBe('not-ten-one');
    expect(await t.lookup('10.1.0.1')).toBeUndefined();
    expect(await t.lookup('::ffff:192.168.1.1')).toBe('OK');
    expect(await t.lookup('not-an-address')).toBeUndefined();
    expect(await t.lookup('')).toBeUndefined();
    expect(t.flags.pattern).toBe(true);
  });

  it('refuses host bits, naming the line', () => {
    const path = file('192.0.2.0/24 OK\n192.0.2.1/24 OK\n');
    expect(() => createTable(`cidr:${path}`, 'k')).toThrow(`${path}:2: "192.0.2.1/24"`);
  });
});

describe('function table cache', () => {
  it('caches values and misses for the TTL, shares concurrent calls, never caches errors', async () => {
    let calls = 0;
    let fail = false;
    let value: string | undefined = 'v1';
    const t = new FunctionTable(
      'function:db',
      async () => {
        calls++;
        if (fail) throw new Error('down');
        return value;
      },
      {},
      { ttl: 60_000 },
    );
    const [a, b] = await Promise.all([t.lookup('k'), t.lookup('K')]);
    expect([a, b, calls]).toEqual(['v1', 'v1', 1]);
    value = 'v2';
    expect(await t.lookup('k')).toBe('v1');
    t.invalidate();
    expect(await t.lookup('k')).toBe('v2');
    fail = true;
    await expect(t.lookup('other')).rejects.toThrow(/down/);
    fail = false;
    value = undefined;
    expect(await t.lookup('other')).toBeUndefined();
    const before = calls;
    expect(await t.lookup('other')).toBeUndefined();
    expect(calls).toBe(before);
  });

  it('createTable passes cacheTtl (0 = off)', async () => {
    let calls = 0;
    const t = createTable(
      () => {
        calls++;
        return 'x';
      },
      'k',
      { cacheTtl: 0 },
    );
    await t.lookup('a');
    await t.lookup('a');
    expect(calls).toBe(2);
  });
});
