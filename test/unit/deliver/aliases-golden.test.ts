import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expandLocalRecipient, type LocalAction } from '../../../src/deliver/alias-expansion.js';
import { deliveredToKey } from '../../../src/deliver/mail-copy.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { AliasTable, parseAliases, parseAliasTargets } from '../../../src/tables/alias-table.js';
import type { LocalUser, UserDatabase } from '../../../src/util/user-database.js';
import golden from './golden/aliases.json' with { type: 'json' };

let dir: string;
let table: AliasTable;
const params = resolveParameters({
  myhostname: 'mx.example.com',
  mydestination: ['example.com'],
  myorigin: 'example.com',
  recipientDelimiter: '+',
});

class TestUsers implements UserDatabase {
  async lookup(name: string): Promise<LocalUser | undefined> {
    if (name === 'ghost') return undefined;
    if (name === 'fwd' || name === 'fwdext') return { name, home: path.join(dir, 'home', name) };
    return { name };
  }
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'postern-aliases-'));
  for (const [name, text] of Object.entries(golden.files)) {
    const file = path.join(dir, name);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, text.replaceAll('@DIR@', dir), { mode: 0o644 });
  }
  const aliasFile = path.join(dir, 'aliases');
  await fs.writeFile(aliasFile, golden.aliases.join('\n').replaceAll('@DIR@', dir));
  table = await AliasTable.open(aliasFile);
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function render(a: LocalAction): string {
  switch (a.kind) {
    case 'mailbox':
      return `mailbox ${a.user.name}${a.extension ? ` ext=${a.extension}` : ''}`;
    case 'command':
      return `command ${a.origin} ${a.command}`;
    case 'file':
      return `file ${a.origin} ${a.path}`;
    case 'forward':
      return `forward ${a.address} sender=${a.sender}`;
    case 'transport':
      return `transport ${a.transport} ${a.address}`;
    case 'result':
      return `${a.status} ${a.enhanced} ${a.text}`;
  }
}

describe('aliases(5) / local(8) golden file', () => {
  it('parses the alias file without warnings', () => {
    expect(table.warnings).toEqual([]);
  });

  for (const [recipient, expected] of Object.entries(golden.cases)) {
    it(recipient, async () => {
      const expansion = await expandLocalRecipient(recipient, {
        settings: params,
        aliases: table,
        users: new TestUsers(),
        deliveredTo: new Set([deliveredToKey('looped@example.com')]),
        sender: 'sender@example.org',
      });
      expect(expansion.actions.map(render)).toEqual(expected);
    });
  }
});

describe('aliases(5) parsing', () => {
  it('folds names, joins continuation lines, keeps the first duplicate and reports bad lines', () => {
    const { entries, warnings } = parseAliases(
      'Root: a,\n\tb\n# c\nroot: x\nbroken line\n  \n"a:b": c\nempty:\n',
    );
    expect([...entries]).toEqual([
      ['root', 'a, b'],
      ['a:b', 'c'],
    ]);
    expect(warnings).toHaveLength(3);
    expect(warnings.join('\n')).toMatch(/duplicate entry "root"/);
  });

  it('splits values at commas outside quotes and classifies them', () => {
    expect(parseAliasTargets('"|/bin/cmd a, b", /f/g, :include:/h, \\me, <x@y>, "a b"@c')).toEqual([
      { kind: 'command', command: '/bin/cmd a, b' },
      { kind: 'file', path: '/f/g' },
      { kind: 'include', path: '/h' },
      { kind: 'address', address: 'me', direct: true },
      { kind: 'address', address: 'x@y', direct: false },
      { kind: 'address', address: 'a b@c', direct: false },
    ]);
  });

  it('re-reads the file when it changes', async () => {
    const file = path.join(dir, 'changing');
    await fs.writeFile(file, 'a: b\n');
    const t = await AliasTable.open(file);
    expect(await t.lookup('A')).toBe('b');
    await fs.writeFile(file, 'a: longer value\n');
    expect(await t.lookup('a')).toBe('longer value');
  });
});
