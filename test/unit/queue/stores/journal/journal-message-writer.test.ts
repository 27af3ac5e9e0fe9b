/**
 * JournalMessageWriter on real files: a message up to the inline limit is journalled
 * at commit (one frame, group-committed), a larger one spills to the store's own
 * per-message writer (here FileQueueStore's) with the buffered bytes first; abort
 * leaves nothing behind; open writers let the committer gather their commits.
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileQueueStore } from '../../../../../src/queue/stores/file-store.js';
import { Journal } from '../../../../../src/queue/stores/journal/journal.js';
import type { JournalEntry } from '../../../../../src/queue/stores/journal/journal-entry.js';
import {
  JournalMessageWriter,
  type JournalWriterHost,
} from '../../../../../src/queue/stores/journal/journal-message-writer.js';
import type { MessageRecord } from '../../../../../src/queue/types.js';
import { QueueIdGenerator } from '../../../../../src/queue-id.js';
import { newRecord, readAll } from '../store-conformance.js';
import { contentFor, TestIo, tempDir } from './journal-harness.js';

const ids = new QueueIdGenerator();
const dirs: string[] = [];
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const c of closers.splice(0)) await c().catch(() => undefined);
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

interface Fixture {
  journal: Journal;
  store: FileQueueStore;
  io: TestIo;
  committed: { entry: JournalEntry; record: MessageRecord; hold: boolean }[];
  done: string[];
  host: JournalWriterHost;
}

async function fixture(gatherMs = 0): Promise<Fixture> {
  const dir = await tempDir();
  dirs.push(dir);
  const io = new TestIo();
  const journal = await Journal.open({ directory: join(dir, 'journal'), io, gatherMs });
  const store = new FileQueueStore({ directory: join(dir, 'queue'), journal: false });
  await store.open();
  closers.push(
    () => journal.close(),
    () => store.close(),
  );
  const committed: Fixture['committed'] = [];
  const done: string[] = [];
  const host: JournalWriterHost = {
    journal,
    committed: (entry, record, hold) => committed.push({ entry, record, hold }),
    spill: (queueId) => store.create(queueId),
    done: (queueId) => done.push(queueId),
  };
  return { journal, store, io, committed, done, host };
}

/**
 * Writes `content` in pieces of `piece` bytes, honouring backpressure, and resolves
 * once the writer has taken the last piece (its write callback ran).
 */
async function writeIn(
  writer: JournalMessageWriter,
  content: Buffer,
  piece: number,
): Promise<void> {
  for (let at = 0; at < content.length; at += piece) {
    const chunk = content.subarray(at, at + piece);
    if (at + piece >= content.length) {
      await new Promise<void>((resolve, reject) =>
        writer.content.write(chunk, (err) => (err ? reject(err) : resolve())),
      );
    } else if (!writer.content.write(chunk)) {
      await new Promise((r) => writer.content.once('drain', r));
    }
  }
}

describe('JournalMessageWriter', () => {
  it('journals a message up to the inline limit at commit, in one durable frame', async () => {
    const f = await fixture();
    const id = ids.next();
    const content = contentFor(id, 64 * 1024);
    const writer = new JournalMessageWriter(id, f.host);
    await writeIn(writer, content, 1000);
    writer.content.end();
    expect((await readAll(await writer.openWritten())).equals(content)).toBe(true);
    const syncs = f.io.datasyncs;
    await writer.commit(newRecord(id, { size: content.length, hold: true }));
    expect(writer.spilled).toBe(false);
    expect(f.io.datasyncs).toBe(syncs + 1);
    expect(f.committed).toHaveLength(1);
    expect(f.committed[0]!.hold).toBe(true);
    expect(f.committed[0]!.record.recipients[0]!.state).toBe('pending');
    expect(f.journal.get(id)?.state).toBe('hold');
    expect((await readAll(f.journal.openContent(id))).equals(content)).toBe(true);
    expect(f.done).toEqual([id]);
    expect((await f.store.counts()).hold).toBe(0);
    await expect(writer.commit(newRecord(id))).rejects.toThrow(/already committed/);
  });

  it('spills a message past the inline limit to the store writer, buffered bytes first', async () => {
    const f = await fixture();
    const id = ids.next();
    const content = contentFor(id, 200 * 1024);
    const writer = new JournalMessageWriter(id, f.host);
    await writeIn(writer, content, 7000);
    expect(writer.spilled).toBe(true);
    await writer.commit(newRecord(id, { size: content.length }));
    expect(f.committed).toHaveLength(0);
    expect(f.journal.get(id)).toBeUndefined();
    expect((await f.store.counts()).incoming).toBe(1);
    expect((await readAll(f.store.openContent(id))).equals(content)).toBe(true);
    expect(f.done).toEqual([id]);
  });

  it('leaves nothing behind on abort, spilled or not', async () => {
    const f = await fixture();
    const small = ids.next();
    const w1 = new JournalMessageWriter(small, f.host);
    await writeIn(w1, contentFor(small, 500), 100);
    await w1.abort();
    const big = ids.next();
    const w2 = new JournalMessageWriter(big, f.host);
    await writeIn(w2, contentFor(big, 100 * 1024), 8192);
    expect(w2.spilled).toBe(true);
    await w2.abort();
    await w2.abort();
    expect(f.journal.size).toBe(0);
    expect(await f.store.counts()).toMatchObject({ incoming: 0, hold: 0 });
    expect(await fs.readdir(join(f.store.directory, 'tmp'))).toEqual([]);
    expect(f.done).toEqual([small, big]);
    await expect(w1.commit(newRecord(small))).rejects.toThrow(/aborted/);
  });

  it('aborts the store writer that a spill was still opening when abort came', async () => {
    const f = await fixture();
    let release!: () => void;
    const opened = new Promise<void>((r) => {
      release = r;
    });
    let abortedTarget!: () => void;
    const targetAborted = new Promise<void>((r) => {
      abortedTarget = r;
    });
    const host: JournalWriterHost = {
      ...f.host,
      spill: async (queueId) => {
        const w = await f.store.create(queueId);
        await opened;
        const abort = w.abort.bind(w);
        w.abort = async () => {
          await abort();
          abortedTarget();
        };
        return w;
      },
    };
    const id = ids.next();
    const writer = new JournalMessageWriter(id, host, 1024);
    writer.content.write(contentFor(id, 4096));
    // The write is waiting for the spill target; abort now, then let the spill finish.
    await new Promise((r) => setImmediate(r));
    await writer.abort();
    release();
    await targetAborted;
    expect(await fs.readdir(join(f.store.directory, 'tmp'))).toEqual([]);
    expect(await f.store.counts()).toMatchObject({ incoming: 0 });
  });

  it('refuses a record for another queue ID', async () => {
    const f = await fixture();
    const id = ids.next();
    const writer = new JournalMessageWriter(id, f.host);
    writer.content.end('x');
    await expect(writer.commit(newRecord(ids.next()))).rejects.toThrow(/names queue ID/);
  });

  it('with gatherMs, waits for the commits of open writers and syncs them together', async () => {
    const f = await fixture(1000);
    const writers = Array.from({ length: 5 }, () => {
      const id = ids.next();
      const w = new JournalMessageWriter(id, f.host);
      w.content.end(contentFor(id, 2000));
      return w;
    });
    const syncs = f.io.datasyncs;
    // The commits come one event-loop turn apart: without gathering, the first would
    // be synced alone.
    const commits: Promise<void>[] = [];
    for (const w of writers) {
      commits.push(w.commit(newRecord(w.queueId)));
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(commits);
    expect(f.io.datasyncs).toBe(syncs + 1);
    expect(f.journal.stats().largestBatch).toBe(5);
  });
});
