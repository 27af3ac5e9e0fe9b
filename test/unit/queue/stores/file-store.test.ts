/**
 * FileQueueStore: the conformance suite (a crash is abandoning the store and opening
 * a new one on the same directory), plus what only the file store does: group commit,
 * corrupt files moved aside, the directory lock, active files released at open, torn
 * update frames ignored, hostile names.
 *
 * @module
 */

import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QueueStoreError } from '../../../../src/errors.js';
import { Logger } from '../../../../src/log.js';
import { FileQueueStore } from '../../../../src/queue/stores/file-store.js';
import { LOCK_FILE } from '../../../../src/queue/stores/file-store-lock.js';
import { QueueIdGenerator } from '../../../../src/queue-id.js';
import type { LogEvent } from '../../../../src/types.js';
import { TestIo } from './journal/journal-harness.js';
import {
  commitMessage,
  outcome,
  readAll,
  recipients,
  runStoreConformance,
} from './store-conformance.js';

async function tempDir(): Promise<string> {
  return fs.mkdtemp(join(tmpdir(), 'postern-file-store-'));
}

/**
 * The conformance suite on the store with its journal (the default). A crash is the
 * process dying (kill -9): what was written stays, what was still queued in memory is
 * lost, and the old store can write nothing more.
 */
runStoreConformance('FileQueueStore', async () => {
  const directory = await tempDir();
  let io = new TestIo();
  let current = new FileQueueStore({ directory, journal: { io } });
  await current.open();
  return {
    store: current,
    reopen: async () => {
      await io.kill();
      // A crashed process leaves its lock behind with a dead pid; here the pid is
      // ours, so the lock is removed by hand, as the takeover would.
      await fs.rm(join(directory, LOCK_FILE), { force: true });
      io = new TestIo();
      current = new FileQueueStore({ directory, journal: { io } });
      await current.open();
      return current;
    },
    cleanup: async () => {
      await current.close().catch(() => undefined);
      await fs.rm(directory, { recursive: true, force: true });
    },
  };
});

/** The same suite with a file per message (`journal: false`). */
runStoreConformance('FileQueueStore without journal', async () => {
  const directory = await tempDir();
  let current = new FileQueueStore({ directory, journal: false });
  await current.open();
  return {
    store: current,
    reopen: async () => {
      await fs.rm(join(directory, LOCK_FILE), { force: true });
      current = new FileQueueStore({ directory, journal: false });
      await current.open();
      return current;
    },
    cleanup: async () => {
      await current.close().catch(() => undefined);
      await fs.rm(directory, { recursive: true, force: true });
    },
  };
});

/** What only the file store does with a file per message. */
describe('FileQueueStore files', () => {
  let directory: string;
  let events: LogEvent[];
  let logger: Logger;
  const open: FileQueueStore[] = [];
  const ids = new QueueIdGenerator();

  beforeEach(async () => {
    directory = await tempDir();
    events = [];
    logger = new Logger([(e) => events.push(e)]);
  });
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close().catch(() => undefined);
    await fs.rm(directory, { recursive: true, force: true });
  });

  async function openStore(): Promise<FileQueueStore> {
    const store = new FileQueueStore({ directory, logger, journal: false });
    await store.open();
    open.push(store);
    return store;
  }

  /** Abandons `store` as a crash would and opens a new one. */
  async function crashAndReopen(): Promise<FileQueueStore> {
    open.length = 0;
    await fs.rm(join(directory, LOCK_FILE), { force: true });
    return openStore();
  }

  const claim = (store: FileQueueStore, now = Date.now()) =>
    store.claim({ owner: 'n', limit: 1000, now, leaseMs: 600_000, ignoreDueTime: true });

  it('group commit: 200 concurrent commits share directory fsyncs', async () => {
    const store = await openStore();
    const before = store.directorySyncCount;
    const body = Buffer.alloc(4096, 0x61);
    const made = await Promise.all(Array.from({ length: 200 }, () => commitMessage(store, body)));
    const syncs = store.directorySyncCount - before;
    expect(syncs).toBeGreaterThan(0);
    expect(syncs).toBeLessThan(200);
    const again = await crashAndReopen();
    expect((await again.counts()).incoming).toBe(200);
    expect(new Set((await claim(again)).map((m) => m.record.queueId))).toEqual(new Set(made));
  });

  it('reads records of every size: small files in one read, large content or records past it', async () => {
    const store = await openStore();
    const cases = [
      { body: 'Subject: s\r\n\r\nx\r\n', rcpts: 1 },
      // The record starts just before, at and after the first read's end.
      { body: Buffer.alloc(7_900, 0x61), rcpts: 3 },
      { body: Buffer.alloc(8_192, 0x62), rcpts: 1 },
      { body: Buffer.alloc(300_000, 0x63), rcpts: 2 },
      // A record larger than the first read on its own.
      { body: 'Subject: many\r\n\r\nx\r\n', rcpts: 400 },
    ];
    const made = new Map<string, (typeof cases)[number]>();
    for (const c of cases) {
      const id = await commitMessage(store, c.body, { recipients: recipients(c.rcpts) });
      made.set(id, c);
    }
    const again = await crashAndReopen();
    const claimed = await claim(again);
    expect(claimed).toHaveLength(cases.length);
    for (const m of claimed) {
      const c = made.get(m.record.queueId)!;
      expect(m.record.recipients).toHaveLength(c.rcpts);
      expect(m.record.recipients.at(-1)!.address).toBe(`rcpt${c.rcpts}@example.com`);
      const content = await readAll(again.openContent(m.record.queueId));
      expect(content.equals(Buffer.isBuffer(c.body) ? c.body : Buffer.from(c.body))).toBe(true);
    }
  });

  it('lays out the queue directories with mode 0700 and a pid lock', async () => {
    await openStore();
    expect((await fs.stat(directory)).mode & 0o777).toBe(0o711);
    for (const dir of ['tmp', 'incoming', 'active', 'deferred', 'hold', 'corrupt']) {
      const st = await fs.stat(join(directory, dir));
      expect(st.isDirectory()).toBe(true);
      expect(st.mode & 0o777).toBe(0o700);
    }
    expect(await fs.readFile(join(directory, LOCK_FILE), 'utf8')).toBe(`${process.pid}\n`);
  });

  it('a committed file is one file in incoming/ with the POSTERN1 magic', async () => {
    const store = await openStore();
    const id = await commitMessage(store, 'hello\r\n');
    expect(await fs.readdir(join(directory, 'incoming'))).toEqual([id]);
    expect(await fs.readdir(join(directory, 'tmp'))).toEqual([]);
    const bytes = await fs.readFile(join(directory, 'incoming', id));
    expect(bytes.subarray(0, 8).toString('latin1')).toBe('POSTERN1');
    expect((await fs.stat(join(directory, 'incoming', id))).mode & 0o777).toBe(0o600);
  });

  it('a second store on the same directory is refused while the first holds it', async () => {
    await openStore();
    const second = new FileQueueStore({ directory, journal: false });
    const err = await second.open().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueStoreError);
    expect((err as Error).message).toMatch(/already has the queue directory .* open/);
  });

  it('a live foreign pid in the lock refuses the open and says what to do', async () => {
    await fs.writeFile(join(directory, LOCK_FILE), `${process.ppid}\n`);
    const err = await new FileQueueStore({ directory, journal: false })
      .open()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueStoreError);
    expect((err as Error).message).toMatch(/another process \(pid \d+\) uses the queue directory/);
    expect((err as Error).message).toMatch(/delete .*queue\.lock/);
  });

  it('a lock left by a dead process is taken over', async () => {
    const child = spawnSync(process.execPath, ['-e', '0']);
    expect(child.pid).toBeGreaterThan(0);
    await fs.writeFile(join(directory, LOCK_FILE), `${child.pid}\n`);
    await openStore();
    expect(await fs.readFile(join(directory, LOCK_FILE), 'utf8')).toBe(`${process.pid}\n`);
  });

  it('close releases the lock so another store can open', async () => {
    const first = await openStore();
    await first.close();
    await expect(fs.stat(join(directory, LOCK_FILE))).rejects.toThrow();
    await openStore();
  });

  it('files left in active/ go back to incoming/ at open', async () => {
    const store = await openStore();
    const id = await commitMessage(store);
    await claim(store);
    expect(await fs.readdir(join(directory, 'active'))).toEqual([id]);
    const again = await crashAndReopen();
    expect(await fs.readdir(join(directory, 'active'))).toEqual([]);
    expect(await fs.readdir(join(directory, 'incoming'))).toEqual([id]);
    expect((await claim(again)).map((m) => m.record.queueId)).toEqual([id]);
  });

  it('corrupt files are moved to corrupt/ with a warning and never stop a claim', async () => {
    const store = await openStore();
    const good = await commitMessage(store, 'good\r\n');
    const truncated = await commitMessage(store, 'will be cut\r\n');
    const badJson = await commitMessage(store, 'json\r\n');
    await store.close();
    const garbage = ids.next();
    await fs.writeFile(
      join(directory, 'incoming', garbage),
      'this is not a queue file at all, just some text that is long enough',
    );
    const empty = ids.next();
    await fs.writeFile(join(directory, 'incoming', empty), '');
    const tPath = join(directory, 'incoming', truncated);
    await fs.truncate(tPath, (await fs.stat(tPath)).size - 10);
    const jPath = join(directory, 'incoming', badJson);
    const jBytes = await fs.readFile(jPath);
    jBytes[jBytes.length - 1] = 0x7b; // still the right length, but the checksum fails
    await fs.writeFile(jPath, jBytes);
    await fs.writeFile(join(directory, 'incoming', 'not-a-queue-id.txt'), 'ignored');

    const again = await openStore();
    const claimed = await claim(again);
    expect(claimed.map((m) => m.record.queueId)).toEqual([good]);
    expect((await again.counts()).corrupt).toBe(4);
    expect((await fs.readdir(join(directory, 'corrupt'))).sort()).toEqual(
      [truncated, badJson, garbage, empty].sort(),
    );
    const warnings = events.filter((e) => e.level === 'warning').map((e) => e.text);
    expect(warnings.some((t) => /bad magic/.test(t))).toBe(true);
    expect(warnings.some((t) => /corrupt\//.test(t))).toBe(true);
    expect(warnings.some((t) => /not a queue file name/.test(t))).toBe(true);
  });

  it('a file replaced by a FIFO or a link after open is moved aside, never waited on', async () => {
    const store = await openStore();
    const good = await commitMessage(store, 'good\r\n');
    const fifo = await commitMessage(store, 'becomes a fifo\r\n');
    const link = await commitMessage(store, 'becomes a link\r\n');
    await fs.rm(join(directory, 'incoming', fifo));
    spawnSync('mkfifo', [join(directory, 'incoming', fifo)]);
    await fs.rm(join(directory, 'incoming', link));
    await fs.symlink(join(directory, 'incoming', good), join(directory, 'incoming', link));
    // Each of these would wait for a writer forever on a plain open of the FIFO.
    const rows = await store.list();
    expect(rows.map((r) => r.queueId)).toEqual([good]);
    await expect(readAll(store.openContent(fifo))).rejects.toThrow(/FIFO, not a regular file/);
    const claimed = await claim(store);
    expect(claimed.map((m) => m.record.queueId)).toEqual([good]);
    expect((await fs.readdir(join(directory, 'corrupt'))).sort()).toEqual([fifo, link].sort());
    expect((await fs.lstat(join(directory, 'corrupt', fifo))).isFIFO()).toBe(true);
    expect((await fs.lstat(join(directory, 'corrupt', link))).isSymbolicLink()).toBe(true);
    const warnings = events.filter((e) => e.level === 'warning').map((e) => e.text);
    expect(warnings.some((t) => /is a FIFO, not a regular file.*corrupt\//.test(t))).toBe(true);
    expect(warnings.some((t) => /is a symbolic link, not a regular file/.test(t))).toBe(true);
  });

  it('a torn update frame at the end of a file is ignored and written over', async () => {
    const store = await openStore();
    const id = await commitMessage(store, 'x', { recipients: recipients(2) });
    const [m] = await claim(store);
    await store.recordOutcomes(m!.lease, [
      { recipientId: 1, outcome: outcome('deferred', 'later') },
    ]);
    // A crash in the middle of the next append: a frame header promising 500 bytes, and 5.
    const torn = Buffer.alloc(13);
    torn.writeUInt32LE(500, 0);
    torn.writeUInt32LE(0xdeadbeef, 4);
    torn.write('{"out', 8, 'latin1');
    await fs.appendFile(join(directory, 'active', id), torn);

    let again = await crashAndReopen();
    let [m2] = await claim(again);
    expect(m2?.record.recipients[0]).toMatchObject({ state: 'pending', last: { text: 'later' } });
    expect(events.some((e) => /torn update/.test(e.text))).toBe(true);
    await again.recordOutcomes(m2!.lease, [
      { recipientId: 2, outcome: outcome('bounced', 'gone') },
    ]);

    again = await crashAndReopen();
    [m2] = await claim(again);
    expect(m2?.record.recipients.map((r) => r.state)).toEqual(['pending', 'bounced']);
    expect((await readAll(again.openContent(id))).toString()).toBe('x');
  });

  it('a deferred message keeps its due time as the file mtime', async () => {
    const store = await openStore();
    const id = await commitMessage(store);
    const dueAt = Date.now() + 86_400_000;
    const [m] = await claim(store);
    await store.release(m!.lease, { state: 'deferred', dueAt });
    const st = await fs.stat(join(directory, 'deferred', id));
    expect(Math.round(st.mtimeMs)).toBe(dueAt);
  });

  it('leftover temp files of unfinished writers are removed at open', async () => {
    const store = await openStore();
    const id = ids.next();
    const writer = await store.create(id);
    writer.content.write('half a message');
    expect(await fs.readdir(join(directory, 'tmp'))).toEqual([id]);
    const again = await crashAndReopen();
    expect(await fs.readdir(join(directory, 'tmp'))).toEqual([]);
    expect(await again.counts()).toEqual({
      incoming: 0,
      active: 0,
      deferred: 0,
      hold: 0,
      corrupt: 0,
    });
  });

  it('abort removes the temp file, also for a large half-written message', async () => {
    const store = await openStore();
    const writer = await store.create(ids.next());
    for (let i = 0; i < 10; i++) {
      if (!writer.content.write(Buffer.alloc(100_000, 0x62)))
        await new Promise((r) => writer.content.once('drain', r));
    }
    await writer.abort();
    expect(await fs.readdir(join(directory, 'tmp'))).toEqual([]);
  });

  it('refuses use before open and after close, with a message saying so', async () => {
    const store = new FileQueueStore({ directory, journal: false });
    await expect(store.counts()).rejects.toThrow(/call open\(\) first/);
    await store.open();
    await store.close();
    await expect(store.create(ids.next())).rejects.toThrow(/closed/);
  });

  it('needs a directory', () => {
    expect(() => new FileQueueStore({ directory: '' })).toThrow(QueueStoreError);
  });

  it('openContent never builds a path from an invalid queue ID', async () => {
    const store = await openStore();
    await fs.writeFile(join(directory, 'secret'), 'do not read');
    await expect(readAll(store.openContent('../secret'))).rejects.toThrow(/invalid queue ID/);
  });
});
