/**
 * Recovery of the queue journal from real segment files: a torn last frame cut at
 * every byte is ignored and truncated, a damaged frame in the middle is skipped with
 * the frames after it kept, and states, outcomes, due times, holds, moves and removals
 * are rebuilt as they were journalled.
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { QueueStoreError } from '../../../../../src/errors.js';
import { Journal } from '../../../../../src/queue/stores/journal/journal.js';
import {
  encodeSegmentHeader,
  JOURNAL_FORMAT_VERSION,
  SEGMENT_HEADER_SIZE,
  segmentName,
} from '../../../../../src/queue/stores/journal/journal-format.js';
import { QueueIdGenerator } from '../../../../../src/queue-id.js';
import { outcome, readAll } from '../store-conformance.js';
import { contentFor, storedFor, tempDir } from './journal-harness.js';

const ids = new QueueIdGenerator();
const dirs: string[] = [];
const journals: Journal[] = [];

async function open(directory: string): Promise<Journal> {
  const j = await Journal.open({ directory });
  journals.push(j);
  return j;
}

async function fresh(): Promise<Journal> {
  const dir = await tempDir();
  dirs.push(dir);
  return open(dir);
}

afterEach(async () => {
  for (const j of journals.splice(0)) await j.close().catch(() => undefined);
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

async function segmentFiles(dir: string): Promise<string[]> {
  return (await fs.readdir(dir)).filter((n) => n.endsWith('.seg')).sort();
}

describe('Journal recovery', () => {
  it('ignores a torn last frame cut at every byte, clears it, and appends after the last good frame', async () => {
    const journal = await fresh();
    const dir = journal.directory;
    const kept = [ids.next(), ids.next()];
    for (const id of kept) await journal.appendMessage(storedFor(id, 300), [contentFor(id, 300)]);
    const last = ids.next();
    const entry = await journal.appendMessage(storedFor(last, 120), [contentFor(last, 120)]);
    await journal.close();
    const name = segmentName(entry.segment);
    const original = await fs.readFile(join(dir, name));
    const start = entry.frameOffset;
    const end = entry.contentOffset + entry.contentLength;
    expect(end).toBe(original.length);
    expect(end - start).toBeGreaterThan(300);

    for (let cut = start; cut < end; cut++) {
      const probe = await tempDir();
      dirs.push(probe);
      await fs.writeFile(join(probe, name), original.subarray(0, cut));
      const j = await open(probe);
      expect(j.get(last), `cut at ${cut}`).toBeUndefined();
      for (const id of kept) expect(j.get(id), `cut at ${cut}`).toBeDefined();
      // Trailing zeros of a torn frame look like preallocated space: not counted.
      let torn = cut;
      while (torn > start && original[torn - 1] === 0) torn--;
      expect(j.recovery.tornBytes).toBe(torn - start);
      expect(j.recovery.damaged).toEqual([]);
      // Cut off, or zeroed where zeros follow it: nothing of it is read again.
      const left = await fs.readFile(join(probe, name));
      expect(left.length).toBe(torn === cut ? start : cut);
      expect(left.subarray(start).every((b) => b === 0)).toBe(true);
      if (cut === start + 7) {
        // Appends go on after the last good frame and survive another recovery.
        const next = ids.next();
        await j.appendMessage(storedFor(next), [contentFor(next)]);
        await j.close();
        const again = await open(probe);
        expect(again.get(next)).toBeDefined();
        expect(again.get(last)).toBeUndefined();
        expect(again.recovery.tornBytes).toBe(0);
        expect((await readAll(again.openContent(kept[1]!))).equals(contentFor(kept[1]!, 300))).toBe(
          true,
        );
        await again.close();
      } else {
        await j.close();
      }
      await fs.rm(probe, { recursive: true, force: true });
    }
  }, 120_000);

  it('also ignores a torn tail of garbage after the last good frame', async () => {
    const journal = await fresh();
    const id = ids.next();
    const entry = await journal.appendMessage(storedFor(id), [contentFor(id)]);
    await journal.close();
    const path = join(journal.directory, segmentName(entry.segment));
    await fs.appendFile(path, Buffer.from('\xf1JRN garbage that is not a frame', 'latin1'));
    const j = await open(journal.directory);
    expect(j.get(id)).toBeDefined();
    expect(j.recovery.tornBytes).toBe(32);
  });

  it('skips a damaged frame in the middle, keeps every frame after it, and keeps the segment aside', async () => {
    const journal = await fresh();
    const all = Array.from({ length: 7 }, () => ids.next());
    const entries = [];
    for (const id of all)
      entries.push(await journal.appendMessage(storedFor(id), [contentFor(id)]));
    await journal.close();
    const victim = entries[3]!;
    const path = join(journal.directory, segmentName(victim.segment));
    const h = await fs.open(path, 'r+');
    // One flipped byte inside the content, one in the length of the frame after it.
    await h.write(Buffer.from([0x00]), 0, 1, victim.contentOffset + 100);
    await h.write(Buffer.from([0x7f]), 0, 1, entries[4]!.frameOffset + 10);
    await h.close();

    const j = await open(journal.directory);
    expect(j.get(all[3]!)).toBeUndefined();
    expect(j.get(all[4]!)).toBeUndefined();
    for (const i of [0, 1, 2, 5, 6]) {
      expect(j.get(all[i]!)).toBeDefined();
      expect((await readAll(j.openContent(all[i]!))).equals(contentFor(all[i]!))).toBe(true);
    }
    expect(j.recovery.damaged).toHaveLength(1);
    expect(j.recovery.damaged[0]).toMatchObject({
      offset: victim.frameOffset,
      length: entries[5]!.frameOffset - victim.frameOffset,
    });
    expect(j.recovery.tornBytes).toBe(0);

    // Once nothing in it is live the damaged segment is renamed, not deleted.
    for (const i of [0, 1, 2, 5, 6]) await j.markRemoved(all[i]!);
    await j.reclaim();
    const names = await fs.readdir(journal.directory);
    expect(names).toContain(`${segmentName(victim.segment)}.damaged`);
    expect(names).not.toContain(segmentName(victim.segment));
  });

  it('rebuilds states, due times, outcomes, holds, moves and removals', async () => {
    const journal = await fresh();
    const [a, b, c, d, e, f, g] = Array.from({ length: 7 }, () => ids.next()) as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    for (const id of [a, b, c, d, e, f])
      await journal.appendMessage(storedFor(id), [contentFor(id)]);
    await journal.appendMessage(storedFor(g), [contentFor(g)], { hold: true });
    // a: a deferral, a sent mark, a release to deferred with a new warning time.
    await journal.recordOutcomes(
      a,
      [{ recipientId: 1, outcome: outcome('deferred', 'try later') }],
      true,
    );
    await journal.changeState(
      a,
      { state: 'deferred', dueAt: 1_700_000_600_000, warnTime: 42 },
      false,
    );
    // b: bounced, held with a reason.
    await journal.recordOutcomes(
      b,
      [{ recipientId: 1, outcome: outcome('bounced', 'no such user') }],
      true,
    );
    await journal.changeState(b, { state: 'hold', reason: 'manual review' }, true);
    // c: sent (lazy) then removed; d: moved out; e: corrupt; f: deferred then requeued.
    await journal.recordOutcomes(c, [{ recipientId: 1, outcome: outcome('sent') }], false);
    await journal.markRemoved(c);
    await journal.markMoved(d);
    await journal.changeState(e, { state: 'corrupt', reason: 'bad record' }, true);
    await journal.changeState(f, { state: 'deferred', dueAt: 5 }, false);
    await journal.changeState(f, { state: 'incoming' }, false);
    await journal.close();

    const j = await open(journal.directory);
    expect([...j.entries()].map((x) => x.queueId)).toEqual([a, b, e, f, g]);
    const ra = await j.readRecord(a);
    expect(ra.state).toBe('deferred');
    expect(ra.dueAt).toBe(1_700_000_600_000);
    expect(ra.record.warnTime).toBe(42);
    expect(ra.record.recipients[0]).toMatchObject({
      state: 'pending',
      last: { text: 'try later' },
    });
    const rb = await j.readRecord(b);
    expect(rb.state).toBe('hold');
    expect(rb.record.holdReason).toBe('manual review');
    expect(rb.record.recipients[0]).toMatchObject({
      state: 'bounced',
      last: { text: 'no such user' },
    });
    expect((await j.readRecord(e)).state).toBe('corrupt');
    expect(await j.readRecord(f)).toMatchObject({ state: 'incoming', dueAt: 0 });
    expect((await j.readRecord(g)).state).toBe('hold');
    expect(j.get(c)).toBeUndefined();
    expect(j.get(d)).toBeUndefined();
    expect(j.recovery.messages).toBe(5);
    expect((await readAll(j.openContent(a))).equals(contentFor(a))).toBe(true);
  });

  it('removes a newest segment whose header never became valid (an interrupted rotation)', async () => {
    const journal = await fresh();
    const id = ids.next();
    const entry = await journal.appendMessage(storedFor(id), [contentFor(id)]);
    await journal.close();
    // The segment opened by the close above is empty; a later one with a torn header:
    const torn = join(journal.directory, segmentName(entry.segment + 5));
    await fs.writeFile(torn, encodeSegmentHeader(entry.segment + 5, 0, 0).subarray(0, 30));
    const j = await open(journal.directory);
    expect(j.get(id)).toBeDefined();
    expect(j.recovery.discarded).toEqual([torn]);
    expect(j.recovery.damaged).toEqual([]);
    expect(await segmentFiles(journal.directory)).not.toContain(segmentName(entry.segment + 5));
  });

  it('refuses a segment of a newer format version with an error that says what to do', async () => {
    const journal = await fresh();
    await journal.close();
    const [name] = await segmentFiles(journal.directory);
    const path = join(journal.directory, name!);
    const header = encodeSegmentHeader(99, 0, 0);
    header.writeUInt32LE(JOURNAL_FORMAT_VERSION + 1, 8);
    const { crc32 } = await import('node:zlib');
    header.writeUInt32LE(crc32(header.subarray(0, 44)), 44);
    await fs.writeFile(join(journal.directory, segmentName(99)), header);
    await expect(Journal.open({ directory: journal.directory })).rejects.toThrow(QueueStoreError);
    await expect(Journal.open({ directory: journal.directory })).rejects.toThrow(
      /format version 2; this Postern reads version 1\. Run the newer Postern/,
    );
    expect((await fs.stat(path)).size).toBe(SEGMENT_HEADER_SIZE);
  });
});
