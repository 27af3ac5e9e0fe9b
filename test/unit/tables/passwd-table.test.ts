/**
 * unix:passwd.byname: the host's accounts, listed once and kept in memory, refreshed in
 * the background after the TTL; a listing that cannot be read defers (TableError retry).
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, TableError } from '../../../src/errors.js';
import { createTable } from '../../../src/tables/create-table.js';
import { PasswdTable, parsePasswdEntries } from '../../../src/tables/unix-table.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'postern-passwd-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const PASSWD =
  'root:x:0:0:root:/root:/bin/bash\n# comment\n+nisuser::::::\nAlice:x:1000:1000:Alice:/home/alice:/bin/sh\nalice:x:1001:1001::/tmp:/bin/sh\n\nbob:x:1002:1002::/home/bob:/bin/sh\r\n';

describe('parsePasswdEntries', () => {
  it('keys entries by lower-cased name, first one wins, skipping comments and NIS lines', () => {
    const m = parsePasswdEntries(PASSWD);
    expect([...m.keys()]).toEqual(['root', 'alice', 'bob']);
    expect(m.get('alice')).toBe('Alice:x:1000:1000:Alice:/home/alice:/bin/sh');
    expect(m.get('bob')).toBe('bob:x:1002:1002::/home/bob:/bin/sh');
  });
});

describe('PasswdTable', () => {
  it('finds accounts by bare name, case-folded, and never an address', async () => {
    const file = join(dir, 'passwd1');
    await writeFile(file, PASSWD);
    const t = new PasswdTable({ getent: false, file });
    expect(await t.lookup('ALICE')).toMatch(/^Alice:/);
    expect(await t.lookup('bob')).toMatch(/^bob:/);
    expect(await t.lookup('bob@example.com')).toBeUndefined();
    expect(await t.lookup('carol')).toBeUndefined();
    expect(await t.lookup('')).toBeUndefined();
  });

  it('reads the listing once for concurrent lookups and refreshes it after the TTL', async () => {
    const file = join(dir, 'passwd2');
    await writeFile(file, 'root:x:0:0::/root:/bin/sh\n');
    let now = 0;
    const t = new PasswdTable({ getent: false, file, refreshMs: 1000, now: () => now });
    expect(await Promise.all([t.lookup('root'), t.lookup('carol')])).toEqual([
      'root:x:0:0::/root:/bin/sh',
      undefined,
    ]);
    await writeFile(file, 'root:x:0:0::/root:/bin/sh\ncarol:x:5:5::/home/carol:/bin/sh\n');
    now = 999;
    expect(await t.lookup('carol')).toBeUndefined(); // still fresh
    now = 1000;
    // Stale: answered from the old list while one refresh runs...
    expect(await t.lookup('carol')).toBeUndefined();
    // ...and the refresh is in by the next lookup that waits for the first load path.
    await new Promise<void>((resolve) => setImmediate(resolve));
    await expect.poll(() => t.lookup('carol')).toBe('carol:x:5:5::/home/carol:/bin/sh');
  });

  it('defers (retry) when no listing can be read, and keeps the last list when a refresh fails', async () => {
    const missing = new PasswdTable({ getent: false, file: join(dir, 'no-such-file') });
    const err = await missing.lookup('root').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TableError);
    expect((err as TableError).kind).toBe('retry');
    expect((err as Error).message).toMatch(/unix:passwd\.byname: cannot list the user accounts/);

    const file = join(dir, 'passwd3');
    await writeFile(file, 'root:x:0:0::/root:/bin/sh\n');
    let now = 0;
    const t = new PasswdTable({ getent: false, file, refreshMs: 10, now: () => now });
    expect(await t.lookup('root')).toBeDefined();
    await rm(file);
    now = 100;
    expect(await t.lookup('root')).toBeDefined();
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(await t.lookup('root')).toBeDefined();
  });

  it('lists this host with getent: root is an account', async () => {
    expect(await new PasswdTable().lookup('root')).toMatch(/^root:/);
    expect(await new PasswdTable().lookup('no-such-account-4711')).toBeUndefined();
  });

  it('is what createTable builds for unix:passwd.byname and proxy:unix:passwd.byname', () => {
    expect(createTable('unix:passwd.byname', 'k')).toBeInstanceOf(PasswdTable);
    expect(createTable('proxy:unix:passwd.byname', 'k')).toBeInstanceOf(PasswdTable);
    expect(() => createTable('unix:group.byname', 'k')).toThrow(ConfigError);
  });
});
