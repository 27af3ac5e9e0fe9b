/**
 * The queue journal's hand-off frames are kept for HANDOFF_MS at most: mail that waits
 * (nothing claims it) gives its memory back and is read from its segment when its
 * turn comes; a slot freed and reused meanwhile keeps its new message's frame; a
 * FileQueueStore passes its clock, so a message committed and left waiting is claimed
 * from the journal's file; the record committed with a frame goes to the first read as
 * it is, for the messages committed last only. (Without a listening queue manager the store keeps no
 * frame at all: file-store-journal.test.ts.)
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../../src/clock.js';
import { FileQueueStore } from '../../../../../src/queue/stores/file-store.js';
import { Journal } from '../../../../../src/queue/stores/journal/journal.js';
import {
  HANDOFF_MS,
  RECORDS_KEPT,
} from '../../../../../src/queue/stores/journal/journal-handoff.js';
import type { MessageRecord } from '../../../../../src/queue/types.js';
import { QueueIdGenerator } from '../../../../../src/queue-id.js';
import { commitMessage, readAll } from '../store-conformance.js';
import { contentFor, storedFor, TestIo, tempDir } from './journal-harness.js';

const ids = new QueueIdGenerator();
const dirs: string[] = [];
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0)) await close().catch(() => undefined);
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

async function dir(): Promise<string> {
  const d = await tempDir('postern-journal-handoff-');
  dirs.push(d);
  return d;
}

describe('Journal hand-off', () => {
  it('gives the record committed with a frame to the first read, once, for the last RECORDS_KEPT messages; the rest is parsed', async () => {
    const journal = await Journal.open({ directory: await dir(), io: new TestIo() });
    closers.push(() => journal.close());
    const committed = new Map<string, MessageRecord>();
    for (let i = 0; i < RECORDS_KEPT + 2; i++) {
      const id = ids.next();
      const record = storedFor(id);
      committed.set(id, record);
      await journal.appendMessage(record, [contentFor(id)]);
    }
    const first = [...committed.keys()][0]!;
    const last = [...committed.keys()].at(-1)!;
    // The newest: the very object committed, not a parse of it; a second read parses.
    expect((await journal.readRecord(last)).record).toBe(committed.get(last));
    const again = (await journal.readRecord(last)).record;
    expect(again).not.toBe(committed.get(last));
    expect(again).toEqual(committed.get(last));
    // Past the ring: parsed from the frame still held, the same data.
    const old = (await journal.readRecord(first)).record;
    expect(old).not.toBe(committed.get(first));
    expect(old).toEqual(committed.get(first));
    expect(journal.get(first)!.frame).toBeDefined();
    // An update written since the commit: the record read has it applied.
    const kept = [...committed.keys()].at(-2)!;
    const outcome = {
      status: 'deferred',
      code: 451,
      enhanced: '4.4.1',
      text: 'later',
      time: 1,
    } as const;
    await journal.recordOutcomes(kept, [{ recipientId: 1, outcome }], true);
    const updated = (await journal.readRecord(kept)).record;
    expect(updated).not.toBe(committed.get(kept));
    expect(updated.recipients[0]!.last).toEqual(outcome);
  });

  it('gives back a frame nothing took within HANDOFF_MS; the content is then read from the segment', async () => {
    const clock = new ManualClock(1_000_000);
    const io = new TestIo();
    const journal = await Journal.open({ directory: await dir(), clock, io });
    closers.push(() => journal.close());
    const a = ids.next();
    const ea = await journal.appendMessage(storedFor(a), [contentFor(a)]);
    expect(journal.budget.used).toBe(ea.frame!.length);

    await clock.advance(HANDOFF_MS - 1);
    expect(journal.get(a)!.frame).toBeDefined();
    const reads = io.reads;
    expect((await readAll(journal.openContent(a))).equals(contentFor(a))).toBe(true);
    expect(io.reads).toBe(reads);

    await clock.advance(1);
    expect(journal.get(a)!.frame).toBeUndefined();
    expect(journal.budget.used).toBe(0);
    expect(journal.stats().handoffBytes).toBe(0);
    expect((await readAll(journal.openContent(a))).equals(contentFor(a))).toBe(true);
    expect((await journal.readRecord(a)).record.queueId).toBe(a);
    expect(io.reads).toBeGreaterThan(reads);
  });

  it('expires each frame on its own time, and never the frame of a message that took over a freed slot', async () => {
    const clock = new ManualClock(1_000_000);
    const journal = await Journal.open({ directory: await dir(), clock });
    closers.push(() => journal.close());
    const a = ids.next();
    await journal.appendMessage(storedFor(a), [contentFor(a)]);
    await clock.advance(HANDOFF_MS / 2);
    const b = ids.next();
    await journal.appendMessage(storedFor(b), [contentFor(b)]);
    // b is delivered at once; c is committed later and may take b's slot.
    await journal.markRemoved(b);
    await clock.advance(HANDOFF_MS / 4);
    const c = ids.next();
    const ec = await journal.appendMessage(storedFor(c), [contentFor(c)]);

    await clock.advance(HANDOFF_MS / 4);
    expect(journal.get(a)!.frame).toBeUndefined();
    expect(journal.get(c)!.frame).toBeDefined();
    // b's expiry comes and goes: c keeps its frame until its own time.
    await clock.advance(HANDOFF_MS / 2);
    expect(journal.get(c)!.frame).toBeDefined();
    expect(journal.budget.used).toBe(ec.frame!.length);
    await clock.advance(HANDOFF_MS / 4);
    expect(journal.get(c)!.frame).toBeUndefined();
    expect(journal.budget.used).toBe(0);
  });

  it('a FileQueueStore message left waiting is claimed from the journal file, its budget free again', async () => {
    const clock = new ManualClock(Date.now());
    const io = new TestIo();
    const store = new FileQueueStore({ directory: await dir(), clock, journal: { io } });
    await store.open();
    closers.push(() => store.close());
    // A queue manager listens (so the frame is kept), but its window is full: nothing claims.
    store.onAvailable(() => undefined);
    const body = Buffer.from('Subject: waits\r\n\r\nfor its turn\r\n');
    const id = await commitMessage(store, body);
    expect(store.journalStats()!.handoffBytes).toBeGreaterThan(0);

    await clock.advance(HANDOFF_MS);
    expect(store.journalStats()!.handoffBytes).toBe(0);
    const reads = io.reads;
    const [m] = await store.claim({
      now: clock.now(),
      limit: 1,
      owner: 'qmgr',
      leaseMs: 60_000,
    });
    expect(m?.record.queueId).toBe(id);
    expect((await readAll(store.openContent(id))).equals(body)).toBe(true);
    expect(io.reads).toBeGreaterThan(reads);
  });
});
