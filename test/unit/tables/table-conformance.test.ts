import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { createTable } from '../../../src/tables/create-table.js';
import { FunctionTable } from '../../../src/tables/lookup-table.js';
import { tableConformance } from './table-conformance.js';

const dir = mkdtempSync(join(tmpdir(), 'postern-tables-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string): string {
  const path = join(dir, `t${n++}`);
  writeFileSync(path, text);
  return path;
}
const reEscape = (s: string): string => s.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');

const ADDRESS_KEYS = ['user@example.com', 'example.org'] as const;

tableConformance({
  type: 'inline object',
  make: (e) => createTable({ ...e }, 'k'),
  keys: ADDRESS_KEYS,
  missing: 'nobody@example.net',
  otherCase: 'USER@Example.COM',
  findsOtherCase: true,
  broken: () => createTable({ a: 5 }, 'k'),
});

tableConformance({
  type: 'inline:{}',
  make: (e) =>
    createTable(
      `inline:{ ${Object.entries(e)
        .map(([k, v]) => `{ ${k} = ${v} }`)
        .join(', ')} }`,
      'k',
    ),
  keys: ADDRESS_KEYS,
  missing: 'nobody@example.net',
  otherCase: 'USER@Example.COM',
  findsOtherCase: true,
  broken: () => createTable('inline:{ novalue }', 'k'),
});

for (const type of ['texthash', 'hash', 'lmdb']) {
  tableConformance({
    type: `${type}:`,
    make: (e) =>
      createTable(
        `${type}:${file(
          Object.entries(e)
            .map(([k, v]) => `${k}\t${v}\n`)
            .join(''),
        )}`,
        'k',
      ),
    keys: ADDRESS_KEYS,
    missing: 'nobody@example.net',
    otherCase: 'USER@Example.COM',
    findsOtherCase: true,
    broken: () => createTable(`${type}:${file('# comment\nkey-without-value\n')}`, 'k'),
  });
}

for (const type of ['regexp', 'pcre']) {
  tableConformance({
    type: `${type}:`,
    make: (e) =>
      createTable(
        `${type}:${file(
          Object.entries(e)
            .map(([k, v]) => `/^${reEscape(k)}$/ ${v}\n`)
            .join(''),
        )}`,
        'k',
      ),
    keys: ADDRESS_KEYS,
    missing: 'nobody@example.net',
    otherCase: 'USER@Example.COM',
    findsOtherCase: true,
    broken: () => createTable(`${type}:${file('/^(unclosed$/ result\n')}`, 'k'),
  });
  tableConformance({
    type: `${type}:{inline}`,
    make: (e) =>
      createTable(
        `${type}:{ ${Object.entries(e)
          .map(([k, v]) => `{/^${reEscape(k)}$/ ${v}}`)
          .join(', ')} }`,
        'k',
      ),
    keys: ADDRESS_KEYS,
    missing: 'nobody@example.net',
    otherCase: 'USER@Example.COM',
    findsOtherCase: true,
    broken: () => createTable(`${type}:{ {/a/ b}, {/(/ c} }`, 'k'),
  });
}

tableConformance({
  type: 'cidr:',
  make: (e) =>
    createTable(
      `cidr:${file(
        Object.entries(e)
          .map(([k, v]) => `${k} ${v}\n`)
          .join(''),
      )}`,
      'k',
    ),
  keys: ['2001:db8::1', '192.0.2.7'],
  missing: '198.51.100.1',
  otherCase: '2001:DB8::1',
  findsOtherCase: true,
  broken: () => createTable(`cidr:${file('192.0.2.1/24 REJECT\n')}`, 'k'),
});

tableConformance({
  type: 'function',
  make: (e) => {
    const m = new Map(Object.entries(e));
    return createTable(async (k: string) => m.get(k), 'k');
  },
  keys: ADDRESS_KEYS,
  missing: 'nobody@example.net',
  otherCase: 'USER@Example.COM',
  findsOtherCase: true,
  broken: () => createTable(() => 42, 'k').lookup('x'),
  failing: (state) =>
    new FunctionTable('function:db', async (k) => {
      if (state.fail) throw new Error('connection refused');
      return k === ADDRESS_KEYS[0] ? 'recovered' : undefined;
    }),
});

tableConformance({
  type: 'array (TableList)',
  make: (e) => createTable([{ 'unrelated.example': 'x' }, { ...e }], 'k'),
  keys: ADDRESS_KEYS,
  missing: 'nobody@example.net',
  otherCase: 'USER@Example.COM',
  findsOtherCase: true,
  broken: () => createTable([{ a: 'b' }, 'bogus'], 'k'),
  failing: (state) =>
    createTable(
      [
        { 'unrelated.example': 'x' },
        async (k: string) => {
          if (state.fail) throw new Error('timeout');
          return k === ADDRESS_KEYS[0] ? 'recovered' : undefined;
        },
      ],
      'k',
    ),
});
