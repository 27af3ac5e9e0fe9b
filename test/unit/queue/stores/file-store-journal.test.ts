/**
 * FileQueueStore with its journal, on real files: small messages share fdatasyncs and
 * are never acknowledged before theirs completes, large ones and held ones get a file
 * of their own, a just-committed message is claimed and read without touching the
 * journal, messages that stay queued move out to files (with their outcomes) and
 * survive a crash there, a message found both in a file and in the journal is the
 * file's, finished segments are deleted and a message pinning an old one is moved out.
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.js';
import { Logger } from '../../../../src/log.js';
import { FileQueueStore } from '../../../../src/queue/stores/file-store.js';
import { LOCK_FILE } from '../../../../src/queue/stores/file-store-lock.js';
import type { FileQueueJournalOptions } from '../../../../src/queue/stores/file-store-options.js';
import { SPARE_NAME } from '../../../../src/queue/stores/journal/segment-spare.js';
import type { LogEvent } from '../../../../src/types.js';
import { TestIo, tempDir } from './journal/journal-harness.js';
import { commitMessage, newRecord, outcome, readAll, recipients } from './store-conformance.js';

const FAR = 600_000;

describe('FileQueueStore with its journal', () => {
  let directory: string;
  let io: TestIo;
  let events: LogEvent[];
  const open: FileQueueStore[] = [];

  beforeEach(async () => {
    directory = await tempDir('postern-file-journal-');
    io = new TestIo();
    events = [];
  });
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close().catch(() => undefined);
    await fs.rm(directory, { recursive: true, force: true });
  });

  async function openStore(
    journal: FileQueueJournalOptions = {},
    clock?: ManualClock,
  ): Promise<FileQueueStore> {
    const store = new FileQueueStore({
      directory,
      logger: new Logger([(e) => events.push(e)]),
      journal: { io, ...journal },
      ...(clock ? { clock } : {}),
    });
    await store.open();
    open.push(store);
    return store;
  }

  /** The process dies (kill -9): what was written stays; a new store opens the directory. */
  async function killAndReopen(journal: FileQueueJournalOptions = {}): Promise<FileQueueStore> {
    await io.kill();
    open.length = 0;
    await fs.rm(join(directory, LOCK_FILE), { force: true });
    io = new TestIo();
    return openStore(journal);
  }

  /** The power fails: every journal file is cut back to what was fdatasync'ed. */
  async function powerCutAndReopen(): Promise<FileQueueStore> {
    await io.crash(() => 0);
    open.length = 0;
    await fs.rm(join(directory, LOCK_FILE), { force: true });
    io = new TestIo();
    return openStore();
  }

  const claim = (store: FileQueueStore, now = Date.now()) =>
    store.claim({ owner: 'n', limit: 1000, now, leaseMs: FAR, ignoreDueTime: true });

  const files = (state: string) => fs.readdir(join(directory, state));

  it('group commit: 200 concurrent commits share fdatasyncs and all survive a power cut', async () => {
    const store = await openStore();
    const before = io.datasyncs;
    const body = Buffer.alloc(4096, 0x61);
    const made = await Promise.all(Array.from({ length: 200 }, () => commitMessage(store, body)));
    const syncs = io.datasyncs - before;
    expect(syncs).toBeGreaterThan(0);
    expect(syncs).toBeLessThan(50);
    // No file of their own: nothing in incoming/ or tmp/.
    expect(await files('incoming')).toEqual([]);
    expect(await files('tmp')).toEqual([]);
    expect(store.journalStats()).toMatchObject({ messages: 200 });
    const again = await powerCutAndReopen();
    const claimed = await claim(again);
    expect(new Set(claimed.map((m) => m.record.queueId))).toEqual(new Set(made));
    for (const m of claimed.slice(0, 5))
      expect((await readAll(again.openContent(m.record.queueId))).equals(body)).toBe(true);
  });

  it('a commit resolves only once the fdatasync covering it has completed', async () => {
    const store = await openStore();
    const gate = io.holdNextSync();
    let done = false;
    const committing = commitMessage(store).then((id) => {
      done = true;
      return id;
    });
    await gate.reached;
    // The frame is written; its fdatasync is held: no acknowledgement yet.
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    expect((await store.counts()).incoming).toBe(0);
    gate.open();
    const id = await committing;
    expect((await claim(store)).map((m) => m.record.queueId)).toEqual([id]);
  });

  it('a message over the inline limit, or committed into hold, gets a file of its own', async () => {
    const store = await openStore({ inlineLimit: 1024 });
    const small = await commitMessage(store, Buffer.alloc(1000, 0x61));
    const large = await commitMessage(store, Buffer.alloc(5000, 0x62));
    const held = await commitMessage(store, 'Subject: held\r\n\r\nx\r\n', { hold: true });
    expect(await files('incoming')).toEqual([large]);
    expect(await files('hold')).toEqual([held]);
    expect(store.journalStats()).toMatchObject({ messages: 1 });
    expect(await store.counts()).toMatchObject({ incoming: 2, hold: 1 });
    const again = await killAndReopen({ inlineLimit: 1024 });
    const claimed = await claim(again);
    expect(claimed.map((m) => m.record.queueId).sort()).toEqual([small, large].sort());
    expect((await readAll(again.openContent(large))).equals(Buffer.alloc(5000, 0x62))).toBe(true);
  });

  it('hand-off: a just-committed message is claimed and read without reading the journal', async () => {
    // A clock that stands still: however slow this machine, the frame is not yet expired.
    const store = await openStore({}, new ManualClock(Date.now()));
    // A queue manager listens: the content is kept for it.
    store.onAvailable(() => undefined);
    const body = Buffer.from('Subject: handed off\r\n\r\nin memory\r\n');
    const id = await commitMessage(store, body);
    const reads = io.reads;
    const [m] = await claim(store);
    expect(m?.record.queueId).toBe(id);
    expect((await readAll(store.openContent(id))).equals(body)).toBe(true);
    expect(io.reads).toBe(reads);
    await store.recordOutcomes(m!.lease, [{ recipientId: 1, outcome: outcome('sent') }]);
    await store.remove(m!.lease);
    expect(store.journalStats()).toMatchObject({ messages: 0, handoffBytes: 0 });
  });

  it('with no queue manager listening, nothing is kept for the hand-off', async () => {
    const store = await openStore();
    const body = Buffer.from('Subject: no one listens\r\n\r\nqueued\r\n');
    const id = await commitMessage(store, body);
    expect(store.journalStats()).toMatchObject({ messages: 1, handoffBytes: 0 });
    const reads = io.reads;
    const [m] = await claim(store);
    expect(m?.record.queueId).toBe(id);
    expect((await readAll(store.openContent(id))).equals(body)).toBe(true);
    expect(io.reads).toBeGreaterThan(reads);
  });

  it('without hand-off budget the claim and the content come from the journal', async () => {
    const store = await openStore({ handoffBytes: 0 });
    store.onAvailable(() => undefined);
    const body = Buffer.from('Subject: read back\r\n\r\nfrom the segment\r\n');
    const id = await commitMessage(store, body);
    const reads = io.reads;
    const [m] = await claim(store);
    expect(m?.record.queueId).toBe(id);
    expect((await readAll(store.openContent(id))).equals(body)).toBe(true);
    expect(io.reads).toBeGreaterThan(reads);
  });

  it('a message deferred for later moves out to deferred/ with its outcomes and due time', async () => {
    const store = await openStore();
    const body = Buffer.from('Subject: later\r\n\r\nbody\r\n');
    const id = await commitMessage(store, body, { recipients: recipients(3) });
    const [m] = await claim(store);
    await store.recordOutcomes(m!.lease, [
      { recipientId: 1, outcome: outcome('sent') },
      { recipientId: 2, outcome: outcome('bounced', 'no such user') },
      { recipientId: 3, outcome: outcome('deferred', 'try later') },
    ]);
    const dueAt = Date.now() + 3_600_000;
    await store.release(m!.lease, { state: 'deferred', dueAt, warnTime: 123 });
    expect(await files('deferred')).toEqual([id]);
    expect(Math.round((await fs.stat(join(directory, 'deferred', id))).mtimeMs)).toBe(dueAt);
    expect(store.journalStats()).toMatchObject({ messages: 0, movedOut: 1 });
    expect(await store.nextDueTime()).toBe(dueAt);

    const again = await powerCutAndReopen();
    expect(await again.counts()).toMatchObject({ deferred: 1, incoming: 0 });
    expect(await again.nextDueTime()).toBe(dueAt);
    const [back] = await claim(again);
    expect(back?.record.warnTime).toBe(123);
    expect(back?.record.recipients.map((r) => [r.state, r.last?.text])).toEqual([
      ['sent', 'sent text'],
      ['bounced', 'no such user'],
      ['pending', 'try later'],
    ]);
    expect((await readAll(again.openContent(id))).equals(body)).toBe(true);
    // From its file on, the message is updated and removed there.
    await again.recordOutcomes(back!.lease, [{ recipientId: 3, outcome: outcome('sent') }]);
    await again.remove(back!.lease);
    expect(await files('active')).toEqual([]);
    expect(await (await killAndReopen()).counts()).toMatchObject({ deferred: 0, incoming: 0 });
  });

  it('a message deferred for a moment stays in the journal, and so does its due time', async () => {
    const store = await openStore({ moveOutAfterMs: 60_000 });
    const id = await commitMessage(store);
    const [m] = await claim(store);
    const dueAt = Date.now() + 5_000;
    await store.release(m!.lease, { state: 'deferred', dueAt });
    expect(await files('deferred')).toEqual([]);
    expect(store.journalStats()).toMatchObject({ messages: 1, movedOut: 0 });
    const again = await killAndReopen({ moveOutAfterMs: 60_000 });
    expect(await again.counts()).toMatchObject({ deferred: 1 });
    expect(await again.nextDueTime()).toBe(dueAt);
    expect(await again.claim({ owner: 'n', limit: 10, now: dueAt - 1, leaseMs: FAR })).toEqual([]);
    expect(
      (await again.claim({ owner: 'n', limit: 10, now: dueAt, leaseMs: FAR })).map(
        (c) => c.record.queueId,
      ),
    ).toEqual([id]);
  });

  it('queue operations find journalled mail: hold moves it out, release and delete follow it', async () => {
    const store = await openStore();
    const a = await commitMessage(store);
    const b = await commitMessage(store);
    const c = await commitMessage(store);
    expect((await store.list()).map((e) => e.queueId)).toEqual([a, b, c]);
    expect(await store.hold([a, b], 'look first')).toEqual([a, b]);
    expect((await files('hold')).sort()).toEqual([a, b].sort());
    expect(await store.delete([b, c])).toEqual([b, c]);
    expect(await files('hold')).toEqual([a]);
    expect(await store.unhold([a])).toEqual([a]);
    const again = await powerCutAndReopen();
    expect(await again.counts()).toMatchObject({ incoming: 0, deferred: 1, hold: 0 });
    const [m] = await claim(again);
    expect(m?.record.queueId).toBe(a);
    expect(m?.record.holdReason).toBe('look first');
  });

  it('requeue and expedite of mail still in the journal', async () => {
    const store = await openStore({ moveOutAfterMs: FAR });
    const id = await commitMessage(store);
    const [m] = await claim(store);
    await store.release(m!.lease, { state: 'deferred', dueAt: Date.now() + 60_000 });
    expect(await store.expedite([id])).toEqual([id]);
    expect(await store.nextDueTime()).toBeLessThanOrEqual(Date.now());
    expect(await store.requeue([id])).toEqual([id]);
    expect(await store.counts()).toMatchObject({ incoming: 1, deferred: 0 });
    const again = await killAndReopen({ moveOutAfterMs: FAR });
    expect(await again.counts()).toMatchObject({ incoming: 1, deferred: 0 });
    expect(await files('deferred')).toEqual([]);
  });

  it('a message both in a file and in the journal is the file’s after a crash', async () => {
    const store = await openStore();
    const id = await commitMessage(store, 'Subject: one\r\n\r\nx\r\n');
    // The state a crash leaves between a move-out's durable file and the journal's
    // record of the move: the same message, with a later history, in a file.
    const other = join(directory, 'other');
    const files = new FileQueueStore({ directory: other, journal: false });
    await files.open();
    const writer = await files.create(id);
    writer.content.end('Subject: one\r\n\r\nx\r\n');
    await writer.commit(newRecord(id, { sender: 'from-the-file@example.org', size: 19 }));
    await files.close();
    await io.kill();
    open.length = 0;
    await fs.rename(join(other, 'incoming', id), join(directory, 'incoming', id));
    await fs.rm(join(directory, LOCK_FILE), { force: true });
    io = new TestIo();
    let again = await openStore();
    expect(await again.counts()).toMatchObject({ incoming: 1 });
    expect((await again.list())[0]?.sender).toBe('from-the-file@example.org');
    expect(again.journalStats()).toMatchObject({ messages: 0 });
    expect(events.some((e) => /the files win/.test(e.text))).toBe(true);
    again = await powerCutAndReopen();
    expect(await again.counts()).toMatchObject({ incoming: 1 });
    expect(again.journalStats()).toMatchObject({ messages: 0 });
  });

  it('finished segments are deleted; a message pinning an old one moves out', async () => {
    const options = { segmentSize: 64 * 1024 };
    const store = await openStore(options);
    const body = Buffer.alloc(3000, 0x63);
    const pinned = await commitMessage(store, body);
    await claim(store); // the pinned one is claimed and left active, as a slow delivery
    for (let round = 0; round < 20; round++) {
      await Promise.all(Array.from({ length: 20 }, () => commitMessage(store, body)));
      for (const m of await claim(store)) {
        await store.recordOutcomes(m.lease, [{ recipientId: 1, outcome: outcome('sent') }]);
        await store.remove(m.lease);
      }
    }
    // 400 messages of 3 KB went through 64 KiB segments; only the pinned one is left,
    // and it is moved out (the store also does this on its own every few hundred commits).
    await store.compactJournal();
    const stats = store.journalStats()!;
    expect(stats.segmentsCreated).toBeGreaterThan(10);
    expect(stats.segments).toBeLessThanOrEqual(2);
    expect(stats.movedOut).toBe(1);
    expect(stats.messages).toBe(0);
    expect(await files('active')).toEqual([pinned]);
    expect(await store.counts()).toMatchObject({ active: 1, incoming: 0 });
    // The segments, and at most the spare the next one will be made from.
    const journalFiles = await fs.readdir(join(directory, 'journal'));
    expect(journalFiles.filter((n) => n.endsWith('.seg')).length).toBe(stats.segments);
    for (const other of journalFiles.filter((n) => !n.endsWith('.seg')))
      expect(other).toBe(SPARE_NAME);
    // After a crash the pinned message is back in incoming/, in its own file.
    const again = await killAndReopen(options);
    const [m] = await claim(again);
    expect(m?.record.queueId).toBe(pinned);
    expect((await readAll(again.openContent(pinned))).equals(body)).toBe(true);
  });

  it('keeps the journal private: directory 0700, segments 0600', async () => {
    await openStore();
    expect((await fs.stat(join(directory, 'journal'))).mode & 0o777).toBe(0o700);
    const segments = await fs.readdir(join(directory, 'journal'));
    expect(segments.length).toBeGreaterThan(0);
    for (const s of segments)
      expect((await fs.stat(join(directory, 'journal', s))).mode & 0o777).toBe(0o600);
  });

  it('with the journal turned off, what an earlier run journalled is still delivered', async () => {
    const store = await openStore();
    const old = await commitMessage(store);
    await store.close();
    open.length = 0;
    const plain = new FileQueueStore({ directory, journal: false });
    await plain.open();
    open.push(plain);
    const fresh = await commitMessage(plain);
    expect(await files('incoming')).toEqual([fresh]);
    expect((await claim(plain)).map((m) => m.record.queueId).sort()).toEqual([old, fresh].sort());
  });

  it('journal.preallocate: false makes no spare segment, where the default makes one', async () => {
    const body = Buffer.alloc(3000, 0x61);
    const spares = async () =>
      (await fs.readdir(join(directory, 'journal'))).filter((n) => n === SPARE_NAME);
    const plain = await openStore({ segmentSize: 64 * 1024, preallocate: false });
    for (let i = 0; i < 60; i++) await commitMessage(plain, body);
    expect(plain.journalStats()).toMatchObject({ segmentsPreallocated: 0 });
    expect(plain.journalStats()!.segmentsCreated).toBeGreaterThan(1);
    expect(await spares()).toEqual([]);
    await plain.close();
    open.length = 0;
    // The same load with the default: the journal rotates into filled spares.
    // (The spare fills in the background: bounded by count, not by time.)
    const filled = await openStore({ segmentSize: 64 * 1024 });
    for (let i = 0; i < 600 && filled.journalStats()!.segmentsPreallocated === 0; i++)
      await commitMessage(filled, body);
    expect(filled.journalStats()!.segmentsPreallocated).toBeGreaterThan(0);
  });

  it('refuses a journal.preallocate that is not true or false', () => {
    expect(
      () =>
        new FileQueueStore({ directory, journal: { preallocate: 'yes' as unknown as boolean } }),
    ).toThrow('journal.preallocate must be true or false, not yes');
  });
});
