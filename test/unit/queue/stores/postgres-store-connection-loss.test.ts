/**
 * PostgresQueueStore when the server kills its connections (pg_terminate_backend, as an
 * administrator or a failover would): at open while the schema is migrated on a
 * checked-out connection, and in operation — idle pool connections, a statement in
 * flight, the LISTEN connection, the destination-slot connection. None of it may reach
 * the process as an uncaught error (a fatal exit in `postern serve`); open() fails with
 * a clear error, and a running store carries on without a restart.
 *
 * @module
 */

import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { QueueStoreError } from '../../../../src/errors.js';
import { Logger } from '../../../../src/log.js';
import { PostgresQueueStore } from '../../../../src/queue/stores/postgres-store.js';
import { lockKey } from '../../../../src/queue/stores/postgres-store-schema.js';
import type { LogEvent } from '../../../../src/types.js';
import {
  dropSchema,
  freshSchemaName,
  type PostgresServer,
  startPostgres,
} from '../../../helpers/postgres-server.js';
import { commitMessage } from './store-conformance.js';

let server: PostgresServer;

beforeAll(async () => {
  server = await startPostgres();
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

describe('PostgresQueueStore when its connections are killed', () => {
  let schema: string;
  let admin: pg.Client;
  let events: LogEvent[];
  const uncaught: unknown[] = [];
  const record = (err: unknown) => uncaught.push(err);
  const stores: PostgresQueueStore[] = [];

  /** Backends of this database other than the admin session, with what they last ran. */
  async function backends(where: string): Promise<number[]> {
    const { rows } = await admin.query(
      `SELECT pid FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid()
         AND backend_type = 'client backend' AND ${where}`,
    );
    return rows.map((r) => Number(r.pid));
  }

  async function kill(pids: readonly number[]): Promise<void> {
    expect(pids.length).toBeGreaterThan(0);
    await admin.query('SELECT pg_terminate_backend(p) FROM unnest($1::int[]) AS t(p)', [pids]);
  }

  function store(): PostgresQueueStore {
    const s = new PostgresQueueStore({
      url: server.url,
      schema,
      node: 'a',
      poolSize: 3,
      logger: new Logger([(e) => events.push(e)]),
    });
    stores.push(s);
    return s;
  }

  beforeEach(async () => {
    schema = freshSchemaName('loss');
    events = [];
    uncaught.length = 0;
    process.on('uncaughtException', record);
    admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
  });

  afterEach(async () => {
    process.off('uncaughtException', record);
    for (const s of stores.splice(0)) await s.close().catch(() => undefined);
    await admin.end();
    await dropSchema(server.url, schema);
  });

  it('a connection lost while open() migrates the schema fails open() with a clear error', async () => {
    // Another node migrating holds the lock: this one waits on its checked-out connection.
    await admin.query('SELECT pg_advisory_lock($1::bigint)', [lockKey(schema, 'migrate')]);
    const s = store();
    const opening = s.open();
    opening.catch(() => undefined);
    await vi.waitFor(async () =>
      expect(await backends(`wait_event_type = 'Lock'`)).toHaveLength(1),
    );
    await kill(await backends(`wait_event_type = 'Lock'`));
    const err = await opening.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueStoreError);
    expect((err as Error).message).toMatch(
      /lost the connection to the queue database while preparing schema .*check that the server is up/,
    );
    // The broken connection has closed by the time open() gave up.
    expect(await backends(`application_name = 'postern a'`)).toEqual([]);
    await admin.query('SELECT pg_advisory_unlock_all()');
    // The next attempt succeeds.
    await store().open();
    expect(uncaught).toEqual([]);
  });

  it('idle pool connections, a statement in flight, LISTEN and the slot connection: the store carries on', async () => {
    const s = store();
    await s.open();
    s.onAvailable(() => undefined);
    const slot = await s.acquireDestinationSlot('smtp:example.com', 2);
    expect(slot).toBeDefined();
    await commitMessage(s);

    // A statement in flight: blocked behind a lock, then its connection killed.
    await admin.query('BEGIN');
    await admin.query(
      `LOCK TABLE ${pg.escapeIdentifier(schema)}.messages IN ACCESS EXCLUSIVE MODE`,
    );
    const counting = s.counts();
    counting.catch(() => undefined);
    await vi.waitFor(async () =>
      expect(
        await backends(`wait_event_type = 'Lock' AND application_name = 'postern a'`),
      ).not.toEqual([]),
    );
    await kill(await backends(`wait_event_type = 'Lock' AND application_name = 'postern a'`));
    await expect(counting).rejects.toThrow(/terminat/);
    await admin.query('ROLLBACK');

    // Every other connection of the store: LISTEN, the slot's, the idle pool connections.
    expect(await backends(`query LIKE 'LISTEN%'`)).toHaveLength(1);
    expect(await backends(`query LIKE '%pg_try_advisory_lock%'`)).toHaveLength(1);
    await kill(
      await backends(
        `(application_name = 'postern a' OR query LIKE 'LISTEN%' OR query LIKE '%pg_try_advisory_lock%')`,
      ),
    );
    await slot!.release();

    // It works on without a restart: new mail is taken, notifications and slots return.
    await vi.waitFor(async () => expect(await commitMessage(s)).toMatch(/^\w+$/), {
      timeout: 15_000,
      interval: 100,
    });
    await vi.waitFor(
      () => expect(events.map((e) => e.text)).toContain('queue notifications restored'),
      { timeout: 15_000, interval: 100 },
    );
    // A slot taken on a new connection (not the stand-in given while it is unavailable).
    expect(await s.acquireDestinationSlot('smtp:example.com', 2)).toBeDefined();
    expect(await backends(`query LIKE '%pg_try_advisory_lock%'`)).toHaveLength(1);
    expect(events.map((e) => e.text).join('\n')).not.toMatch(/destination concurrency unavailable/);
    expect(await s.list()).toHaveLength(2);
    expect(uncaught).toEqual([]);
  });
});
