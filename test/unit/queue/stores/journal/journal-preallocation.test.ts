/**
 * Preallocated journal segments on real files: a spare segment is zero-filled and
 * synced in the background and becomes the next segment, so commits write into space
 * that does not grow the file; after a restart appends go on after the last valid
 * frame, the zeros after it are not reported as a torn write, a torn frame followed by
 * zeros is reported once and cleared; a leftover spare is removed, and a spare that
 * cannot be made is logged while commits go on.
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Logger } from '../../../../../src/log.js';
import { Journal } from '../../../../../src/queue/stores/journal/journal.js';
import { segmentName } from '../../../../../src/queue/stores/journal/journal-format.js';
import type { JournalFile } from '../../../../../src/queue/stores/journal/journal-io.js';
import type { JournalOptions } from '../../../../../src/queue/stores/journal/journal-options.js';
import { SPARE_NAME } from '../../../../../src/queue/stores/journal/segment-spare.js';
import { QueueIdGenerator } from '../../../../../src/queue-id.js';
import type { LogEvent } from '../../../../../src/types.js';
import { readAll } from '../store-conformance.js';
import { contentFor, storedFor, TestIo, tempDir } from './journal-harness.js';

const ids = new QueueIdGenerator();
const SEGMENT = 64 * 1024;
const dirs: string[] = [];
const journals: Journal[] = [];

afterEach(async () => {
  for (const j of journals.splice(0)) await j.close().catch(() => undefined);
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

async function open(directory: string, options: Partial<JournalOptions> = {}): Promise<Journal> {
  const j = await Journal.open({ directory, segmentSize: SEGMENT, ...options });
  journals.push(j);
  return j;
}

async function freshDir(): Promise<string> {
  const dir = await tempDir();
  dirs.push(dir);
  return dir;
}

async function append(journal: Journal, size = 4000) {
  const id = ids.next();
  const entry = await journal.appendMessage(storedFor(id, size), [contentFor(id, size)]);
  return { id, entry, end: entry.contentOffset + entry.contentLength };
}

async function fileSize(dir: string, sequence: number): Promise<number> {
  return (await fs.stat(join(dir, segmentName(sequence)))).size;
}

/** Appends until a spare has been filled `n` times in all. */
async function appendUntilPreallocated(journal: Journal, n: number): Promise<void> {
  while (journal.stats().segmentsPreallocated < n) {
    await append(journal);
    if (journal.stats().segmentsPreallocated < n && journal.stats().segmentBytes > SEGMENT / 8) {
      await vi.waitFor(() => expect(journal.stats().segmentsPreallocated).toBe(n), {
        timeout: 10_000,
      });
    }
  }
}

describe('Journal segment preallocation', () => {
  it('fills a spare in the background and commits into it without growing the file', async () => {
    const dir = await freshDir();
    const io = new TestIo();
    const journal = await open(dir, { io });
    const first = await append(journal);
    await appendUntilPreallocated(journal, 1);
    expect((await fs.stat(join(dir, SPARE_NAME))).size).toBe(SEGMENT);

    // The first segment grew as it was written; the next commit goes into the spare.
    const moved = await append(journal);
    expect(moved.entry.segment).toBeGreaterThan(first.entry.segment);
    expect(await fileSize(dir, moved.entry.segment)).toBe(SEGMENT);
    await expect(fs.stat(join(dir, SPARE_NAME))).rejects.toThrow();

    // Every commit into it lands below the file's size: it never grows.
    let last = moved;
    while (last.entry.segment === moved.entry.segment) {
      expect(await fileSize(dir, moved.entry.segment)).toBe(SEGMENT);
      last = await append(journal);
    }
    // It filled up and the next spare took over, in size again.
    expect(await fileSize(dir, last.entry.segment)).toBe(SEGMENT);
    expect(journal.stats().segmentsPreallocated).toBe(2);
    for (const x of [first, moved, last])
      expect((await readAll(journal.openContent(x.id))).equals(contentFor(x.id, 4000))).toBe(true);

    await journal.close();
    await expect(fs.stat(join(dir, SPARE_NAME))).rejects.toThrow();
  });

  it('goes on after the last frame at a restart, with nothing reported about the zeros after it', async () => {
    const dir = await freshDir();
    const events: LogEvent[] = [];
    const logger = new Logger([(e) => events.push(e)]);
    const journal = await open(dir, { logger });
    await appendUntilPreallocated(journal, 1);
    const before = await append(journal);
    const kept = await append(journal);
    expect(kept.entry.segment).toBe(before.entry.segment);
    expect(await fileSize(dir, kept.entry.segment)).toBe(SEGMENT);
    await journal.close();

    const again = await open(dir, { logger });
    expect(again.recovery).toMatchObject({ tornBytes: 0, abandonedBytes: 0, damaged: [] });
    expect(events.filter((e) => e.level === 'warning')).toEqual([]);
    const next = await append(again);
    expect(next.entry.segment).toBe(kept.entry.segment);
    expect(next.entry.frameOffset).toBe(kept.end);
    expect(await fileSize(dir, next.entry.segment)).toBe(SEGMENT);
    expect(again.stats().segmentsCreated).toBe(0);
    await again.close();

    const third = await open(dir, { logger });
    expect(third.recovery).toMatchObject({ tornBytes: 0, damaged: [] });
    for (const x of [before, kept, next])
      expect((await readAll(third.openContent(x.id))).equals(contentFor(x.id, 4000))).toBe(true);
    expect(events.filter((e) => e.level === 'warning')).toEqual([]);
  });

  it('reports a torn frame before the zeros once, zeroes it, and never reads it again', async () => {
    const dir = await freshDir();
    const journal = await open(dir);
    await appendUntilPreallocated(journal, 1);
    const good = await append(journal);
    const lost = await append(journal, 900);
    expect(lost.entry.segment).toBe(good.entry.segment);
    await journal.close();

    // The last frame torn: its first 700 bytes written, then the zeros of the spare.
    const path = join(dir, segmentName(good.entry.segment));
    const h = await fs.open(path, 'r+');
    const torn = Buffer.alloc(lost.end - good.end);
    await h.read(torn, 0, torn.length, good.end);
    await h.write(Buffer.alloc(torn.length), 0, torn.length, good.end);
    let cut = 700;
    while (torn[cut - 1] === 0) cut--;
    await h.write(torn, 0, cut, good.end);
    await h.close();

    const j = await open(dir);
    expect(j.get(lost.id)).toBeUndefined();
    expect(j.get(good.id)).toBeDefined();
    expect(j.recovery.tornBytes).toBe(cut);
    expect(j.recovery.damaged).toEqual([]);
    const file = await fs.readFile(path);
    expect(file.length).toBe(SEGMENT);
    expect(file.subarray(good.end).every((b) => b === 0)).toBe(true);
    // A short message goes where the torn one was; what was torn is gone for good.
    const short = await append(j, 100);
    expect(short.entry.frameOffset).toBe(good.end);
    await j.close();

    const again = await open(dir);
    expect(again.recovery.tornBytes).toBe(0);
    expect(again.get(lost.id)).toBeUndefined();
    expect((await readAll(again.openContent(short.id))).equals(contentFor(short.id, 100))).toBe(
      true,
    );
    expect([...again.entries()].map((e) => e.queueId)).toContain(good.id);
  });

  it('removes a spare left by a crash at open', async () => {
    const dir = await freshDir();
    const journal = await open(dir);
    await append(journal);
    await journal.close();
    await fs.writeFile(join(dir, SPARE_NAME), Buffer.from('half-filled spare of a crashed run'));
    const again = await open(dir);
    await expect(fs.stat(join(dir, SPARE_NAME))).rejects.toThrow();
    expect(again.recovery.damaged).toEqual([]);
  });

  it('logs a spare that cannot be made and keeps committing into segments that grow', async () => {
    const dir = await freshDir();
    const events: LogEvent[] = [];
    class NoSpareIo extends TestIo {
      override async open(path: string, flags: 'r' | 'r+' | 'wx+'): Promise<JournalFile> {
        if (path.endsWith(SPARE_NAME)) {
          throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
        }
        return super.open(path, flags);
      }
    }
    const journal = await open(dir, {
      io: new NoSpareIo(),
      logger: new Logger([(e) => events.push(e)]),
    });
    const committed: string[] = [];
    for (let i = 0; i < 40; i++) committed.push((await append(journal)).id);
    expect(journal.stats().segmentsCreated).toBeGreaterThan(1);
    expect(journal.stats().segmentsPreallocated).toBe(0);
    const warnings = events.filter((e) => e.level === 'warning').map((e) => e.text);
    expect(warnings.some((t) => /cannot preallocate the next segment: ENOSPC/.test(t))).toBe(true);
    // One attempt, and one warning, per segment: not one per commit.
    expect(warnings.length).toBeLessThanOrEqual(journal.stats().segmentsCreated);
    for (const id of committed) expect(journal.get(id)).toBeDefined();
  });

  it('never holds a commit or a rotation up for the fill: a stuck spare sync delays nothing', async () => {
    const dir = await freshDir();
    let release!: () => void;
    const stuck = new Promise<void>((resolve) => {
      release = resolve;
    });
    let spareSyncs = 0;
    class StuckSpareIo extends TestIo {
      override async open(path: string, flags: 'r' | 'r+' | 'wx+'): Promise<JournalFile> {
        const file = await super.open(path, flags);
        if (!path.endsWith(SPARE_NAME)) return file;
        return {
          ...file,
          datasync: async () => {
            spareSyncs++;
            await stuck;
            await file.datasync();
          },
        };
      }
    }
    const journal = await open(dir, { io: new StuckSpareIo() });
    const first = await append(journal);
    // Well past the first segment's end: every commit resolves while the fill hangs.
    const later = [];
    for (let i = 0; i < 40; i++) later.push(await append(journal));
    expect(spareSyncs).toBe(1);
    expect(journal.stats().segmentsPreallocated).toBe(0);
    expect(later.at(-1)!.entry.segment).toBeGreaterThan(first.entry.segment + 1);
    release();
    await journal.close();
    const again = await open(dir);
    for (const x of [first, ...later]) expect(again.get(x.id)).toBeDefined();
  });

  it('makes no spare when preallocation is off', async () => {
    const dir = await freshDir();
    const journal = await open(dir, { preallocate: false });
    for (let i = 0; i < 40; i++) await append(journal);
    expect(journal.stats().segmentsPreallocated).toBe(0);
    expect(journal.stats().segmentsCreated).toBeGreaterThan(1);
    expect((await fs.readdir(dir)).filter((n) => n === SPARE_NAME)).toEqual([]);
  });
});
