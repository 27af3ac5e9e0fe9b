/**
 * Segment lifecycle of the queue journal on real files: rotation at the segment size,
 * deletion of finished segments oldest first (never one that an older live message
 * still needs, never one being read), pinning, moving out, and the hand-off budget.
 *
 * @module
 */

import { once } from 'node:events';
import { promises as fs } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Journal } from '../../../../../src/queue/stores/journal/journal.js';
import { segmentName } from '../../../../../src/queue/stores/journal/journal-format.js';
import { QueueIdGenerator } from '../../../../../src/queue-id.js';
import { readAll } from '../store-conformance.js';
import { contentFor, storedFor, TestIo, tempDir } from './journal-harness.js';

const ids = new QueueIdGenerator();
const dirs: string[] = [];
const journals: Journal[] = [];
const SEGMENT = 64 * 1024;

async function fresh(options: { handoffBudget?: number; io?: TestIo } = {}): Promise<Journal> {
  const dir = await tempDir();
  dirs.push(dir);
  const j = await Journal.open({ directory: dir, segmentSize: SEGMENT, ...options });
  journals.push(j);
  return j;
}

afterEach(async () => {
  for (const j of journals.splice(0)) await j.close().catch(() => undefined);
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

async function segmentFiles(dir: string): Promise<string[]> {
  return (await fs.readdir(dir)).filter((n) => n.endsWith('.seg')).sort();
}

/** Fills segments with 4 KB messages; returns them grouped by segment. */
async function fill(journal: Journal, count: number): Promise<Map<number, string[]>> {
  const bySegment = new Map<number, string[]>();
  for (let i = 0; i < count; i++) {
    const id = ids.next();
    const entry = await journal.appendMessage(storedFor(id), [contentFor(id)]);
    bySegment.set(entry.segment, [...(bySegment.get(entry.segment) ?? []), id]);
  }
  return bySegment;
}

describe('Journal segments', () => {
  it('rotates at the segment size and deletes finished segments oldest first', async () => {
    const journal = await fresh();
    const bySegment = await fill(journal, 60);
    const segments = [...bySegment.keys()];
    expect(segments.length).toBeGreaterThanOrEqual(3);
    expect((await segmentFiles(journal.directory)).length).toBe(segments.length);

    // Finish everything in the second segment: the first still has live mail, so
    // the second must stay (its removal frames may be needed to keep the first's
    // finished messages finished... and it is newer than a live one).
    for (const id of bySegment.get(segments[1]!)!) await journal.markRemoved(id);
    await journal.reclaim();
    expect(await segmentFiles(journal.directory)).toContain(segmentName(segments[1]!));

    // Now the first: both go, in order. (The first segment may hold only a message or
    // two: the journal moves into its preallocated spare as soon as that is ready.)
    const first = bySegment.get(segments[0]!)!;
    const n = Math.min(3, first.length);
    const pinned = journal.pinning(n).map((e) => e.queueId);
    expect(pinned).toEqual(first.slice(0, n));
    for (const id of bySegment.get(segments[0]!)!) await journal.markRemoved(id);
    await journal.reclaim();
    const left = await segmentFiles(journal.directory);
    expect(left).not.toContain(segmentName(segments[0]!));
    expect(left).not.toContain(segmentName(segments[1]!));
    expect(left).toContain(segmentName(segments[2]!));
    expect(journal.stats().segmentsReclaimed).toBe(2);

    // After a restart the removed messages stay removed and the rest is intact.
    await journal.close();
    const again = await Journal.open({ directory: journal.directory, segmentSize: SEGMENT });
    journals.push(again);
    for (const id of [...bySegment.get(segments[0]!)!, ...bySegment.get(segments[1]!)!])
      expect(again.get(id)).toBeUndefined();
    for (const seq of segments.slice(2))
      for (const id of bySegment.get(seq)!) expect(again.get(id)).toBeDefined();
  });

  it('syncs the removal frames before it deletes the segment they finish', async () => {
    const io = new TestIo();
    const journal = await fresh({ io });
    const bySegment = await fill(journal, 40);
    const first = [...bySegment.keys()][0]!;
    for (const id of bySegment.get(first)!) void journal.markRemoved(id);
    // Segment syncs only: a spare segment being zero-filled syncs on its own.
    const segmentSyncs = () => io.synced.filter((s) => s.path.endsWith('.seg')).length;
    const syncs = segmentSyncs();
    await journal.reclaim();
    expect(segmentSyncs()).toBe(syncs + 1);
    expect(await segmentFiles(journal.directory)).not.toContain(segmentName(first));
  });

  it('moving a message out frees its segment like removing it', async () => {
    const journal = await fresh();
    const bySegment = await fill(journal, 40);
    const first = [...bySegment.keys()][0]!;
    for (const id of bySegment.get(first)!) await journal.markMoved(id);
    await journal.reclaim();
    expect(await segmentFiles(journal.directory)).not.toContain(segmentName(first));
    expect(journal.get(bySegment.get(first)![0]!)).toBeUndefined();
  });

  it('keeps a segment while a content stream reads it, and deletes it after', async () => {
    const journal = await fresh({ handoffBudget: 0 });
    const bySegment = await fill(journal, 40);
    const first = [...bySegment.keys()][0]!;
    const reading = bySegment.get(first)![0]!;
    const stream = journal.openContent(reading);
    for (const id of bySegment.get(first)!) await journal.markRemoved(id);
    await journal.reclaim();
    expect(await segmentFiles(journal.directory)).toContain(segmentName(first));
    const closed = once(stream, 'close');
    expect((await readAll(stream)).equals(contentFor(reading))).toBe(true);
    await closed;
    await journal.reclaim();
    expect(await segmentFiles(journal.directory)).not.toContain(segmentName(first));
  });

  it('keeps just-committed content in memory within the hand-off budget and serves it from there', async () => {
    const io = new TestIo();
    const journal = await fresh({ handoffBudget: 10_000, io });
    const a = ids.next();
    const b = ids.next();
    const c = ids.next();
    const ea = await journal.appendMessage(storedFor(a), [contentFor(a)]);
    const eb = await journal.appendMessage(storedFor(b), [contentFor(b)]);
    // Two 4 KB frames fit in 10,000 bytes, a third does not.
    const ec = await journal.appendMessage(storedFor(c), [contentFor(c)]);
    expect(ea.content?.equals(contentFor(a))).toBe(true);
    expect(eb.content).toBeDefined();
    expect(ec.content).toBeUndefined();
    expect(journal.stats().handoffRefused).toBe(1);
    expect(journal.budget.used).toBe(ea.frame!.length + eb.frame!.length);
    // Served from memory: the file is not read (a broken read would fail the stream).
    expect((await readAll(journal.openContent(a))).equals(contentFor(a))).toBe(true);
    expect((await journal.readRecord(a)).record.queueId).toBe(a);
    // Released by delivery, by a release, by removal.
    journal.releaseHandoff(a);
    await journal.changeState(b, { state: 'deferred', dueAt: 1 }, false);
    expect(journal.budget.used).toBe(0);
    expect((await readAll(journal.openContent(a))).equals(contentFor(a))).toBe(true);
    const d = ids.next();
    const ed = await journal.appendMessage(storedFor(d), [contentFor(d)]);
    expect(ed.content).toBeDefined();
    await journal.markRemoved(d);
    expect(journal.budget.used).toBe(0);
  });
});
