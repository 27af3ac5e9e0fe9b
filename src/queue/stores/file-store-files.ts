/**
 * QueueFiles: what FileQueueStore does to messages that live in a file of their own —
 * publish a written file, claim it (move to `active/` and read its record), append
 * outcome and release frames, move it between the state directories, read it for a
 * listing, open its content, delete it.
 *
 * Postfix counterpart: the queue file handling of cleanup(8) (the rename into
 * `incoming/`), qmgr(8) (`active/`, `deferred/` with the mtime as the next attempt
 * time) and postsuper(1) (moving files between the queues). A message's state is the
 * directory its file is in, changed by rename; a deferred file's mtime is its next
 * attempt time.
 *
 * Durability: a published file's rename waits for a directory fsync that started
 * after it (DirectorySyncer: concurrent commits share one); an append that carries a
 * durable outcome or a release to `hold` or `corrupt` is fdatasync'ed, and such a
 * release syncs the target directory; a release to `deferred` is not synced (a crash
 * then retries the message early).
 *
 * Every method that touches a message's file runs inside the store's per-message
 * chain (`serial`), so one file never sees two operations at once.
 *
 * SECURITY: files are opened as regular files only (openRegularFile: no FIFO is waited
 * on); paths are built from queue IDs the store has checked; a file that does not
 * parse goes to `corrupt/` with a warning.
 *
 * Does not do: leases, claims and the index's choices (the store and MessageIndex), or
 * write a new file (file-store-writer.ts).
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { CorruptMessageError, QueueStoreError } from '../../errors.js';
import type { ComponentLogger } from '../../log.js';
import type { QueueId } from '../../types.js';
import { errorMessage } from '../../util/error-message.js';
import { DirectorySyncer } from '../../util/fsync.js';
import { openRegularFile } from '../../util/safe-open.js';
import { summarizeInto } from '../summary.js';
import type { MessageRecord, QueueState, ReleaseTarget } from '../types.js';
import {
  dataOf,
  type FileData,
  type FileEntry,
  locationOf,
  type MessageHome,
  NONE,
  takeWaiters,
} from './file-store-entry.js';
import { encodeFrame, type UpdateFrame } from './file-store-format.js';
import { readQueueFileAt } from './file-store-reader.js';
import { writeAll } from './file-store-writer.js';
import type { MessageIndex } from './message-index.js';

/** The state directories, in the order a lost file is looked for. */
export const STATES: readonly QueueState[] = ['incoming', 'active', 'deferred', 'hold', 'corrupt'];
/** Where writers put a file until it is complete. */
export const TMP = 'tmp';

export function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** The per-message files of one queue directory; see the module header. */
export class QueueFiles implements MessageHome {
  readonly directory: string;
  readonly #index: MessageIndex<FileData | undefined>;
  readonly #log: ComponentLogger;
  readonly #syncers = new Map<QueueState, DirectorySyncer>();
  readonly #seenSyncs = new WeakSet<Promise<void>>();
  /** Directory fsyncs done so far (one is shared by every caller that waited for it). */
  directorySyncs = 0;

  constructor(directory: string, index: MessageIndex<FileData | undefined>, log: ComponentLogger) {
    this.directory = directory;
    this.#index = index;
    this.#log = log;
    for (const state of STATES)
      this.#syncers.set(state, new DirectorySyncer(join(directory, state)));
  }

  path(state: QueueState | typeof TMP, queueId: QueueId): string {
    return join(this.directory, state, queueId);
  }

  /** Where a message's file should be, then every other queue (it may move meanwhile). */
  places(entry: FileEntry): QueueState[] {
    const here = locationOf(entry);
    return [here, ...STATES.filter((s) => s !== here)];
  }

  async syncDirectory(state: QueueState): Promise<void> {
    const p = this.#syncers.get(state)!.sync();
    // Each distinct promise is one fsync that callers share.
    if (!this.#seenSyncs.has(p)) {
      this.#seenSyncs.add(p);
      this.directorySyncs++;
    }
    await p;
  }

  /**
   * Moves a complete temp file into `incoming/` (or `hold/`) and waits for that to be
   * durable; resolves with the state it is in.
   */
  async publish(queueId: QueueId, hold: boolean): Promise<QueueState> {
    const state: QueueState = hold ? 'hold' : 'incoming';
    const path = this.path(state, queueId);
    await fs.rename(this.path(TMP, queueId), path);
    try {
      await this.syncDirectory(state);
    } catch (err) {
      // Not known to be durable: the client must not be told it is.
      await fs.unlink(path).catch(() => undefined);
      throw err;
    }
    return state;
  }

  /** Moves a claimed message's file to `active/` and reads its record. */
  async activate(entry: FileEntry): Promise<MessageRecord | undefined> {
    const data = dataOf(entry);
    if (data.record) {
      // Taken over after its lease expired: the record in memory is current.
      if (data.lazy.length > 0) await this.append(entry, [], false);
      return data.record;
    }
    try {
      if (data.location !== 'active') {
        await fs.rename(
          this.path(locationOf(entry), entry.queueId),
          this.path('active', entry.queueId),
        );
        data.location = 'active';
      }
      const info = await readQueueFileAt(this.path('active', entry.queueId), entry.queueId);
      if (info.tornBytes > 0) {
        this.#log.warning(
          entry.queueId,
          `ignoring ${info.tornBytes} bytes of a torn update at the end of the queue file`,
        );
        await fs.truncate(this.path('active', entry.queueId), info.appendOffset);
      }
      data.record = info.record;
      data.appendOffset = info.appendOffset;
      summarizeInto(entry, info.record);
      return info.record;
    } catch (err) {
      if (isMissing(err)) {
        this.#log.warning(entry.queueId, 'queue file vanished; forgetting it');
        this.#index.delete(entry);
        return undefined;
      }
      const reason =
        err instanceof CorruptMessageError
          ? err.message
          : `cannot read queue file: ${errorMessage(err)}`;
      await this.moveToCorrupt(entry, reason);
      return undefined;
    }
  }

  async moveToCorrupt(entry: FileEntry, reason: string): Promise<void> {
    this.#log.warning(entry.queueId, `${reason}; moving the file to corrupt/`);
    const data = dataOf(entry);
    try {
      await fs.rename(
        this.path(locationOf(entry), entry.queueId),
        this.path('corrupt', entry.queueId),
      );
      data.location = 'corrupt';
      data.record = undefined;
      this.#index.move(entry, 'corrupt');
    } catch (err) {
      // Leave it where it is, but never hand it out again in this run.
      this.#log.error(entry.queueId, `cannot move the file to corrupt/: ${errorMessage(err)}`);
      data.record = undefined;
      this.#index.move(entry, 'corrupt');
    }
  }

  /**
   * Appends the pending outcomes (lazy and durable) and `extra` frames to the file,
   * synced if `sync`. Settles the waiters of the durable outcomes it wrote.
   */
  async append(entry: FileEntry, extra: readonly UpdateFrame[], sync: boolean): Promise<void> {
    const data = dataOf(entry);
    const outcomes = [...data.lazy, ...data.durable];
    const waiters = data.waiters;
    const frames: Buffer[] = [];
    if (outcomes.length > 0) frames.push(encodeFrame({ outcomes }));
    for (const f of extra) frames.push(encodeFrame(f));
    if (frames.length === 0) {
      for (const w of takeWaiters(data)) w.resolve();
      return;
    }
    const mustSync = sync || data.durable.length > 0;
    const path = this.path(locationOf(entry), entry.queueId);
    if (!data.record) {
      // Not claimed (a queue operation): find where the last frame ends first.
      data.appendOffset = (await readQueueFileAt(path, entry.queueId)).appendOffset;
    }
    data.lazy = NONE;
    data.durable = NONE;
    data.waiters = NONE;
    try {
      const { handle } = await openRegularFile(path, 'r+', { allowLinks: true });
      try {
        await writeAll(handle, frames, data.appendOffset);
        if (mustSync) await handle.datasync();
      } finally {
        await handle.close();
      }
      data.appendOffset += frames.reduce((n, b) => n + b.length, 0);
      for (const w of waiters) w.resolve();
    } catch (err) {
      const error = new QueueStoreError(
        `cannot update the queue file: ${errorMessage(err)}`,
        entry.queueId,
        { cause: err },
      );
      for (const w of waiters) w.reject(error);
      throw error;
    }
  }

  /** Releases a message to its next state: a release frame, then the rename. */
  async release(entry: FileEntry, target: ReleaseTarget): Promise<void> {
    const data = dataOf(entry);
    const id = entry.queueId;
    const durable = target.state !== 'deferred';
    await this.append(entry, [{ release: target }], durable);
    const from = this.path(locationOf(entry), id);
    if (target.state === 'deferred') {
      const t = target.dueAt / 1000;
      await fs.utimes(from, t, t);
    }
    await fs.rename(from, this.path(target.state, id));
    data.location = target.state;
    if (durable) await this.syncDirectory(target.state);
    if (target.state === 'corrupt') this.#log.warning(id, `moved to corrupt/: ${target.reason}`);
    if (data.record) summarizeInto(entry, data.record);
    data.record = undefined;
    this.#index.move(entry, target.state, target.state === 'deferred' ? target.dueAt : 0);
  }

  flush(entry: FileEntry, sync: boolean): Promise<void> {
    return this.append(entry, [], sync);
  }

  /** Deletes a message's file and forgets it (the unlink is not synced). */
  async remove(entry: FileEntry, _durable = false): Promise<void> {
    const data = dataOf(entry);
    await fs.unlink(this.path(locationOf(entry), entry.queueId)).catch((err: unknown) => {
      if (!isMissing(err)) throw err;
    });
    for (const w of takeWaiters(data)) w.resolve();
    this.#index.delete(entry);
  }

  /** postsuper -r: back to `incoming/`, to be routed afresh. */
  async requeue(entry: FileEntry): Promise<void> {
    const data = dataOf(entry);
    if (data.record) {
      await this.append(entry, [], false);
      summarizeInto(entry, data.record);
    }
    await fs.rename(
      this.path(locationOf(entry), entry.queueId),
      this.path('incoming', entry.queueId),
    );
    data.location = 'incoming';
    data.record = undefined;
    this.#index.move(entry, 'incoming');
  }

  /** postqueue -f / -i: a deferred message due `now`. */
  async expedite(entry: FileEntry, now: number): Promise<void> {
    const t = now / 1000;
    await fs.utimes(this.path(locationOf(entry), entry.queueId), t, t);
    this.#index.move(entry, 'deferred', now);
  }

  /** The current record of a message from its file; undefined if unreadable. */
  async readRecord(entry: FileEntry): Promise<MessageRecord | undefined> {
    for (const dir of this.places(entry)) {
      try {
        return (await readQueueFileAt(this.path(dir, entry.queueId), entry.queueId)).record;
      } catch (err) {
        if (!isMissing(err)) return undefined;
      }
    }
    return undefined;
  }

  /** Opens a message's file for its content, wherever it has moved meanwhile. */
  async openFile(entry: FileEntry): Promise<FileHandle> {
    for (const state of this.places(entry)) {
      try {
        return (await openRegularFile(this.path(state, entry.queueId), 'r', { allowLinks: true }))
          .handle;
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    }
    throw new QueueStoreError('the queue file is gone', entry.queueId);
  }
}
