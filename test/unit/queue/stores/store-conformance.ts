/**
 * The QueueStore conformance suite: one set of behaviours every store must show,
 * run by each store's own test file with a factory for that store.
 *
 * `reopen()` stands for a process crash and restart: it abandons the current store
 * (without close() unless the test closed it) and opens a new one over the same
 * durable state. What a crash may lose (lazy `sent` marks, leases) the suite allows
 * to be lost; what it must not lose it checks.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LeaseLostError, QueueStoreError } from '../../../../src/errors.js';
import type {
  ClaimedMessage,
  NewMessageRecord,
  QueueStore,
  StoredOutcome,
} from '../../../../src/queue/types.js';
import { QueueIdGenerator } from '../../../../src/queue-id.js';
import type { Recipient } from '../../../../src/types.js';

/** What a factory returns: a fresh, opened store and how to crash-restart it. */
export interface StoreHarness {
  store: QueueStore;
  /** Abandons the current store as a crash would and returns a new, opened one. */
  reopen: () => Promise<QueueStore>;
  cleanup: () => Promise<void>;
}

const ids = new QueueIdGenerator();
const LONG = 600_000;

export function recipients(n: number): Recipient[] {
  return Array.from({ length: n }, (_, i) => ({
    id: i + 1,
    address: `rcpt${i + 1}@example.com`,
    originalAddress: `rcpt${i + 1}@example.com`,
  }));
}

export function newRecord(
  queueId: string,
  overrides: Partial<NewMessageRecord> = {},
): NewMessageRecord {
  return {
    queueId,
    sender: 'sender@example.org',
    recipients: recipients(1),
    bodyType: '8BITMIME',
    smtputf8: false,
    eightBit: false,
    size: 0,
    headerSize: 0,
    arrivalTime: 1_700_000_000_000,
    warnTime: 0,
    source: { component: 'smtpd', protocol: 'ESMTP', client: { address: '192.0.2.1' } },
    ...overrides,
  };
}

export function outcome(status: StoredOutcome['status'], text = `${status} text`): StoredOutcome {
  const code = status === 'sent' ? 250 : status === 'deferred' ? 451 : 550;
  const enhanced = status === 'sent' ? '2.0.0' : status === 'deferred' ? '4.4.1' : '5.1.1';
  return {
    status,
    code,
    enhanced,
    text,
    relay: 'mx.example.com[192.0.2.25]:25',
    time: 1_700_000_001_000,
  };
}

/** Writes `chunks` honouring backpressure. */
async function writeAll(content: Writable, chunks: Iterable<Buffer>): Promise<void> {
  for (const chunk of chunks) {
    if (!content.write(chunk)) await new Promise<void>((r) => content.once('drain', r));
  }
}

export async function commitMessage(
  store: QueueStore,
  body: Buffer | string = 'Subject: test\r\n\r\nbody\r\n',
  overrides: Partial<NewMessageRecord> = {},
): Promise<string> {
  const queueId = ids.next();
  const writer = await store.create(queueId);
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  await writeAll(writer.content, [bytes]);
  await writer.commit(newRecord(queueId, { size: bytes.length, ...overrides }));
  return queueId;
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function claimAll(
  store: QueueStore,
  extra: { now?: number; leaseMs?: number; ignoreDueTime?: boolean; limit?: number } = {},
) {
  return store.claim({
    owner: 'node-a',
    limit: extra.limit ?? 1000,
    now: extra.now ?? Date.now(),
    leaseMs: extra.leaseMs ?? LONG,
    ...(extra.ignoreDueTime ? { ignoreDueTime: true } : {}),
  });
}

function one(claimed: ClaimedMessage[], queueId: string): ClaimedMessage {
  const m = claimed.find((c) => c.record.queueId === queueId);
  if (!m) throw new Error(`${queueId} was not claimed`);
  return m;
}

export function runStoreConformance(name: string, factory: () => Promise<StoreHarness>): void {
  describe(`QueueStore conformance: ${name}`, () => {
    let h: StoreHarness;
    let store: QueueStore;

    beforeEach(async () => {
      h = await factory();
      store = h.store;
    });
    afterEach(async () => {
      await h.cleanup();
    });

    async function reopen(): Promise<QueueStore> {
      store = await h.reopen();
      return store;
    }

    describe('commit and abort', () => {
      it('a committed message survives a crash with its record intact', async () => {
        const id = await commitMessage(store, 'Subject: x\r\n\r\nhello\r\n', {
          recipients: [
            {
              id: 7,
              address: 'a@example.com',
              originalAddress: 'A@Example.com',
              notify: ['SUCCESS', 'FAILURE'],
              orcpt: 'rfc822;A@Example.com',
            },
          ],
          envid: 'env-1',
          ret: 'HDRS',
          smtputf8: true,
          headerSize: 12,
          filter: 'smtp:[127.0.0.1]:10025',
        });
        await reopen();
        expect((await store.counts()).incoming).toBe(1);
        const [m] = await claimAll(store);
        expect(m?.from).toBe('incoming');
        expect(m?.record).toMatchObject({
          formatVersion: 1,
          queueId: id,
          sender: 'sender@example.org',
          envid: 'env-1',
          ret: 'HDRS',
          smtputf8: true,
          headerSize: 12,
          filter: 'smtp:[127.0.0.1]:10025',
          source: { component: 'smtpd', protocol: 'ESMTP', client: { address: '192.0.2.1' } },
        });
        expect(m?.record.recipients).toEqual([
          {
            id: 7,
            address: 'a@example.com',
            originalAddress: 'A@Example.com',
            notify: ['SUCCESS', 'FAILURE'],
            orcpt: 'rfc822;A@Example.com',
            state: 'pending',
          },
        ]);
        expect(m?.record).not.toHaveProperty('hold');
      });

      it('abort leaves nothing behind, is safe twice, and forbids a later commit', async () => {
        const queueId = ids.next();
        const writer = await store.create(queueId);
        writer.content.write('partial content\r\n');
        await writer.abort();
        await writer.abort();
        await expect(writer.commit(newRecord(queueId))).rejects.toBeInstanceOf(QueueStoreError);
        expect(await store.counts()).toEqual({
          incoming: 0,
          active: 0,
          deferred: 0,
          hold: 0,
          corrupt: 0,
        });
        expect(await store.list()).toEqual([]);
        await reopen();
        expect(await store.list()).toEqual([]);
        expect(await claimAll(store)).toEqual([]);
      });

      it('commit ends the content itself and a committed writer ignores abort', async () => {
        const queueId = ids.next();
        const writer = await store.create(queueId);
        writer.content.write('no end() called\r\n');
        await writer.commit(newRecord(queueId));
        await writer.abort();
        expect((await store.counts()).incoming).toBe(1);
        expect((await readAll(store.openContent(queueId))).toString()).toBe('no end() called\r\n');
      });

      it('rejects an invalid or duplicate queue ID, and a duplicate changes nothing', async () => {
        await expect(store.create('../../etc/passwd')).rejects.toBeInstanceOf(QueueStoreError);
        await expect(store.create('')).rejects.toBeInstanceOf(QueueStoreError);
        const id = await commitMessage(store, 'first\r\n', { sender: 'first@example.org' });
        // Refused at create, or at the latest at commit (a shared store may check there,
        // to spare a round trip: queue IDs are unique by construction).
        const duplicate = async () => {
          const writer = await store.create(id);
          writer.content.end('second\r\n');
          await writer.commit(newRecord(id, { size: 8, sender: 'second@example.org' }));
        };
        await expect(duplicate()).rejects.toBeInstanceOf(QueueStoreError);
        expect((await store.list()).map((e) => [e.queueId, e.sender])).toEqual([
          [id, 'first@example.org'],
        ]);
        expect((await readAll(store.openContent(id))).toString()).toBe('first\r\n');
      });

      it('commits straight into hold when asked, and never hands it out', async () => {
        const id = await commitMessage(store, 'x', { hold: true, holdReason: 'header check' });
        expect(await store.counts()).toMatchObject({ incoming: 0, hold: 1 });
        expect(await claimAll(store, { ignoreDueTime: true })).toEqual([]);
        await reopen();
        expect(await store.counts()).toMatchObject({ incoming: 0, hold: 1 });
        const [row] = await store.list({ states: ['hold'] });
        expect(row).toMatchObject({ queueId: id, state: 'hold' });
        expect(await claimAll(store, { ignoreDueTime: true })).toEqual([]);
      });
    });

    describe('content', () => {
      it('round-trips every byte value exactly, a fresh stream each call', async () => {
        const bytes = Buffer.alloc(256 * 40);
        for (let i = 0; i < bytes.length; i++) bytes[i] = i % 256;
        const id = await commitMessage(store, bytes, { eightBit: true });
        expect((await readAll(store.openContent(id))).equals(bytes)).toBe(true);
        expect((await readAll(store.openContent(id))).equals(bytes)).toBe(true);
        await reopen();
        expect((await readAll(store.openContent(id))).equals(bytes)).toBe(true);
      });

      it('streams a 5 MB body in and out unchanged', async () => {
        const queueId = ids.next();
        const writer = await store.create(queueId);
        const hashIn = createHash('sha256');
        let size = 0;
        const chunks = function* (): Generator<Buffer> {
          for (let i = 0; i < 5 * 64; i++) {
            const chunk = Buffer.alloc(16 * 1024);
            for (let j = 0; j < chunk.length; j++) chunk[j] = (i * 31 + j * 7) & 0xff;
            hashIn.update(chunk);
            size += chunk.length;
            yield chunk;
          }
        };
        await writeAll(writer.content, chunks());
        writer.content.end();
        await writer.commit(newRecord(queueId, { size, eightBit: true }));
        expect(size).toBe(5 * 1024 * 1024);
        const expected = hashIn.digest('hex');
        await reopen();
        for (let k = 0; k < 2; k++) {
          const hashOut = createHash('sha256');
          let got = 0;
          for await (const chunk of store.openContent(queueId)) {
            hashOut.update(chunk as Buffer);
            got += (chunk as Buffer).length;
          }
          expect(got).toBe(size);
          expect(hashOut.digest('hex')).toBe(expected);
        }
        const [m] = await claimAll(store);
        expect(m?.record.size).toBe(size);
      });

      it('an empty body round-trips', async () => {
        const id = await commitMessage(store, Buffer.alloc(0));
        expect((await readAll(store.openContent(id))).length).toBe(0);
      });

      it('openContent of a message that is not there errors on the stream', async () => {
        await expect(readAll(store.openContent('0000000000NoSuch'))).rejects.toBeInstanceOf(Error);
        await expect(readAll(store.openContent('../../../etc/passwd'))).rejects.toBeInstanceOf(
          Error,
        );
      });
    });

    describe('claim', () => {
      it('honours the limit, oldest first, and never hands a message out twice', async () => {
        const made: string[] = [];
        for (let i = 0; i < 5; i++) made.push(await commitMessage(store));
        const first = await claimAll(store, { limit: 2 });
        expect(first.map((m) => m.record.queueId)).toEqual(made.slice(0, 2));
        const rest = await claimAll(store, { limit: 10 });
        expect(rest.map((m) => m.record.queueId)).toEqual(made.slice(2));
        expect(await claimAll(store)).toEqual([]);
        expect(await store.counts()).toMatchObject({ incoming: 0, active: 5 });
        for (const m of [...first, ...rest]) {
          expect(m.lease).toMatchObject({ queueId: m.record.queueId, owner: 'node-a' });
          expect(m.lease.token.length).toBeGreaterThanOrEqual(16);
        }
        expect(new Set([...first, ...rest].map((m) => m.lease.token)).size).toBe(5);
      });

      it('concurrent claims split the messages between them', async () => {
        for (let i = 0; i < 12; i++) await commitMessage(store);
        const results = await Promise.all(
          Array.from({ length: 5 }, () => claimAll(store, { limit: 3 })),
        );
        const all = results.flat().map((m) => m.record.queueId);
        expect(all.length).toBe(12);
        expect(new Set(all).size).toBe(12);
      });

      it('a limit of 0 claims nothing', async () => {
        await commitMessage(store);
        expect(await claimAll(store, { limit: 0 })).toEqual([]);
      });

      it('alternates between incoming and due deferred mail', async () => {
        const deferred: string[] = [];
        for (let i = 0; i < 3; i++) deferred.push(await commitMessage(store));
        const now = Date.now();
        for (const m of await claimAll(store))
          await store.release(m.lease, { state: 'deferred', dueAt: now - 1000 });
        for (let i = 0; i < 3; i++) await commitMessage(store);
        const got = await claimAll(store, { limit: 4, now });
        expect(got.map((m) => m.from)).toEqual(['incoming', 'deferred', 'incoming', 'deferred']);
        expect(got.filter((m) => m.from === 'deferred').map((m) => m.record.queueId)).toEqual(
          deferred.slice(0, 2),
        );
      });

      it('an expired lease lets another owner take over and the old holder loses every write', async () => {
        const id = await commitMessage(store, 'x', { recipients: recipients(2) });
        const t0 = Date.now();
        const [old] = await claimAll(store, { now: t0, leaseMs: 1000 });
        expect(old?.record.queueId).toBe(id);
        expect(await claimAll(store, { now: t0 + 999 })).toEqual([]);
        const taken = await store.claim({
          owner: 'node-b',
          limit: 10,
          now: t0 + 1000,
          leaseMs: LONG,
        });
        expect(taken.map((m) => m.record.queueId)).toEqual([id]);
        expect(taken[0]?.lease.owner).toBe('node-b');
        expect(taken[0]?.lease.token).not.toBe(old?.lease.token);
        expect(taken[0]?.from).toBe('incoming');
        const lease = old!.lease;
        await expect(store.renew(lease, t0 + LONG)).rejects.toBeInstanceOf(LeaseLostError);
        await expect(
          store.recordOutcomes(lease, [{ recipientId: 1, outcome: outcome('bounced') }]),
        ).rejects.toBeInstanceOf(LeaseLostError);
        await expect(store.release(lease, { state: 'deferred', dueAt: t0 })).rejects.toBeInstanceOf(
          LeaseLostError,
        );
        await expect(store.remove(lease)).rejects.toBeInstanceOf(LeaseLostError);
        // The new holder is unaffected.
        await store.recordOutcomes(taken[0]!.lease, [
          { recipientId: 2, outcome: outcome('deferred') },
        ]);
        await store.release(taken[0]!.lease, { state: 'deferred', dueAt: t0 + LONG });
        expect(await store.counts()).toMatchObject({ active: 0, deferred: 1 });
      });

      it('a lease that has expired by the clock is lost even without a takeover', async () => {
        await commitMessage(store);
        const [m] = await claimAll(store, { now: Date.now() - 10_000, leaseMs: 1000 });
        await expect(store.renew(m!.lease, Date.now() + LONG)).rejects.toBeInstanceOf(
          LeaseLostError,
        );
        await expect(
          store.recordOutcomes(m!.lease, [{ recipientId: 1, outcome: outcome('sent') }]),
        ).rejects.toBeInstanceOf(LeaseLostError);
      });

      it('renew extends a lease under the same token', async () => {
        await commitMessage(store);
        const t0 = Date.now();
        const [m] = await claimAll(store, { now: t0, leaseMs: 60_000 });
        const renewed = await store.renew(m!.lease, t0 + 120_000);
        expect(renewed).toMatchObject({
          queueId: m!.lease.queueId,
          token: m!.lease.token,
          expiresAt: t0 + 120_000,
        });
        expect(await claimAll(store, { now: t0 + 60_000 })).toEqual([]);
        expect((await claimAll(store, { now: t0 + 120_000 })).length).toBe(1);
      });

      it('mail left active by a crash is claimable at once after restart', async () => {
        const id = await commitMessage(store);
        await claimAll(store);
        await reopen();
        expect(await store.counts()).toMatchObject({ active: 0, incoming: 1 });
        const got = await claimAll(store);
        expect(got.map((m) => m.record.queueId)).toEqual([id]);
      });
    });

    describe('outcomes', () => {
      it('bounced and deferred outcomes survive a crash; sent may be lost but nothing else', async () => {
        const id = await commitMessage(store, 'x', { recipients: recipients(3) });
        const [m] = await claimAll(store);
        await store.recordOutcomes(m!.lease, [
          { recipientId: 1, outcome: outcome('bounced', 'user unknown') },
        ]);
        await store.recordOutcomes(m!.lease, [
          { recipientId: 2, outcome: outcome('deferred', 'try later') },
          { recipientId: 3, outcome: outcome('sent') },
        ]);
        await reopen();
        const [again] = await claimAll(store);
        expect(again?.record.queueId).toBe(id);
        const [r1, r2, r3] = again!.record.recipients;
        expect(r1).toMatchObject({
          id: 1,
          state: 'bounced',
          last: outcome('bounced', 'user unknown'),
        });
        expect(r2).toMatchObject({
          id: 2,
          state: 'pending',
          last: outcome('deferred', 'try later'),
        });
        expect(['pending', 'sent']).toContain(r3?.state);
      });

      it('sent marks are kept by a clean close', async () => {
        await commitMessage(store, 'x', { recipients: recipients(2) });
        const [m] = await claimAll(store);
        await store.recordOutcomes(m!.lease, [
          { recipientId: 1, outcome: outcome('sent', 'ok queued') },
        ]);
        await store.close();
        await reopen();
        const [again] = await claimAll(store);
        expect(again?.record.recipients[0]).toMatchObject({
          state: 'sent',
          last: outcome('sent', 'ok queued'),
        });
        expect(again?.record.recipients[1]).toMatchObject({ state: 'pending' });
        expect(again?.record.recipients[1]).not.toHaveProperty('last');
      });

      it('sent marks are kept once the message is released', async () => {
        await commitMessage(store, 'x', { recipients: recipients(2) });
        const [m] = await claimAll(store);
        await store.recordOutcomes(m!.lease, [{ recipientId: 1, outcome: outcome('sent') }]);
        await store.recordOutcomes(m!.lease, [{ recipientId: 2, outcome: outcome('deferred') }]);
        await store.release(m!.lease, { state: 'deferred', dueAt: Date.now() + LONG });
        await reopen();
        const [again] = await claimAll(store, { ignoreDueTime: true });
        expect(again?.record.recipients.map((r) => r.state)).toEqual(['sent', 'pending']);
      });

      it('a final state is never undone by a later outcome', async () => {
        await commitMessage(store, 'x', { recipients: recipients(1) });
        const [m] = await claimAll(store);
        await store.recordOutcomes(m!.lease, [
          { recipientId: 1, outcome: outcome('bounced', 'first') },
        ]);
        await store.recordOutcomes(m!.lease, [
          { recipientId: 1, outcome: outcome('deferred', 'second') },
        ]);
        await store.release(m!.lease, { state: 'deferred', dueAt: Date.now() });
        const [again] = await claimAll(store);
        expect(again?.record.recipients[0]).toMatchObject({
          state: 'bounced',
          last: { text: 'first' },
        });
      });

      it("marks a bounced recipient's notice as committed, durably, keeping its reason", async () => {
        await commitMessage(store, 'x', { recipients: recipients(2) });
        const [m] = await claimAll(store);
        await store.recordOutcomes(m!.lease, [
          { recipientId: 1, outcome: outcome('bounced', 'user unknown') },
        ]);
        expect((await store.list())[0]?.recipients[0]).toMatchObject({ state: 'bounced' });
        await store.recordOutcomes(m!.lease, [
          { recipientId: 1, outcome: { ...outcome('bounced', 'other text'), dsnSent: true } },
          { recipientId: 2, outcome: { ...outcome('bounced', 'bounced now'), dsnSent: true } },
        ]);
        await reopen();
        const [again] = await claimAll(store);
        expect(again?.record.recipients[0]).toMatchObject({
          state: 'bounced',
          last: { text: 'user unknown', dsnSent: true },
        });
        expect(again?.record.recipients[1]).toMatchObject({
          state: 'bounced',
          last: { text: 'bounced now', dsnSent: true },
        });
      });

      it('rejects an outcome for a recipient the message does not have', async () => {
        await commitMessage(store);
        const [m] = await claimAll(store);
        const err = await store
          .recordOutcomes(m!.lease, [{ recipientId: 99, outcome: outcome('sent') }])
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(QueueStoreError);
        expect(err).not.toBeInstanceOf(LeaseLostError);
      });
    });

    describe('release and remove', () => {
      it('release to deferred keeps the due time, honoured by claim, ignoreDueTime and restart', async () => {
        const id = await commitMessage(store);
        const now = Date.now();
        const dueAt = now + 3_600_000;
        const [m] = await claimAll(store, { now });
        await store.release(m!.lease, { state: 'deferred', dueAt, warnTime: now + 7_200_000 });
        expect(await store.counts()).toMatchObject({ active: 0, deferred: 1 });
        expect(await store.nextDueTime()).toBe(dueAt);
        expect(await claimAll(store, { now })).toEqual([]);
        expect(await claimAll(store, { now: dueAt - 1 })).toEqual([]);
        await reopen();
        expect(await store.nextDueTime()).toBe(dueAt);
        expect(await claimAll(store, { now })).toEqual([]);
        const [flushed] = await claimAll(store, { now, ignoreDueTime: true });
        expect(flushed?.record.queueId).toBe(id);
        expect(flushed?.from).toBe('deferred');
        expect(flushed?.record.warnTime).toBe(now + 7_200_000);
        await store.release(flushed!.lease, { state: 'deferred', dueAt });
        const [due] = await claimAll(store, { now: dueAt });
        expect(due?.record.queueId).toBe(id);
        expect(await store.nextDueTime()).toBeUndefined();
      });

      it('release to hold and to corrupt takes the message out of circulation', async () => {
        const a = await commitMessage(store);
        const b = await commitMessage(store);
        const claimed = await claimAll(store);
        await store.release(one(claimed, a).lease, { state: 'hold', reason: 'operator' });
        await store.release(one(claimed, b).lease, { state: 'corrupt', reason: 'cannot parse' });
        expect(await store.counts()).toEqual({
          incoming: 0,
          active: 0,
          deferred: 0,
          hold: 1,
          corrupt: 1,
        });
        expect(await claimAll(store, { ignoreDueTime: true })).toEqual([]);
        await reopen();
        expect(await store.counts()).toEqual({
          incoming: 0,
          active: 0,
          deferred: 0,
          hold: 1,
          corrupt: 1,
        });
        expect(await claimAll(store, { ignoreDueTime: true })).toEqual([]);
        const rows = await store.list();
        expect(rows.map((r) => [r.queueId, r.state])).toEqual([
          [a, 'hold'],
          [b, 'corrupt'],
        ]);
      });

      it('a released lease is no longer good', async () => {
        await commitMessage(store);
        const [m] = await claimAll(store);
        await store.release(m!.lease, { state: 'deferred', dueAt: Date.now() + LONG });
        await expect(store.renew(m!.lease, Date.now() + LONG)).rejects.toBeInstanceOf(
          LeaseLostError,
        );
        await expect(store.remove(m!.lease)).rejects.toBeInstanceOf(LeaseLostError);
      });

      it('remove deletes the message and its content for good', async () => {
        const id = await commitMessage(store);
        const [m] = await claimAll(store);
        await store.recordOutcomes(m!.lease, [{ recipientId: 1, outcome: outcome('sent') }]);
        await store.remove(m!.lease);
        expect(await store.counts()).toEqual({
          incoming: 0,
          active: 0,
          deferred: 0,
          hold: 0,
          corrupt: 0,
        });
        await expect(readAll(store.openContent(id))).rejects.toBeInstanceOf(Error);
        await expect(store.remove(m!.lease)).rejects.toBeInstanceOf(LeaseLostError);
        await reopen();
        expect(await store.list()).toEqual([]);
        expect(await claimAll(store, { ignoreDueTime: true })).toEqual([]);
      });
    });

    describe('listing and notification', () => {
      it('counts, list and nextDueTime describe the queue without claiming', async () => {
        const now = Date.now();
        const a = await commitMessage(store, 'aaaa', { sender: 'a@example.org' });
        const b = await commitMessage(store, 'bb', { recipients: recipients(2) });
        const c = await commitMessage(store, 'c', { hold: true });
        const d = await commitMessage(store, 'dddd');
        const claimed = await claimAll(store, { limit: 2 });
        expect(claimed.map((m) => m.record.queueId)).toEqual([a, b]);
        const mb = one(claimed, b);
        await store.recordOutcomes(mb.lease, [
          { recipientId: 1, outcome: outcome('deferred', 'connection refused') },
          { recipientId: 2, outcome: outcome('bounced', 'no such user') },
        ]);
        await store.release(mb.lease, { state: 'deferred', dueAt: now + 5000 });
        expect(await store.counts()).toEqual({
          incoming: 1,
          active: 1,
          deferred: 1,
          hold: 1,
          corrupt: 0,
        });
        expect(await store.nextDueTime()).toBe(now + 5000);

        const rows = await store.list();
        expect(rows.map((r) => [r.queueId, r.state])).toEqual([
          [a, 'active'],
          [b, 'deferred'],
          [c, 'hold'],
          [d, 'incoming'],
        ]);
        expect(rows[0]).toMatchObject({
          sender: 'a@example.org',
          size: 4,
          arrivalTime: 1_700_000_000_000,
        });
        expect(rows[1]).toMatchObject({
          dueAt: now + 5000,
          recipients: [
            { address: 'rcpt1@example.com', state: 'pending', reason: 'connection refused' },
            { address: 'rcpt2@example.com', state: 'bounced', reason: 'no such user' },
          ],
        });
        expect(rows[0]).not.toHaveProperty('dueAt');
        expect((await store.list({ states: ['deferred', 'hold'] })).map((r) => r.queueId)).toEqual([
          b,
          c,
        ]);
        expect(await store.list({ limit: 2 })).toHaveLength(2);
        expect(await store.list({ states: ['corrupt'] })).toEqual([]);
        // Listing claims nothing.
        expect((await claimAll(store)).map((m) => m.record.queueId)).toEqual([d]);
      });

      it('nextDueTime is the earliest deferred due time', async () => {
        expect(await store.nextDueTime()).toBeUndefined();
        for (let i = 0; i < 3; i++) await commitMessage(store);
        const now = Date.now();
        const claimed = await claimAll(store);
        const dues = [now + 30_000, now + 10_000, now + 20_000];
        for (let i = 0; i < claimed.length; i++)
          await store.release(claimed[i]!.lease, { state: 'deferred', dueAt: dues[i]! });
        expect(await store.nextDueTime()).toBe(now + 10_000);
        const [first] = await claimAll(store, { now: now + 15_000 });
        expect(first?.record.queueId).toBe(claimed[1]?.record.queueId);
        expect(await store.nextDueTime()).toBe(now + 20_000);
      });

      it('onAvailable fires after a commit and after a release to deferred, until unsubscribed', async () => {
        let calls = 0;
        const off = store.onAvailable(() => {
          calls++;
        });
        // A store may tell its listeners some turns after a commit (the file store waits
        // for the journal's next fdatasync, or a few ms): wait for a probe listener.
        const told = () =>
          new Promise<void>((resolve) => {
            const stop = store.onAvailable(() => {
              stop();
              resolve();
            });
          });
        let probe = told();
        await commitMessage(store);
        await probe;
        expect(calls).toBeGreaterThanOrEqual(1);
        const afterCommit = calls;
        const [m] = await claimAll(store);
        await store.release(m!.lease, { state: 'deferred', dueAt: Date.now() });
        await new Promise((r) => setImmediate(r));
        expect(calls).toBeGreaterThan(afterCommit);
        off();
        const before = calls;
        probe = told();
        await commitMessage(store);
        await probe;
        expect(calls).toBe(before);
      });

      it('a commit into hold does not announce claimable mail', async () => {
        let calls = 0;
        store.onAvailable(() => {
          calls++;
        });
        await commitMessage(store, 'x', { hold: true });
        await new Promise((r) => setImmediate(r));
        expect(calls).toBe(0);
      });
    });

    describe('queue operations and summaries', () => {
      it('summaries give pending domains without claiming, also after a restart', async () => {
        const a = await commitMessage(store, 'x', {
          recipients: [
            { id: 1, address: 'u@Example.COM', originalAddress: 'u@Example.COM' },
            { id: 2, address: 'v@example.com', originalAddress: 'v@example.com' },
            { id: 3, address: 'w@other.test', originalAddress: 'w@other.test' },
          ],
        });
        const m = one(await claimAll(store), a);
        await store.recordOutcomes(m.lease, [{ recipientId: 3, outcome: outcome('sent') }]);
        await store.release(m.lease, { state: 'deferred', dueAt: Date.now() + LONG });
        for (const restart of [false, true]) {
          const s = restart ? await reopen() : store;
          const rows = await s.summaries();
          expect(rows).toHaveLength(1);
          expect(rows[0]).toMatchObject({ queueId: a, state: 'deferred', pending: 2 });
          expect(rows[0]!.domains).toEqual(['example.com']);
        }
        expect(await store.summaries({ states: ['hold'] })).toEqual([]);
      });

      it('hold takes mail out of circulation; unhold makes it due at once', async () => {
        const a = await commitMessage(store);
        const b = await commitMessage(store);
        expect(await store.hold([a, 'Unknown00001'], 'checking')).toEqual([a]);
        const claimed = await claimAll(store);
        expect(claimed.map((c) => c.record.queueId)).toEqual([b]);
        expect((await store.counts()).hold).toBe(1);
        expect(await store.unhold('ALL')).toEqual([a]);
        const again = await claimAll(store);
        expect(again.map((c) => c.record.queueId)).toEqual([a]);
      });

      it('hold of an active message revokes its lease and keeps its durable outcomes', async () => {
        const a = await commitMessage(store, 'x', { recipients: recipients(2) });
        const m = one(await claimAll(store), a);
        await store.recordOutcomes(m.lease, [{ recipientId: 1, outcome: outcome('bounced') }]);
        expect(await store.hold([a])).toEqual([a]);
        await expect(
          store.release(m.lease, { state: 'deferred', dueAt: 0 }),
        ).rejects.toBeInstanceOf(LeaseLostError);
        await store.unhold([a]);
        const again = one(await claimAll(store), a);
        expect(again.record.recipients.map((r) => r.state)).toEqual(['bounced', 'pending']);
      });

      it('delete removes messages in any state, for good', async () => {
        const a = await commitMessage(store);
        const b = await commitMessage(store, 'x', { hold: true });
        const c = await commitMessage(store);
        one(await claimAll(store, { limit: 1 }), a);
        expect(await store.delete([a, b])).toEqual([a, b].sort());
        expect(await readAll(store.openContent(a)).catch((e: unknown) => e)).toBeInstanceOf(Error);
        const after = await reopen();
        expect((await after.list()).map((e) => e.queueId)).toEqual([c]);
        expect(await after.delete('ALL')).toEqual([c]);
        expect(await after.counts()).toEqual({
          incoming: 0,
          active: 0,
          deferred: 0,
          hold: 0,
          corrupt: 0,
        });
      });

      it('requeue and expedite make deferred mail claimable now', async () => {
        const a = await commitMessage(store);
        const b = await commitMessage(store);
        for (const m of await claimAll(store))
          await store.release(m.lease, { state: 'deferred', dueAt: Date.now() + LONG });
        expect(await claimAll(store)).toEqual([]);
        expect(await store.requeue([a])).toEqual([a]);
        expect(await store.expedite([b])).toEqual([b]);
        const got = await claimAll(store);
        expect(got.map((c) => c.record.queueId).sort()).toEqual([a, b].sort());
        expect(one(got, a).from).toBe('incoming');
        expect(one(got, b).from).toBe('deferred');
      });
    });
  });
}
