/**
 * The journal's spare segment: a file zero-filled to the full segment size and synced
 * in the background, off the commit path, so that the next segment starts with every
 * block already allocated and written.
 *
 * Why: a commit's fdatasync into a file that grows must also commit the file's new
 * size and block allocation (on ext4 a journal commit of the file system's metadata);
 * into blocks already allocated and written it only flushes the data, which takes
 * about a third less time on a virtual disk. With one client every message waits for
 * its own fdatasync, so this is on the critical path of each 250.
 *
 * The fill writes ZERO_CHUNK bytes at a time, each followed by its own fdatasync, so a
 * commit's fdatasync never has to flush a whole segment of zeros queued ahead of it.
 * The spare is named `spare.tmp` (not a segment name: recovery never reads it) and
 * becomes a segment only by rotation (segment-set.ts), which writes its header, syncs
 * it, renames it and syncs the directory. A spare left over by a crash or a failed
 * fill is deleted and filled again. After a failed fill (a full disk) `prepare` does
 * nothing until `retry()` (the next rotation), so a failure costs one attempt and one
 * warning per segment; meanwhile rotation creates segments the way it always could.
 *
 * Postfix counterpart: none — Postfix writes one file per message. This is how
 * PostgreSQL prepares its WAL segments (zero-filled before use).
 *
 * Does not do: decide when a spare is wanted (segment-set.ts) or write a header.
 *
 * @module
 */

import { join } from 'node:path';
import { type JournalFile, type JournalIo, writeZeros, ZERO_CHUNK } from './journal-io.js';

/** The spare's file name in the journal directory (recovery ignores it). */
export const SPARE_NAME = 'spare.tmp';

/** A spare that is ready: zero-filled to its size and synced. */
export interface ReadySpare {
  readonly path: string;
  readonly file: JournalFile;
  readonly size: number;
}

/** The background preparation of one spare segment at a time. */
export class SegmentSpare {
  readonly path: string;
  readonly #io: JournalIo;
  readonly #size: number;
  #ready: ReadySpare | undefined;
  #filling: Promise<void> | undefined;
  #closed = false;
  /** A fill failed: no new one until `retry()`. */
  #failed = false;
  /** Called when a fill fails (it is tried again after `retry()`). */
  onError: ((err: unknown) => void) | undefined;
  /** Spares filled since open. */
  filled = 0;

  constructor(directory: string, io: JournalIo, size: number) {
    this.path = join(directory, SPARE_NAME);
    this.#io = io;
    this.#size = size;
  }

  /** Whether a spare is ready to be taken. */
  get ready(): boolean {
    return this.#ready !== undefined;
  }

  /** Starts filling a spare in the background unless one is ready or being filled. */
  prepare(): void {
    if (this.#closed || this.#failed || this.#ready || this.#filling) return;
    this.#filling = this.#fill().then(
      (spare) => {
        this.#filling = undefined;
        this.#ready = spare;
        this.filled++;
      },
      (err: unknown) => {
        this.#filling = undefined;
        if (this.#closed) return;
        this.#failed = true;
        this.onError?.(err);
      },
    );
  }

  /** Deletes a spare an earlier run left behind (a crash during or after its fill). */
  async removeLeftover(): Promise<void> {
    await this.#io.unlink(this.path).catch(() => undefined);
  }

  /** Lets `prepare` try again after a failed fill. */
  retry(): void {
    this.#failed = false;
  }

  /** Takes the ready spare (the caller owns its file from now on), if there is one. */
  take(): ReadySpare | undefined {
    const spare = this.#ready;
    this.#ready = undefined;
    return spare;
  }

  async #fill(): Promise<ReadySpare> {
    // A leftover of an earlier run (a crash, a failed fill): its contents are unknown.
    await this.#io.unlink(this.path).catch(() => undefined);
    const file = await this.#io.open(this.path, 'wx+');
    try {
      for (let at = 0; at < this.#size; at += ZERO_CHUNK) {
        if (this.#closed) throw new Error('the journal closed during the fill');
        await writeZeros(file, at, Math.min(this.#size, at + ZERO_CHUNK));
        await file.datasync();
      }
    } catch (err) {
      await file.close().catch(() => undefined);
      await this.#io.unlink(this.path).catch(() => undefined);
      throw err;
    }
    return { path: this.path, file, size: this.#size };
  }

  /** Stops filling and deletes the spare (it is made again after the next open). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#filling;
    const spare = this.take();
    if (spare) {
      await spare.file.close().catch(() => undefined);
      await this.#io.unlink(spare.path).catch(() => undefined);
    }
  }
}
