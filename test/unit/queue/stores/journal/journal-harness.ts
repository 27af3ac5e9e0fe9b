/**
 * Test harness of the queue journal: a file-system layer over the real node:fs that
 * counts fdatasyncs and directory fsyncs, can hold an fdatasync at a gate or make it
 * fail, and can simulate a power cut (every file cut back to what was synced, plus a
 * random part of what was not; files whose creation or deletion was never made durable
 * by a directory fsync appear or reappear as a crash would leave them).
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { JournalFile, JournalIo } from '../../../../../src/queue/stores/journal/journal-io.js';
import { nodeJournalIo } from '../../../../../src/queue/stores/journal/journal-io.js';

export { contentFor, storedFor } from './journal-messages.js';

export async function tempDir(prefix = 'postern-journal-'): Promise<string> {
  return fs.mkdtemp(join(tmpdir(), prefix));
}

/** A held fdatasync, released by the test. */
export interface Gate {
  readonly reached: Promise<void>;
  open(): void;
}

interface Tracked {
  /** Bytes durable: the size when the last completed fdatasync was called. */
  durable: number;
  /** The directory entry is durable (created before a directory fsync). */
  named: boolean;
}

/** A journal file-system layer over node:fs that tests can watch and break. */
export class TestIo implements JournalIo {
  datasyncs = 0;
  directorySyncs = 0;
  /** Reads (preads) of journal files. */
  reads = 0;
  /** Writes made through the thread pool (writev) and on the calling thread (writevSync). */
  threadWrites = 0;
  inlineWrites = 0;
  /** Each completed fdatasync: the path and the size it covered. */
  readonly synced: { path: string; size: number }[] = [];
  /** The next fdatasyncs wait here (one gate per call, in order). */
  readonly gates: Gate[] = [];
  /** The next fdatasyncs fail with these errors. */
  readonly failures: Error[] = [];
  /** After crash(): every call fails. */
  dead = false;
  readonly #files = new Map<string, Tracked>();
  /** Unlinked files whose removal is not durable yet: path -> saved copy. */
  readonly #unlinked = new Map<string, string>();

  /** Makes the next fdatasync wait until the returned gate is opened. */
  holdNextSync(): Gate {
    let reached!: () => void;
    let release!: () => void;
    const reachedP = new Promise<void>((r) => {
      reached = r;
    });
    const opened = new Promise<void>((r) => {
      release = r;
    });
    const gate = {
      reached: reachedP,
      open: release,
      wait: async () => {
        reached();
        await opened;
      },
    };
    this.gates.push(gate);
    return gate;
  }

  #alive(): void {
    if (this.dead) throw new Error('simulated power cut: the process is gone');
  }

  async open(path: string, flags: 'r' | 'r+' | 'wx+'): Promise<JournalFile> {
    this.#alive();
    const handle = await nodeJournalIo.open(path, flags);
    if (!this.#files.has(path)) this.#files.set(path, { durable: 0, named: flags !== 'wx+' });
    if (flags !== 'wx+') {
      const t = this.#files.get(path)!;
      t.durable = Math.max(t.durable, (await handle.stat()).size);
    }
    const io = this;
    return {
      async writev(buffers, position) {
        io.#alive();
        io.threadWrites++;
        return handle.writev(buffers, position);
      },
      writevSync(buffers, position) {
        io.#alive();
        io.inlineWrites++;
        return handle.writevSync!(buffers, position);
      },
      async read(buffer, offset, length, position) {
        io.#alive();
        io.reads++;
        return handle.read(buffer, offset, length, position);
      },
      async datasync() {
        io.#alive();
        const size = (await handle.stat()).size;
        const gate = io.gates.shift() as (Gate & { wait(): Promise<void> }) | undefined;
        if (gate) await gate.wait();
        const failure = io.failures.shift();
        if (failure) throw failure;
        await handle.datasync();
        io.#alive();
        io.datasyncs++;
        io.synced.push({ path, size });
        const t = io.#files.get(path);
        if (t) t.durable = Math.max(t.durable, size);
      },
      async truncate(length) {
        io.#alive();
        await handle.truncate(length);
        const t = io.#files.get(path);
        if (t) t.durable = Math.min(t.durable, length);
      },
      stat: () => handle.stat(),
      close: () => handle.close(),
    };
  }

  async readdir(path: string): Promise<string[]> {
    this.#alive();
    return nodeJournalIo.readdir(path);
  }

  async unlink(path: string): Promise<void> {
    this.#alive();
    const copy = `${path}.unlinked-copy`;
    await fs.copyFile(path, copy);
    this.#unlinked.set(path, copy);
    await nodeJournalIo.unlink(path);
  }

  async rename(from: string, to: string): Promise<void> {
    this.#alive();
    await nodeJournalIo.rename(from, to);
  }

  async mkdir(path: string): Promise<void> {
    this.#alive();
    await nodeJournalIo.mkdir(path);
  }

  async syncDirectory(path: string): Promise<void> {
    this.#alive();
    await nodeJournalIo.syncDirectory(path);
    this.#alive();
    this.directorySyncs++;
    for (const [p, t] of this.#files) if (dirname(p) === path) t.named = true;
    for (const [p, copy] of this.#unlinked) {
      if (dirname(p) === path) {
        await fs.rm(copy, { force: true });
        this.#unlinked.delete(p);
      }
    }
  }

  /**
   * A power cut: from now on every call fails; each file is cut back to its durable
   * size plus a random part (`keep` of 0..1) of what it had beyond, with the last byte
   * kept flipped when `garble`; files never named durably vanish; unlinks not yet made
   * durable are undone.
   */
  async crash(random: () => number = Math.random): Promise<void> {
    this.dead = true;
    for (const [path, copy] of this.#unlinked) await fs.rename(copy, path);
    this.#unlinked.clear();
    for (const [path, t] of this.#files) {
      const st = await fs.stat(path).catch(() => undefined);
      if (!st) continue;
      if (!t.named) {
        await fs.rm(path, { force: true });
        continue;
      }
      const extra = Math.max(0, st.size - t.durable);
      const kept = t.durable + Math.floor(extra * random());
      if (kept < st.size) await fs.truncate(path, kept);
      if (kept > t.durable && random() < 0.5) {
        // A page written only in part: the last byte kept is not what was written.
        const h = await fs.open(path, 'r+');
        const b = Buffer.alloc(1);
        await h.read(b, 0, 1, kept - 1);
        b[0] = b[0]! ^ 0xff;
        await h.write(b, 0, 1, kept - 1);
        await h.close();
      }
    }
  }
}
