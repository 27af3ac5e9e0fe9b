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
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PostgresQueueStore } from '../../../src/queue/stores/postgres-store.js';
import { lockKey } from '../../../src/queue/stores/postgres-store-schema.js';
import {
  dropSchema,
  freshSchemaName,
  type PostgresServer,
  startPostgres,
} from '../../helpers/postgres-server.js';
import { commitMessage } from '../../unit/queue/stores/store-conformance.js';

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

  it('db status lists each node with its heartbeat and leases; queue shape shows held mail by node', async () => {
    const nodesSchema = freshSchemaName('clinodes');
    const config = join(dir, 'nodes.json');
    await writeFile(
      config,
      JSON.stringify({ queueStore: { type: 'postgres', url: server.url, schema: nodesSchema } }),
    );
    const a = new PostgresQueueStore({ url: server.url, schema: nodesSchema, node: 'node-a' });
    const b = new PostgresQueueStore({ url: server.url, schema: nodesSchema, node: 'node-b' });
    await a.open();
    await b.open();
    try {
      await commitMessage(a, 'Subject: one\r\n\r\nx\r\n');
      await commitMessage(a, 'Subject: two\r\n\r\nx\r\n', {
        recipients: [
          { id: 1, address: 'x@example.com', originalAddress: 'x@example.com' },
          { id: 2, address: 'y@example.com', originalAddress: 'y@example.com' },
        ],
      });
      await a.claim({ owner: 'node-a', limit: 10, now: Date.now(), leaseMs: 600_000 });
      const status = await run(process.execPath, [BIN, 'db', 'status', '--config', config]);
      const lines = status.stdout.split('\n');
      expect(lines[0]).toMatch(/version 1 \(this Postern needs 1\)/);
      expect(lines[1]).toMatch(/^node\s+state\s+heartbeat\s+started\s+messages\s+recipients$/);
      expect(lines.find((l) => l.startsWith('node-a'))).toMatch(
        /^node-a\s+alive\s+\d+\.\d s ago\s+\S+Z\s+2\s+3$/,
      );
      expect(lines.find((l) => l.startsWith('node-b'))).toMatch(/^node-b\s+alive\s.*\s0\s+0$/);
      expect(await a.nodes()).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            node: 'node-a',
            alive: true,
            leasedMessages: 2,
            leasedRecipients: 3,
          }),
          expect.objectContaining({ node: 'node-b', alive: true, leasedMessages: 0 }),
        ]),
      );
      const shape = await run(process.execPath, [BIN, 'queue', 'shape', '--config', config]);
      const byNode = shape.stdout.split('active mail by node')[1] ?? '';
      expect(byNode).toMatch(/^\s+TOTAL\s+2\s/m);
      expect(byNode).toMatch(/^\s*node-a\s+2\s/m);
      expect(byNode).not.toMatch(/node-b/);
    } finally {
      await a.close();
      await b.close();
      await dropSchema(server.url, nodesSchema).catch(() => undefined);
    }
  });

  it('db migrate that loses its connection says so in one line and exits 75', async () => {
    const lostSchema = freshSchemaName('clilost');
    const config = join(dir, 'lost.json');
    await writeFile(
      config,
      JSON.stringify({ queueStore: { type: 'postgres', url: server.url, schema: lostSchema } }),
    );
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    try {
      // Another node is migrating: the command waits for its lock, and then its
      // connection is killed (an administrator, a failover).
      await admin.query('SELECT pg_advisory_lock($1::bigint)', [lockKey(lostSchema, 'migrate')]);
      const migrating = run(process.execPath, [BIN, 'db', 'migrate', '--config', config]).catch(
        (e: { code: number; stderr: string }) => e,
      );
      const waiting = `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()`;
      await vi.waitFor(async () => expect((await admin.query(waiting)).rows).toHaveLength(1), {
        timeout: 15_000,
        interval: 50,
      });
      await admin.query(`SELECT pg_terminate_backend(pid) FROM (${waiting}) AS w`);
      const failed = await migrating;
      expect(failed).toMatchObject({ code: 75 });
      const stderr = (failed as { stderr: string }).stderr;
      expect(stderr).toMatch(
        /^postern db: lost the connection to postgres:\/\/\S+ \(terminating connection due to administrator command\); check that the server is up, then run the command again\n$/,
      );
    } finally {
      await admin.end();
      await dropSchema(server.url, lostSchema).catch(() => undefined);
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
