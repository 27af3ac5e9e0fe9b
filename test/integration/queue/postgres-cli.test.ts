/**
 * `postern db` and `postern queue` on a PostgreSQL queue, as an operator runs them: the
 * built CLI against a real server, with a config file naming the store. Queue commands
 * act on the shared tables, so they reach mail whichever node queued it.
 *
 * @module
 */

import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresQueueStore } from '../../../src/queue/postgres-store.js';
import {
  dropSchema,
  freshSchemaName,
  type PostgresServer,
  startPostgres,
} from '../../helpers/postgres-server.js';
import { commitMessage } from '../../unit/queue/store-conformance.js';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../../bin/postern.mjs', import.meta.url));

describe('postern db and postern queue on PostgreSQL', () => {
  let server: PostgresServer;
  let dir: string;
  const schema = freshSchemaName('cli');

  beforeAll(async () => {
    server = await startPostgres();
    dir = await mkdtemp(join(tmpdir(), 'postern-pg-cli-'));
  });
  afterAll(async () => {
    await dropSchema(server.url, schema).catch(() => undefined);
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('migrates once, reports the version, and runs queue commands on the shared queue', async () => {
    const config = join(dir, 'postern.json');
    await writeFile(
      config,
      JSON.stringify({ queueStore: { type: 'postgres', url: server.url, schema } }),
    );
    const before = await run(process.execPath, [BIN, 'db', 'status', '--config', config]);
    expect(before.stdout).toMatch(/version 0 \(this Postern needs 1\)/);
    const first = await run(process.execPath, [BIN, 'db', 'migrate', '--config', config]);
    expect(first.stdout).toMatch(/applied migration 1; now at version 1/);
    const again = await run(process.execPath, [BIN, 'db', 'migrate', '--config', config]);
    expect(again.stdout).toMatch(/up to date/);

    const store = new PostgresQueueStore({ url: server.url, schema, migrate: false });
    await store.open();
    try {
      const id = await commitMessage(store, 'Subject: cli\r\n\r\nx\r\n');
      const list = await run(process.execPath, [BIN, 'queue', 'list', '--config', config]);
      expect(list.stdout).toContain(id);
      const hold = await run(process.execPath, [BIN, 'queue', 'hold', id, '--config', config]);
      expect(hold.stdout).toMatch(/1 message placed on hold/);
      expect(await store.counts()).toMatchObject({ incoming: 0, hold: 1 });
      await run(process.execPath, [BIN, 'queue', 'release', 'ALL', '--config', config]);
      expect(await store.counts()).toMatchObject({ hold: 0, deferred: 1 });
    } finally {
      await store.close();
    }
  });

  it('says what is wrong when the config has no postgres store or the command is unknown', async () => {
    const config = join(dir, 'file.json');
    await writeFile(config, JSON.stringify({ queueStore: { type: 'memory' } }));
    const notPg = await run(process.execPath, [BIN, 'db', 'migrate', '--config', config]).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(notPg).toMatchObject({ code: 78 });
    expect((notPg as { stderr: string }).stderr).toMatch(/not \{ "type": "postgres"/);
    const usage = await run(process.execPath, [BIN, 'db', 'frobnicate']).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(usage).toMatchObject({ code: 64 });
  });
});
