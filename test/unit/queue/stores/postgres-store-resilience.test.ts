/**
 * PostgresQueueStore against a real PostgreSQL server of its own (so it can be stopped):
 * mail held by a dead node or under an expired lease wakes a live node's queue manager
 * within a heartbeat, with no new mail to do it; new mail goes straight to the
 * listening queue manager, or back to every node if it does not take it; commits
 * made together share a statement; a claim brings small content along; `sent` marks cost no round trip; and
 * a database outage is logged once, refuses commits, puts off removals and releases
 * until the database is back, and needs no reopening.
 *
 * @module
 */

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { QueueStoreError } from '../../../../src/errors.js';
import { Logger } from '../../../../src/log.js';
import {
  PostgresQueueStore,
  type PostgresQueueStoreOptions,
} from '../../../../src/queue/stores/postgres-store.js';
import type { LogEvent } from '../../../../src/types.js';
import {
  dropSchema,
  freshSchemaName,
  type PostgresServer,
  startPostgres,
} from '../../../helpers/postgres-server.js';
import { commitMessage, outcome, readAll, recipients } from './store-conformance.js';

let server: PostgresServer;

beforeAll(async () => {
  server = await startPostgres({ own: true, synchronousCommit: true });
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

/** Resolves when `store` calls its onAvailable listeners next; false after `ms`. */
function nextWake(store: PostgresQueueStore, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      off();
      resolve(false);
    }, ms);
    const off = store.onAvailable(() => {
      clearTimeout(timer);
      off();
      resolve(true);
    });
  });
}

/** Polls `check` until it holds (bounded). */
async function until(check: () => Promise<boolean>, ms = 15_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

describe('PostgresQueueStore resilience', () => {
  let schema: string;
  const open: PostgresQueueStore[] = [];
  let events: LogEvent[];

  async function node(extra: Partial<PostgresQueueStoreOptions> = {}): Promise<PostgresQueueStore> {
    const store = new PostgresQueueStore({
      url: server.url,
      schema,
      poolSize: 3,
      logger: new Logger([(e) => events.push(e)]),
      ...extra,
    });
    await store.open();
    open.push(store);
    return store;
  }

  beforeEach(() => {
    schema = freshSchemaName('res');
    events = [];
  });
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close().catch(() => undefined);
    await dropSchema(server.url, schema).catch(() => undefined);
  });

  it("wakes a live node when a dead node's heartbeat times out, with no new mail", async () => {
    const a = await node({ node: 'a', heartbeatMs: 600_000 });
    const b = await node({ node: 'b', heartbeatMs: 200, nodeTimeoutMs: 800 });
    const announced = nextWake(b, 5000);
    await commitMessage(a);
    expect(await announced).toBe(true);
    const [held] = await a.claim({ owner: 'a', limit: 10, now: Date.now(), leaseMs: 600_000 });
    expect(held).toBeDefined();
    // a stops beating (its next beat is ten minutes away) and nothing else happens.
    expect(await nextWake(b, 10_000)).toBe(true);
    const taken = await b.claim({ owner: 'b', limit: 10, now: Date.now(), leaseMs: 600_000 });
    expect(taken.map((t) => t.record.queueId)).toEqual([held!.record.queueId]);
  });

  it('wakes the queue manager when a lease expires, with no new mail', async () => {
    const a = await node({ node: 'a', heartbeatMs: 200 });
    const announced = nextWake(a, 5000);
    await commitMessage(a);
    expect(await announced).toBe(true);
    const [held] = await a.claim({ owner: 'a', limit: 10, now: Date.now(), leaseMs: 500 });
    expect(held).toBeDefined();
    expect(await nextWake(a, 10_000)).toBe(true);
    const again = await a.claim({ owner: 'a2', limit: 10, now: Date.now(), leaseMs: 600_000 });
    expect(again.map((t) => t.record.queueId)).toEqual([held!.record.queueId]);
  });

  it('hands new mail straight to the listening queue manager, without a claim statement', async () => {
    const a = await node({ node: 'a' });
    const b = await node({ node: 'b' });
    let woken = 0;
    a.onAvailable(() => woken++);
    // The queue manager has claimed once: its owner and lease length are known.
    expect(
      await a.claim({ owner: 'qmgr-a', limit: 10, now: Date.now(), leaseMs: 600_000 }),
    ).toEqual([]);
    const id = await commitMessage(a, 'Subject: handed\r\n\r\nbody\r\n');
    await new Promise((r) => setImmediate(r));
    expect(woken).toBeGreaterThan(0);
    // In the database it is already active under a's lease: no other node can take it.
    expect(await a.counts()).toMatchObject({ incoming: 0, active: 1 });
    expect(
      await b.claim({ owner: 'qmgr-b', limit: 10, now: Date.now(), leaseMs: 600_000 }),
    ).toEqual([]);
    const before = a.roundTrips;
    const [m] = await a.claim({ owner: 'qmgr-a', limit: 10, now: Date.now(), leaseMs: 600_000 });
    expect(m?.record.queueId).toBe(id);
    expect(m?.lease.owner).toBe('qmgr-a');
    expect((await readAll(a.openContent(id))).toString()).toBe('Subject: handed\r\n\r\nbody\r\n');
    expect(a.roundTrips).toBe(before);
    await a.recordOutcomes(m!.lease, [{ recipientId: 1, outcome: outcome('sent') }]);
    await a.remove(m!.lease);
    expect(await b.counts()).toMatchObject({ incoming: 0, active: 0 });
  });

  it('gives handed-off mail back to every node when the queue manager does not take it', async () => {
    const a = await node({ node: 'a' });
    const b = await node({ node: 'b' });
    a.onAvailable(() => undefined);
    await a.claim({ owner: 'qmgr-a', limit: 10, now: Date.now(), leaseMs: 600_000 });
    const announced = nextWake(b, 10_000);
    const id = await commitMessage(a);
    // Handed to a's queue manager, which never claims it (its window is full)...
    expect(await b.counts()).toMatchObject({ incoming: 0, active: 1 });
    // ...so it goes back to the queue, b hears of it and takes it.
    expect(await announced).toBe(true);
    const taken = await b.claim({ owner: 'qmgr-b', limit: 10, now: Date.now(), leaseMs: 600_000 });
    expect(taken.map((t) => t.record.queueId)).toEqual([id]);
  });

  it('commits made together share statements, and every one is durable', async () => {
    const a = await node();
    const before = a.roundTrips;
    const ids = await Promise.all(Array.from({ length: 20 }, () => commitMessage(a)));
    const trips = a.roundTrips - before;
    expect((await a.list()).map((e) => e.queueId).sort()).toEqual([...ids].sort());
    expect(trips).toBeLessThan(ids.length / 2);
  });

  it('removals ride along with the next group commit, fenced by their leases', async () => {
    const a = await node();
    const b = await node();
    await commitMessage(a);
    await commitMessage(a);
    const [m, lost] = await a.claim({ owner: 'a', limit: 2, now: Date.now(), leaseMs: 600_000 });
    // A queue manager listens: new mail is handed to it, not announced to the other nodes.
    a.onAvailable(() => undefined);
    // The second lease is revoked by a queue operation on another node: its removal fails.
    await b.hold([lost!.record.queueId]);
    const before = a.roundTrips;
    const [removed, revoked, fresh] = await Promise.allSettled([
      a.remove(m!.lease),
      a.remove(lost!.lease),
      commitMessage(a),
    ]);
    // One statement for the commit and both removals.
    expect(a.roundTrips - before).toBe(1);
    expect(removed.status).toBe('fulfilled');
    expect(revoked.status).toBe('rejected');
    expect(fresh.status).toBe('fulfilled');
    const left = (await b.list()).map((e) => [e.queueId, e.state]);
    expect(left.sort()).toEqual(
      [
        [lost!.record.queueId, 'hold'],
        [(fresh as PromiseFulfilledResult<string>).value, 'active'],
      ].sort(),
    );
  });

  it('messages committed in one statement keep their own bytes, every byte value included', async () => {
    const a = await node();
    const b = await node();
    const bodies = [0, 1, 2, 3, 4].map((n) =>
      Buffer.from(Array.from({ length: 256 * n + 3 }, (_, i) => (i * (n + 1)) & 0xff)),
    );
    const before = a.roundTrips;
    const ids = await Promise.all(bodies.map((body) => commitMessage(a, body)));
    expect(a.roundTrips - before).toBeLessThan(bodies.length);
    // Read back by another node, from the database.
    const claimed = await b.claim({ owner: 'b', limit: 10, now: Date.now(), leaseMs: 600_000 });
    expect(claimed).toHaveLength(bodies.length);
    for (const [n, id] of ids.entries())
      expect((await readAll(b.openContent(id))).equals(bodies[n]!)).toBe(true);
  });

  it('a claim brings small content along; a large message is read from the database', async () => {
    const a = await node({ chunkSize: 100_000 });
    const small = Buffer.from('Subject: small\r\n\r\nbody\r\n');
    const large = Buffer.alloc(90_000, 0x61);
    const smallId = await commitMessage(a, small);
    const largeId = await commitMessage(a, large);
    await a.claim({ owner: 'a', limit: 10, now: Date.now(), leaseMs: 600_000 });
    const before = a.roundTrips;
    expect((await readAll(a.openContent(smallId))).equals(small)).toBe(true);
    expect((await readAll(a.openContent(smallId))).equals(small)).toBe(true);
    expect(a.roundTrips).toBe(before);
    expect((await readAll(a.openContent(largeId))).equals(large)).toBe(true);
    expect(a.roundTrips).toBeGreaterThan(before);
  });

  it('a sent mark costs no round trip and is written within a second if the message stays', async () => {
    const a = await node();
    const b = await node();
    await commitMessage(a, 'x', { recipients: recipients(2) });
    const [m] = await a.claim({ owner: 'a', limit: 1, now: Date.now(), leaseMs: 600_000 });
    const before = a.roundTrips;
    expect(before).toBeGreaterThan(0);
    await a.recordOutcomes(m!.lease, [{ recipientId: 1, outcome: outcome('sent') }]);
    expect(a.roundTrips).toBe(before);
    const written = await until(
      async () => (await b.list())[0]?.recipients[0]?.state === 'sent',
      10_000,
    );
    expect(written).toBe(true);
  });

  it('rides out a database outage: logged once, commits refused, removals and releases done when it is back', async () => {
    const a = await node({ node: 'a', heartbeatMs: 200 });
    const [idA, idB] = [await commitMessage(a), await commitMessage(a)];
    const claimed = await a.claim({ owner: 'a', limit: 10, now: Date.now(), leaseMs: 600_000 });
    const lease = (id: string) => claimed.find((c) => c.record.queueId === id)!.lease;
    await a.recordOutcomes(lease(idA), [{ recipientId: 1, outcome: outcome('sent') }]);
    await server.halt('fast');
    try {
      const refused = await commitMessage(a).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(QueueStoreError);
      expect((refused as QueueStoreError).outage).toBe(true);
      // The queue manager finishing its deliveries meanwhile is not failed.
      await a.remove(lease(idA));
      await a.release(lease(idB), { state: 'deferred', dueAt: Date.now() + 3_600_000 });
      await expect(commitMessage(a)).rejects.toBeInstanceOf(QueueStoreError);
    } finally {
      await server.resume();
    }
    const back = await until(async () => {
      const counts = await a.counts();
      return counts.deferred === 1 && counts.active === 0 && counts.incoming === 0;
    });
    expect(back).toBe(true);
    expect((await a.list()).map((e) => e.queueId)).toEqual([idB]);
    // Mail is taken again without reopening the store.
    const id = await commitMessage(a);
    expect((await a.list()).map((e) => e.queueId).sort()).toEqual([id, idB].sort());
    const lines = events.map((e) => e.text);
    expect(lines.filter((l) => /queue database unavailable/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => /queue database available again/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => /queue heartbeat failed|cannot announce/.test(l))).toEqual([]);
  });
});
