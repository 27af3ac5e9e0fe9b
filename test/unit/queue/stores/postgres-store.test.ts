/**
 * PostgresQueueStore: the conformance suite against a real PostgreSQL server (started
 * for this file, or POSTERN_TEST_PG_URL), each test in a schema of its own; a crash is
 * abandoning the store (its pool and heartbeat still alive, as a hung node's would be)
 * and opening a new one under the same node name. Then what only this store does:
 * chunked content, two stores as two nodes, takeover of a dead node's leases, fencing
 * across nodes, NOTIFY between nodes, destination slots, migrations.
 *
 * @module
 */

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, LeaseLostError } from '../../../../src/errors.js';
import {
  PostgresQueueStore,
  type PostgresQueueStoreOptions,
} from '../../../../src/queue/stores/postgres-store.js';
import {
  dropSchema,
  freshSchemaName,
  type PostgresServer,
  startPostgres,
} from '../../../helpers/postgres-server.js';
import {
  commitMessage,
  outcome,
  readAll,
  recipients,
  runStoreConformance,
} from './store-conformance.js';

let server: PostgresServer;

/** Polls for a slot (bounded: a lingering slot is unlocked within a fraction of a second). */
async function untilSlot(store: PostgresQueueStore, destination: string, limit: number) {
  for (let i = 0; i < 100; i++) {
    const slot = await store.acquireDestinationSlot(destination, limit);
    if (slot) return slot;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

beforeAll(async () => {
  server = await startPostgres();
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

runStoreConformance('PostgresQueueStore', async () => {
  const schema = freshSchemaName('conf');
  const stores: PostgresQueueStore[] = [];
  const make = async () => {
    const store = new PostgresQueueStore({ url: server.url, schema, node: 'node-a', poolSize: 4 });
    await store.open();
    stores.push(store);
    return store;
  };
  const first = await make();
  return {
    store: first,
    reopen: make,
    cleanup: async () => {
      for (const s of stores) await s.close().catch(() => undefined);
      await dropSchema(server.url, schema);
    },
  };
});

describe('PostgresQueueStore across nodes', () => {
  let schema: string;
  const open: PostgresQueueStore[] = [];

  async function node(extra: Partial<PostgresQueueStoreOptions> = {}): Promise<PostgresQueueStore> {
    const store = new PostgresQueueStore({ url: server.url, schema, poolSize: 3, ...extra });
    await store.open();
    open.push(store);
    return store;
  }

  beforeEach(() => {
    schema = freshSchemaName('pgx');
  });
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close().catch(() => undefined);
    await dropSchema(server.url, schema);
  });

  it('stores content as chunk rows of the chunk size and reads it back', async () => {
    const a = await node({ chunkSize: 1000 });
    const body = Buffer.alloc(3500, 0x41);
    const id = await commitMessage(a, body);
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    const { rows } = await c.query(
      `SELECT seq, length(data) AS n FROM ${pg.escapeIdentifier(schema)}.content_chunks WHERE queue_id = $1 ORDER BY seq`,
      [id],
    );
    await c.end();
    expect(rows.map((r) => Number(r.n))).toEqual([1000, 1000, 1000, 500]);
    expect((await readAll(a.openContent(id))).equals(body)).toBe(true);
  });

  /** Rows of `table` in this test's schema, counted on a connection of its own. */
  async function rowCount(table: string): Promise<number> {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    try {
      const { rows } = await c.query(
        `SELECT count(*) AS n FROM ${pg.escapeIdentifier(schema)}.${table}`,
      );
      return Number(rows[0]?.n);
    } finally {
      await c.end();
    }
  }

  it('an aborted large message leaves no chunk rows', async () => {
    const a = await node({ chunkSize: 1000 });
    const writer = await a.create('AbortedMessage01');
    writer.content.write(Buffer.alloc(5000));
    // Aborted once some of it is in the database.
    await vi.waitFor(async () => expect(await rowCount('content_chunks')).toBeGreaterThan(0));
    await writer.abort();
    expect(await rowCount('content_chunks')).toBe(0);
    expect(await rowCount('messages')).toBe(0);
    expect(await a.list()).toEqual([]);
  });

  it('abort waits for the first chunk insert in flight, and deletes what it made', async () => {
    const a = await node({ chunkSize: 1000 });
    const { default: pg } = await import('pg');
    const blocker = new pg.Client({ connectionString: server.url });
    await blocker.connect();
    try {
      // An uncommitted row with the same queue ID holds the writer's first insert.
      await blocker.query('BEGIN');
      await blocker.query(
        `INSERT INTO ${pg.escapeIdentifier(schema)}.messages (queue_id, state) VALUES ($1, 'writing')`,
        ['AbortedInFlight1'],
      );
      const writer = await a.create('AbortedInFlight1');
      // Called when the store has finished with the chunk (inserted it or given up).
      const written = new Promise<void>((resolve) =>
        writer.content.write(Buffer.alloc(1500), () => resolve()),
      );
      await vi.waitFor(async () => {
        const { rows } = await blocker.query(
          `SELECT count(*) AS n FROM pg_stat_activity
           WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()`,
        );
        expect(Number(rows[0]?.n)).toBe(1);
      });
      const aborting = writer.abort();
      // The insert goes through only now, after abort() was called.
      await blocker.query('ROLLBACK');
      await aborting;
      await written;
    } finally {
      await blocker.end();
    }
    expect(await rowCount('content_chunks')).toBe(0);
    expect(await rowCount('messages')).toBe(0);
  });

  it('a commit on one node wakes an idle listener on another through NOTIFY', async () => {
    const a = await node();
    const b = await node();
    const woke = new Promise<void>((resolve) => b.onAvailable(resolve));
    await commitMessage(a);
    await expect(
      Promise.race([woke.then(() => 'woke'), new Promise((r) => setTimeout(r, 5000, 'timeout'))]),
    ).resolves.toBe('woke');
  });

  it("a dead node's leases are taken over once its heartbeat stops, and it is fenced", async () => {
    const a = await node({ heartbeatMs: 100_000 });
    const b = await node({ nodeTimeoutMs: 300 });
    await commitMessage(a, 'x', { recipients: recipients(2) });
    const now = Date.now();
    const [m] = await a.claim({ owner: 'a', limit: 10, now, leaseMs: 600_000 });
    await a.recordOutcomes(m!.lease, [{ recipientId: 1, outcome: outcome('bounced') }]);
    expect(await b.claim({ owner: 'b', limit: 10, now, leaseMs: 600_000 })).toEqual([]);
    // a stops heart-beating (its next beat is 100 s away); b takes over once it times out.
    const taken = await vi.waitFor(
      async () => {
        const got = await b.claim({ owner: 'b', limit: 10, now: Date.now(), leaseMs: 600_000 });
        expect(got).toHaveLength(1);
        return got;
      },
      { timeout: 10_000, interval: 100 },
    );
    expect(taken.map((t) => t.record.recipients.map((r) => r.state))).toEqual([
      ['bounced', 'pending'],
    ]);
    await expect(
      a.recordOutcomes(m!.lease, [{ recipientId: 2, outcome: outcome('deferred') }]),
    ).rejects.toBeInstanceOf(LeaseLostError);
    await expect(a.remove(m!.lease)).rejects.toBeInstanceOf(LeaseLostError);
    await b.remove(taken[0]!.lease);
  });

  it('a queue operation on one node revokes a lease held by another', async () => {
    const a = await node();
    const b = await node();
    const id = await commitMessage(a);
    const [m] = await a.claim({ owner: 'a', limit: 1, now: Date.now(), leaseMs: 600_000 });
    expect(await b.hold('ALL', 'operator')).toEqual([id]);
    await expect(a.renew(m!.lease, Date.now() + 600_000)).rejects.toBeInstanceOf(LeaseLostError);
    expect((await a.list())[0]).toMatchObject({ queueId: id, state: 'hold' });
  });

  it('destination slots cap concurrency across nodes and come back when a node closes', async () => {
    const a = await node();
    const b = await node();
    const s1 = await a.acquireDestinationSlot('smtp:example.com', 2);
    const s2 = await b.acquireDestinationSlot('smtp:example.com', 2);
    expect(s1).toBeDefined();
    expect(s2).toBeDefined();
    expect(await a.acquireDestinationSlot('smtp:example.com', 2)).toBeUndefined();
    expect(await b.acquireDestinationSlot('smtp:example.com', 2)).toBeUndefined();
    expect(await b.acquireDestinationSlot('smtp:other.example', 2)).toBeDefined();
    await s1!.release();
    await s1!.release();
    // A slot given back lingers for its node: the next delivery there takes it again
    // without a round trip, and the other node still finds the destination full.
    const trips = a.roundTrips;
    expect(trips).toBeGreaterThan(0);
    const again = await a.acquireDestinationSlot('smtp:example.com', 2);
    expect(again).toBeDefined();
    expect(a.roundTrips).toBe(trips);
    expect(await b.acquireDestinationSlot('smtp:example.com', 2)).toBeUndefined();
    // Left idle, it is unlocked, and the other node gets it.
    await again!.release();
    await expect(untilSlot(b, 'smtp:example.com', 2)).resolves.toBeDefined();
    await b.close();
    expect(await a.acquireDestinationSlot('smtp:example.com', 2)).toBeDefined();
  });

  it('hands a slot its node gives back to a delivery waiting for the full destination', async () => {
    const a = await node();
    const b = await node();
    const s1 = await a.acquireDestinationSlot('smtp:example.com', 2);
    const s2 = await b.acquireDestinationSlot('smtp:example.com', 2);
    expect(s1).toBeDefined();
    expect(s2).toBeDefined();
    const trips = a.roundTrips;
    // Full: the database says so once, then the delivery waits for a's own slot.
    const waiting = a.acquireDestinationSlot('smtp:example.com', 2);
    await vi.waitFor(() => expect(a.roundTrips).toBe(trips + 1));
    await s1!.release();
    const handed = await waiting;
    expect(handed).toBeDefined();
    expect(a.roundTrips).toBe(trips + 1);
    // Still one slot each: b finds the destination full.
    expect(await b.acquireDestinationSlot('smtp:example.com', 2)).toBeUndefined();
    await handed!.release();
    await s2!.release();
  });

  it("a destination found full answers the node's other deliveries there without asking again", async () => {
    const a = await node();
    const b = await node();
    const held = await b.acquireDestinationSlot('smtp:full.example', 1);
    expect(held).toBeDefined();
    const trips = a.roundTrips;
    const answers = await Promise.all(
      [1, 2, 3, 4].map(() => a.acquireDestinationSlot('smtp:full.example', 1)),
    );
    expect(answers).toEqual([undefined, undefined, undefined, undefined]);
    expect(a.roundTrips).toBe(trips + 1);
    // Another destination is asked about as usual.
    expect(await a.acquireDestinationSlot('smtp:other.example', 1)).toBeDefined();
    expect(a.roundTrips).toBe(trips + 2);
    await held!.release();
    await expect(untilSlot(a, 'smtp:full.example', 1)).resolves.toBeDefined();
  });

  it('refuses to start on a missing schema when told not to migrate', async () => {
    const store = new PostgresQueueStore({ url: server.url, schema, migrate: false });
    await expect(store.open()).rejects.toThrow(/postern db migrate/);
  });

  it('refuses a database schema newer than it knows', async () => {
    await node();
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    await c.query(
      `INSERT INTO ${pg.escapeIdentifier(schema)}.schema_migrations (version, name) VALUES (99, 'future')`,
    );
    await c.end();
    const store = new PostgresQueueStore({ url: server.url, schema });
    await expect(store.open()).rejects.toBeInstanceOf(ConfigError);
  });

  it('rejects a bad URL or schema name with a ConfigError', () => {
    expect(() => new PostgresQueueStore({ url: 'mysql://x' })).toThrow(ConfigError);
    expect(() => new PostgresQueueStore({ url: server.url, schema: 'Bad-Name' })).toThrow(
      /schema name/,
    );
  });
});
