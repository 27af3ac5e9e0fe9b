/**
 * Group commit of the queue journal, on real files: concurrent commits share
 * fdatasyncs, no commit resolves before the fdatasync covering its bytes has
 * completed, and a failed fdatasync fails its whole batch and nothing else, after
 * which the journal carries on and recovery ignores the failed bytes.
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { QueueStoreError } from '../../../../../src/errors.js';
import { Journal } from '../../../../../src/queue/stores/journal/journal.js';
import { segmentName } from '../../../../../src/queue/stores/journal/journal-format.js';
import { INLINE_WRITE_BYTES } from '../../../../../src/queue/stores/journal/journal-io.js';
import { QueueIdGenerator } from '../../../../../src/queue-id.js';
import { outcome, readAll } from '../store-conformance.js';
import { contentFor, storedFor, TestIo, tempDir } from './journal-harness.js';

const ids = new QueueIdGenerator();
const dirs: string[] = [];
const journals: Journal[] = [];

async function openJournal(io: TestIo, directory?: string): Promise<Journal> {
  const dir = directory ?? (await tempDir());
  if (!directory) dirs.push(dir);
  const j = await Journal.open({ directory: dir, io });
  journals.push(j);
  return j;
}

afterEach(async () => {
  for (const j of journals.splice(0)) await j.close().catch(() => undefined);
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

describe('Journal group commit', () => {
  it('lets 20 concurrent commits share fdatasyncs, each resolving only after one covering its bytes', async () => {
    const io = new TestIo();
    const journal = await openJournal(io);
    const base = io.datasyncs;
    const acked: { id: string; end: number; path: string; syncsBefore: number }[] = [];
    // Hold the first batch's fdatasync so the other 19 commits queue behind it.
    const gate = io.holdNextSync();
    const commits = Array.from({ length: 20 }, async () => {
      const id = ids.next();
      const entry = await journal.appendMessage(storedFor(id), [contentFor(id)]);
      acked.push({
        id,
        end: entry.contentOffset + entry.contentLength,
        path: join(journal.directory, segmentName(entry.segment)),
        syncsBefore: io.synced.length,
      });
    });
    await gate.reached;
    // The first batch is written and waits in fdatasync: nothing is acknowledged.
    expect(acked).toHaveLength(0);
    gate.open();
    await Promise.all(commits);
    const used = io.datasyncs - base;
    expect(used).toBeGreaterThanOrEqual(1);
    expect(used).toBeLessThanOrEqual(3);
    expect(journal.stats().largestBatch).toBeGreaterThanOrEqual(10);
    // Every acknowledged frame lies within a completed fdatasync of its file.
    for (const a of acked) {
      const covering = io.synced.slice(0, a.syncsBefore).filter((s) => s.path === a.path);
      expect(covering.some((s) => s.size >= a.end)).toBe(true);
    }
  });

  it('does not resolve a commit while its fdatasync is slow, and resolves it once it completes', async () => {
    const io = new TestIo();
    const journal = await openJournal(io);
    const gate = io.holdNextSync();
    const id = ids.next();
    let resolved = false;
    const commit = journal.appendMessage(storedFor(id), [contentFor(id)]).then(() => {
      resolved = true;
    });
    await gate.reached;
    // Let every other callback run: the commit must still wait for the sync.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(resolved).toBe(false);
    gate.open();
    await commit;
    expect(resolved).toBe(true);
  });

  it('fails every commit of a batch whose fdatasync fails, and nothing else; the journal carries on', async () => {
    const io = new TestIo();
    const journal = await openJournal(io);
    const before = ids.next();
    await journal.appendMessage(storedFor(before), [contentFor(before)]);

    const gate = io.holdNextSync();
    io.failures.push(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    const failedIds = Array.from({ length: 5 }, () => ids.next());
    const failed = failedIds.map((id) =>
      journal.appendMessage(storedFor(id), [contentFor(id)]).then(
        () => 'ok',
        (err: unknown) => err,
      ),
    );
    await gate.reached;
    gate.open();
    const results = await Promise.all(failed);
    for (const r of results) {
      expect(r).toBeInstanceOf(QueueStoreError);
      expect((r as Error).message).toMatch(/cannot write the queue journal: EIO.*free space/);
    }
    for (const id of failedIds) expect(journal.get(id)).toBeUndefined();

    // The next commits go to a new segment and succeed.
    const after = ids.next();
    await journal.appendMessage(storedFor(after), [contentFor(after)]);
    expect(journal.stats().failedBatches).toBe(1);
    expect(journal.stats().segmentsCreated).toBeGreaterThanOrEqual(2);
    expect((await readAll(journal.openContent(after))).equals(contentFor(after))).toBe(true);
    await journal.close();

    // Recovery: the failed batch's bytes (written, never synced) are abandoned.
    const reopened = await Journal.open({ directory: journal.directory });
    journals.push(reopened);
    expect(reopened.get(before)).toBeDefined();
    expect(reopened.get(after)).toBeDefined();
    for (const id of failedIds) expect(reopened.get(id)).toBeUndefined();
    expect(reopened.recovery.abandonedBytes).toBeGreaterThan(0);
    expect(reopened.recovery.damaged).toEqual([]);
  });

  it('forgets outcome frames of a failed batch, so reading the record never trusts them', async () => {
    const io = new TestIo();
    const journal = await openJournal(io);
    const id = ids.next();
    await journal.appendMessage(storedFor(id), [contentFor(id)]);
    await journal.recordOutcomes(
      id,
      [{ recipientId: 1, outcome: outcome('deferred', 'first') }],
      true,
    );
    const gate = io.holdNextSync();
    io.failures.push(new Error('EIO: i/o error, fdatasync'));
    const lost = [
      journal.recordOutcomes(id, [{ recipientId: 1, outcome: outcome('bounced', 'lost') }], false),
      journal.recordOutcomes(
        id,
        [{ recipientId: 1, outcome: outcome('deferred', 'lost too') }],
        true,
      ),
    ].map((p) =>
      p.then(
        () => 'ok',
        (err: Error) => err.message,
      ),
    );
    await gate.reached;
    gate.open();
    for (const r of await Promise.all(lost)) expect(r).toMatch(/EIO/);
    expect(journal.get(id)!.updates).toHaveLength(3);
    const { record } = await journal.readRecord(id);
    expect(record.recipients[0]).toMatchObject({ state: 'pending', last: { text: 'first' } });
    await journal.recordOutcomes(id, [{ recipientId: 1, outcome: outcome('sent', 'done') }], true);
    expect((await journal.readRecord(id)).record.recipients[0]).toMatchObject({ state: 'sent' });
  });

  it('writes lazy frames without an fdatasync and makes them durable with the next synced batch', async () => {
    const io = new TestIo();
    const journal = await openJournal(io);
    const id = ids.next();
    await journal.appendMessage(storedFor(id), [contentFor(id)]);
    const syncs = io.datasyncs;
    await journal.markRemoved(id);
    expect(io.datasyncs).toBe(syncs);
    await journal.sync();
    expect(io.datasyncs).toBe(syncs + 1);
    // Nothing unsynced: a second barrier costs no fdatasync.
    await journal.sync();
    expect(io.datasyncs).toBe(syncs + 1);
  });

  it('writes a small batch on the calling thread and a large one through the thread pool, one fdatasync each', async () => {
    const io = new TestIo();
    const journal = await openJournal(io);
    const small = ids.next();
    let [inline, pooled, syncs] = [io.inlineWrites, io.threadWrites, io.datasyncs];
    const entry = await journal.appendMessage(storedFor(small), [contentFor(small)]);
    // A lone commit: one pwritev without a thread-pool trip, then its own fdatasync.
    expect(io.inlineWrites - inline).toBe(1);
    expect(io.threadWrites - pooled).toBe(0);
    expect(io.datasyncs - syncs).toBe(1);
    expect(io.synced.at(-1)!.size).toBeGreaterThanOrEqual(
      entry.contentOffset + entry.contentLength,
    );
    const large = ids.next();
    const body = Buffer.alloc(INLINE_WRITE_BYTES + 1, 'x');
    [inline, pooled, syncs] = [io.inlineWrites, io.threadWrites, io.datasyncs];
    await journal.appendMessage(storedFor(large), [body]);
    expect(io.inlineWrites - inline).toBe(0);
    expect(io.threadWrites - pooled).toBeGreaterThanOrEqual(1);
    expect(io.datasyncs - syncs).toBe(1);
    const content = await readAll(journal.openContent(large));
    expect(content.equals(body)).toBe(true);
  });

  it('says when the fdatasync of a batch has started, while it runs, and not for a batch that needs none', async () => {
    const io = new TestIo();
    const journal = await openJournal(io);
    let resolved = false;
    const started: boolean[] = [];
    journal.syncStarted = () => started.push(resolved);
    const gate = io.holdNextSync();
    const id = ids.next();
    const commit = journal.appendMessage(storedFor(id), [contentFor(id)]).then(() => {
      resolved = true;
    });
    await gate.reached;
    // Told once, before the commit resolved: the fdatasync is still held.
    const whileHeld = [...started];
    gate.open();
    await commit;
    expect(whileHeld).toEqual([false]);
    // A lazy frame is written without an fdatasync: nothing to tell.
    await journal.recordOutcomes(id, [{ recipientId: 0, outcome: outcome('sent') }], false);
    expect(started).toEqual([false]);
    await journal.recordOutcomes(id, [{ recipientId: 0, outcome: outcome('deferred') }], true);
    expect(started).toEqual([false, true]);
  });

  it('rejects appends after close and refuses a duplicate queue ID', async () => {
    const io = new TestIo();
    const journal = await openJournal(io);
    const id = ids.next();
    const first = journal.appendMessage(storedFor(id), [contentFor(id)]);
    await expect(journal.appendMessage(storedFor(id), [contentFor(id)])).rejects.toThrow(
      /already in the journal/,
    );
    await first;
    await journal.close();
    await expect(journal.appendMessage(storedFor(ids.next()), [])).rejects.toThrow(/closed/);
  });
});
