/**
 * Test harness of the queue journal: a file-system layer over the real node:fs that
 * counts fdatasyncs and directory fsyncs, can hold an fdatasync at a gate or make it
 * fail, and can simulate a power cut (every write not covered by a completed
 * fdatasync keeps a random part of its bytes: the rest is zeros again inside the size
 * the file had when it was last synced, as in preallocated space, and cut off beyond
 * it; files whose creation or deletion was never made durable by a directory fsync
 * appear or reappear as a crash would leave them).
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

/** A write not yet covered by a completed fdatasync. */
interface DirtyRange {
  readonly from: number;
  to: number;
  /** The fdatasyncs called before it (one called later covers it). */
  readonly generation: number;
}

interface Tracked {
  /** File size durable: the size when the last completed fdatasync was called. */
  durable: number;
  /** Writes since, in order. */
  dirty: DirtyRange[];
  /** fdatasyncs called on the file so far. */
  generation: number;
  /** The directory entry is durable (created before a directory fsync). */
  named: boolean;
  /** The handle open on it, to find the record again after a rename. */
  handle: object | undefined;
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
  /** Each completed fdatasync: the file's path then (after any rename) and the size it covered. */
  readonly synced: { path: string; size: number }[] = [];
  /** The next fdatasyncs wait here (one gate per call, in order). */
  readonly gates: Gate[] = [];
  /** The next fdatasyncs fail with these errors. */
  readonly failures: Error[] = [];
  /** After kill() or crash(): every call fails. */
  dead = false;
  /** The real files open through this layer, closed as a dead process's are. */
  readonly #handles = new Set<JournalFile>();
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
    this.#handles.add(handle);
    if (!this.#files.has(path) || flags === 'wx+') {
      const t = { durable: 0, dirty: [], generation: 0, named: flags !== 'wx+', handle };
      this.#files.set(path, t);
    }
    const t0 = this.#files.get(path)!;
    t0.handle = handle;
    if (flags !== 'wx+') t0.durable = Math.max(t0.durable, (await handle.stat()).size);
    const io = this;
    // Looked up at each call: a rename moves the record to the new name.
    const named = (): [string, Tracked] | undefined => {
      for (const e of io.#files) if (e[1].handle === handle) return e;
      return undefined;
    };
    const tracked = (): Tracked | undefined => named()?.[1];
    const wrote = (position: number, bytes: number): void => {
      const t = tracked();
      if (t && bytes > 0)
        t.dirty.push({ from: position, to: position + bytes, generation: t.generation });
    };
    return {
      async writev(buffers, position) {
        io.#alive();
        io.threadWrites++;
        const result = await handle.writev(buffers, position);
        wrote(position, result.bytesWritten);
        return result;
      },
      writevSync(buffers, position) {
        io.#alive();
        io.inlineWrites++;
        const n = handle.writevSync!(buffers, position);
        wrote(position, n);
        return n;
      },
      async read(buffer, offset, length, position) {
        io.#alive();
        io.reads++;
        return handle.read(buffer, offset, length, position);
      },
      async datasync() {
        io.#alive();
        const size = (await handle.stat()).size;
        const before = tracked();
        const generation = before ? before.generation++ : 0;
        const gate = io.gates.shift() as (Gate & { wait(): Promise<void> }) | undefined;
        if (gate) await gate.wait();
        const failure = io.failures.shift();
        if (failure) throw failure;
        await handle.datasync();
        io.#alive();
        io.datasyncs++;
        io.synced.push({ path: named()?.[0] ?? path, size });
        const t = tracked();
        if (t) {
          t.durable = Math.max(t.durable, size);
          t.dirty = t.dirty.filter((d) => d.generation > generation);
        }
      },
      async truncate(length) {
        io.#alive();
        await handle.truncate(length);
        const t = tracked();
        if (t) {
          t.durable = Math.min(t.durable, length);
          t.dirty = t.dirty.filter((d) => d.from < length);
          for (const d of t.dirty) d.to = Math.min(d.to, length);
        }
      },
      stat: () => handle.stat(),
      close: () => {
        io.#handles.delete(handle);
        return handle.close();
      },
    };
  }

  async readdir(path: string): Promise<string[]> {
    this.#alive();
    return nodeJournalIo.readdir(path);
  }

  async unlink(path: string): Promise<void> {
    this.#alive();
    await this.#track(async () => {
      const copy = `${path}.unlinked-copy`;
      await fs.copyFile(path, copy);
      this.#unlinked.set(path, copy);
      await nodeJournalIo.unlink(path);
    });
  }

  /** Unlinks and their bookkeeping under way: a crash lets them finish first. */
  readonly #inflight = new Set<Promise<void>>();

  async #track(work: () => Promise<void>): Promise<void> {
    const p = work();
    this.#inflight.add(p);
    try {
      await p;
    } finally {
      this.#inflight.delete(p);
    }
  }

  async rename(from: string, to: string): Promise<void> {
    this.#alive();
    await nodeJournalIo.rename(from, to);
    const t = this.#files.get(from);
    if (t) {
      this.#files.delete(from);
      this.#files.set(to, t);
    }
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
    await this.#track(async () => {
      for (const [p, copy] of [...this.#unlinked]) {
        if (dirname(p) === path) {
          this.#unlinked.delete(p);
          await fs.rm(copy, { force: true });
        }
      }
    });
  }

  /**
   * The process dies (kill -9): from now on every call fails, and its files are closed,
   * as the kernel closes a dead process's descriptors (operations in flight finish
   * first). What it wrote stays.
   */
  async kill(): Promise<void> {
    this.dead = true;
    const open = [...this.#handles];
    this.#handles.clear();
    await Promise.allSettled(open.map((h) => h.close()));
  }

  /**
   * A power cut: from now on every call fails and the files are closed (as by kill());
   * each write not covered by a completed fdatasync keeps a random first part of its
   * bytes (`random` of 0..1), the last byte kept flipped half of the time (a page
   * written only in part); the bytes lost are zeros again inside the file's durable size
   * (preallocated space) and cut off beyond it; files never named durably vanish;
   * unlinks not yet made durable are undone.
   */
  async crash(random: () => number = Math.random): Promise<void> {
    this.dead = true;
    await Promise.allSettled([...this.#inflight]);
    await this.kill();
    for (const [path, copy] of this.#unlinked) await fs.rename(copy, path);
    this.#unlinked.clear();
    for (const [path, t] of this.#files) {
      const st = await fs.stat(path).catch(() => undefined);
      if (!st) continue;
      if (!t.named) {
        await fs.rm(path, { force: true });
        continue;
      }
      const h = await fs.open(path, 'r+');
      let size = t.durable;
      for (const d of t.dirty) {
        const kept = d.from + Math.floor((d.to - d.from) * random());
        const zeroTo = Math.min(d.to, st.size);
        if (kept < zeroTo) await h.write(Buffer.alloc(zeroTo - kept), 0, zeroTo - kept, kept);
        if (kept > d.from && random() < 0.5) {
          const b = Buffer.alloc(1);
          await h.read(b, 0, 1, kept - 1);
          b[0] = b[0]! ^ 0xff;
          await h.write(b, 0, 1, kept - 1);
        }
        size = Math.max(size, kept);
      }
      await h.close();
      if (size < st.size) await fs.truncate(path, size);
    }
  }
}
