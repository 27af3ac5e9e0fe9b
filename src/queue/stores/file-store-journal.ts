/**
 * JournalHome: what FileQueueStore does to messages that live in its queue journal —
 * small messages, committed many to one fdatasync (journal/journal.ts) — and how they
 * move out to a file of their own when they stay queued.
 *
 * On the path of a message delivered at once nothing here makes a system call of its
 * own: the claim takes the record kept from the commit (the hand-off) or reads it from
 * the journal's shared segment handle, the content is served from memory while the
 * hand-off budget holds it, `sent` marks stay in memory, and the removal is one lazy
 * frame in the next batch. Outcomes that must be durable (bounced, deferred) are
 * frames in a synced batch.
 *
 * Moving out: a message released to `hold` or `corrupt`, or to `deferred` with its next
 * attempt more than `moveOutAfterMs` away, gets a per-message file written from its
 * current record (outcomes applied) and its content; the file is fdatasync'ed and
 * renamed into its state directory, the directory is synced, and only then does the
 * journal record the move (JournalEntry forgotten, segment reclaimable). A message
 * that pins an old segment is moved out the same way (`compact`), into `active/` if it
 * is being delivered. If a crash leaves the file and the journal's copy both, the file
 * wins (FileQueueStore's open). If a file cannot be written (disk full), the message
 * stays in the journal with a state frame: nothing is lost, the journal just keeps its
 * segment longer.
 *
 * Postfix counterpart: none for the journal itself (Postfix writes one queue file per
 * message); the moves are qmgr(8)'s deferred queue and postsuper(1)'s hold queue.
 *
 * Does not do: leases, claims or the index's choices (the store), or the journal's
 * format, batches and recovery (journal/).
 *
 * @module
 */

import { createWriteStream, promises as fs } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CorruptMessageError } from '../../errors.js';
import type { ComponentLogger } from '../../log.js';
import type { Clock, QueueId } from '../../types.js';
import { errorMessage } from '../../util/error-message.js';
import { QUEUE_FILE_MODE } from '../queue-modes.js';
import { summarizeInto } from '../summary.js';
import type { MessageRecord, QueueState, ReleaseTarget } from '../types.js';
import {
  type FileData,
  type FileEntry,
  JOURNAL,
  type MessageHome,
  NONE,
  newData,
  takeWaiters,
} from './file-store-entry.js';
import { isMissing, type QueueFiles, TMP } from './file-store-files.js';
import { FileMessageWriter } from './file-store-writer.js';
import type { Journal } from './journal/journal.js';
import type { JournalRecord } from './journal/journal-options.js';
import { applyStateChange } from './journal/journal-record.js';
import type { MessageIndex } from './message-index.js';

/** Options of JournalHome. */
export interface JournalHomeOptions {
  readonly journal: Journal;
  readonly files: QueueFiles;
  readonly index: MessageIndex<FileData | undefined>;
  readonly log: ComponentLogger;
  readonly clock: Clock;
  /** Runs `fn` after every earlier operation on the message (the store's chain). */
  readonly serial: <R>(entry: FileEntry, fn: () => Promise<R>) => Promise<R>;
  /** A release to deferred due further away than this moves out to a file. */
  readonly moveOutAfterMs: number;
  /** Compaction starts once the journal holds more dead bytes than this (and than live). */
  readonly compactAfterBytes: number;
}

/** Messages looked at per round of compaction. */
const COMPACT_BATCH = 64;
/** Commits between two looks at whether the journal should be compacted. */
const COMPACT_EVERY = 256;

/** The journalled messages of one FileQueueStore; see the module header. */
export class JournalHome implements MessageHome {
  readonly journal: Journal;
  readonly #files: QueueFiles;
  readonly #index: MessageIndex<FileData | undefined>;
  readonly #log: ComponentLogger;
  readonly #clock: Clock;
  readonly #serial: JournalHomeOptions['serial'];
  readonly #moveOutAfterMs: number;
  readonly #compactAfterBytes: number;
  #compacting: Promise<void> | undefined;
  #commits = 0;
  /** Messages moved out to files of their own since open. */
  movedOut = 0;

  constructor(options: JournalHomeOptions) {
    this.journal = options.journal;
    this.#files = options.files;
    this.#index = options.index;
    this.#log = options.log;
    this.#clock = options.clock;
    this.#serial = options.serial;
    this.#moveOutAfterMs = options.moveOutAfterMs;
    this.#compactAfterBytes = options.compactAfterBytes;
  }

  /** A message was committed: now and then, a look at whether to compact. */
  committed(): void {
    if (++this.#commits < COMPACT_EVERY) return;
    this.#commits = 0;
    this.compact();
  }

  /** Whether the journal holds the message now. */
  holds(queueId: QueueId): boolean {
    return this.journal.has(queueId);
  }

  async activate(entry: FileEntry): Promise<MessageRecord | undefined> {
    const data = entry.data!;
    if (data.record) {
      // Taken over after its lease expired: the record in memory is current.
      if (data.lazy.length > 0) await this.flush(entry, false);
      return data.record;
    }
    let read: JournalRecord;
    try {
      // The record committed with it while the hand-off holds its frame (no read, no
      // parse), else read from its segment: no record is kept per queued message meanwhile.
      read = await this.journal.readRecord(entry.queueId);
    } catch (err) {
      if (!this.holds(entry.queueId)) {
        this.#log.warning(entry.queueId, 'message vanished from the queue journal; forgetting it');
        this.#index.delete(entry);
        return undefined;
      }
      const reason =
        err instanceof CorruptMessageError
          ? err.message
          : `cannot read the message from the queue journal: ${errorMessage(err)}`;
      await this.#setAside(entry, reason);
      return undefined;
    }
    // The facts of a record as committed were taken from it at the commit.
    if (!read.asCommitted) summarizeInto(entry, read.record);
    data.record = read.record;
    return read.record;
  }

  async flush(entry: FileEntry, sync: boolean): Promise<void> {
    const data = entry.data!;
    const outcomes = [...data.lazy, ...data.durable];
    const waiters = takeWaiters(data);
    if (outcomes.length === 0) {
      for (const w of waiters) w.resolve();
      return;
    }
    const durable = sync || data.durable.length > 0;
    data.lazy = NONE;
    data.durable = NONE;
    try {
      await this.journal.recordOutcomes(entry.queueId, outcomes, durable);
    } catch (err) {
      for (const w of waiters) w.reject(err);
      throw err;
    }
    for (const w of waiters) w.resolve();
  }

  async release(entry: FileEntry, target: ReleaseTarget): Promise<void> {
    const data = entry.data!;
    const record = data.record ?? (await this.journal.readRecord(entry.queueId)).record;
    const dueAt = target.state === 'deferred' ? target.dueAt : 0;
    const stays = target.state !== 'deferred' || dueAt - this.#clock.now() > this.#moveOutAfterMs;
    if (target.state === 'corrupt')
      this.#log.warning(entry.queueId, `moved to corrupt/: ${target.reason}`);
    if (stays) {
      const stored = applyStateChange(record, target);
      try {
        await this.#moveOut(entry, target.state, stored, dueAt);
        summarizeInto(entry, stored);
        data.record = undefined;
        this.#index.move(entry, target.state, dueAt);
        return;
      } catch (err) {
        this.#log.warning(
          entry.queueId,
          `cannot write a queue file of its own (${errorMessage(err)}); it stays in the queue journal`,
        );
      }
    }
    await this.flush(entry, false);
    await this.journal.changeState(entry.queueId, target, target.state !== 'deferred');
    summarizeInto(entry, data.record ?? record);
    data.record = undefined;
    this.#index.move(entry, target.state, dueAt);
  }

  /** Forgets the message at once; the promise is the removal frame's write. */
  remove(entry: FileEntry, durable: boolean): Promise<void> {
    const data = entry.data!;
    const waiters = takeWaiters(data);
    data.lazy = NONE;
    data.durable = NONE;
    data.record = undefined;
    // Forgotten by the journal at once; the frame goes out with the next batch.
    const written = this.journal.markRemoved(entry.queueId, durable);
    this.#index.delete(entry);
    for (const w of waiters) w.resolve();
    return written;
  }

  async requeue(entry: FileEntry): Promise<void> {
    const data = entry.data!;
    if (data.record) {
      await this.flush(entry, false);
      summarizeInto(entry, data.record);
    }
    await this.journal.changeState(entry.queueId, { state: 'incoming' }, false);
    data.record = undefined;
    this.#index.move(entry, 'incoming');
  }

  async expedite(entry: FileEntry, now: number): Promise<void> {
    await this.journal.changeState(entry.queueId, { state: 'deferred', dueAt: now }, false);
    this.#index.move(entry, 'deferred', now);
  }

  async readRecord(entry: FileEntry): Promise<MessageRecord | undefined> {
    if (entry.data?.record) return entry.data.record;
    try {
      return (await this.journal.readRecord(entry.queueId)).record;
    } catch {
      return undefined;
    }
  }

  /** A fresh stream of the content (from memory while the hand-off holds it). */
  openContent(queueId: QueueId): Readable {
    return this.journal.openContent(queueId);
  }

  /**
   * Writes the message's own file in `state` from `record` and its content, makes it
   * durable, then tells the journal. Outcomes recorded meanwhile are appended to the
   * new file by the next flush (the file home takes over).
   */
  async #moveOut(
    entry: FileEntry,
    state: QueueState,
    record: MessageRecord,
    dueAt: number,
  ): Promise<void> {
    const data = entry.data!;
    // What is pending is in `record` already: the file carries it.
    const lazy = data.lazy;
    const pending = data.durable;
    const waiters = takeWaiters(data);
    data.lazy = NONE;
    data.durable = NONE;
    let size: number;
    try {
      size = await this.#writeFile(entry.queueId, record, state, dueAt);
    } catch (err) {
      data.lazy = [...lazy, ...data.lazy];
      data.durable = [...pending, ...data.durable];
      data.waiters = [...waiters, ...data.waiters];
      throw err;
    }
    data.location = state;
    data.appendOffset = size;
    this.movedOut++;
    for (const w of waiters) w.resolve();
    try {
      await this.journal.markMoved(entry.queueId);
    } catch (err) {
      // The file is durable and wins over the journal's copy at the next open.
      this.#log.warning(entry.queueId, `queue journal: ${errorMessage(err)}`);
    }
  }

  /** A durable queue file in `state` for the message; resolves with its length. */
  async #writeFile(
    queueId: QueueId,
    record: MessageRecord,
    state: QueueState,
    dueAt: number,
  ): Promise<number> {
    const tmp = this.#files.path(TMP, queueId);
    const target = this.#files.path(state, queueId);
    const writer = await FileMessageWriter.create(queueId, tmp, {
      publish: async () => {
        // A deferred file's mtime is its next attempt time.
        if (state === 'deferred') await fs.utimes(tmp, dueAt / 1000, dueAt / 1000);
        await fs.rename(tmp, target);
        try {
          await this.#files.syncDirectory(state);
        } catch (err) {
          await fs.unlink(target).catch(() => undefined);
          throw err;
        }
      },
      done: () => undefined,
    });
    try {
      await pipeline(this.journal.openContent(queueId), writer.content);
    } catch (err) {
      await writer.abort();
      throw err;
    }
    await writer.commitRecord(record, false);
    return writer.size;
  }

  /**
   * A message whose record cannot be read: its content goes to `corrupt/` (as it is,
   * for the operator to look at) and the journal forgets it; if even that fails, the
   * journal marks it corrupt. Either way it is never handed out again.
   */
  async #setAside(entry: FileEntry, reason: string): Promise<void> {
    const data = entry.data!;
    this.#log.warning(entry.queueId, `${reason}; setting the message aside in corrupt/`);
    data.record = undefined;
    try {
      const path = this.#files.path('corrupt', entry.queueId);
      await pipeline(
        this.journal.openContent(entry.queueId),
        createWriteStream(path, { flags: 'wx', mode: QUEUE_FILE_MODE, flush: true }),
      );
      await this.#files.syncDirectory('corrupt');
      data.location = 'corrupt';
      await this.journal.markMoved(entry.queueId).catch(() => undefined);
    } catch (err) {
      if (!isMissing(err))
        this.#log.error(entry.queueId, `cannot write corrupt/: ${errorMessage(err)}`);
      await this.journal
        .changeState(entry.queueId, { state: 'corrupt', reason }, true)
        .catch(() => undefined);
    }
    this.#index.move(entry, 'corrupt');
  }

  /**
   * Moves out the messages that keep the oldest segments from being reclaimed, while
   * the journal holds more dead bytes than `compactAfterBytes` and than its live bytes.
   * Runs one pass at a time in the background; failures are logged.
   */
  compact(): Promise<void> {
    this.#compacting ??= this.#compact(this.#compactAfterBytes)
      .catch((err: unknown) => {
        this.#log.warning(undefined, `queue journal compaction: ${errorMessage(err)}`);
      })
      .finally(() => {
        this.#compacting = undefined;
      });
    return this.#compacting;
  }

  #wasteful(minDeadBytes: number): boolean {
    const s = this.journal.stats();
    const dead = s.segmentBytes - s.liveBytes;
    return s.segments > 2 && dead > minDeadBytes && dead > s.liveBytes;
  }

  async #compact(minDeadBytes: number): Promise<void> {
    while (this.#wasteful(minDeadBytes)) {
      const oldest = this.journal.pinning(COMPACT_BATCH);
      let moved = 0;
      for (const j of oldest) {
        const entry = this.#index.get(j.queueId);
        if (!entry) continue;
        const done = await this.#serial(entry, () => this.#compactOne(entry)).catch(
          (err: unknown) => {
            this.#log.warning(
              entry.queueId,
              `cannot move out of the queue journal: ${errorMessage(err)}`,
            );
            return false;
          },
        );
        if (done) moved++;
      }
      if (moved === 0) return;
    }
  }

  /** Moves one message out to its state's directory; false if it is not ours to move. */
  async #compactOne(entry: FileEntry): Promise<boolean> {
    if (this.#index.get(entry.queueId) !== entry || !this.holds(entry.queueId)) return false;
    entry.data ??= newData(JOURNAL);
    const data = entry.data;
    if (data.location !== JOURNAL) return false;
    if (entry.state === 'corrupt') {
      await this.#setAside(entry, 'marked corrupt in the queue journal');
      return true;
    }
    let record = data.record;
    if (!record) {
      try {
        record = (await this.journal.readRecord(entry.queueId)).record;
      } catch (err) {
        await this.#setAside(
          entry,
          `cannot read the message from the queue journal: ${errorMessage(err)}`,
        );
        return true;
      }
    }
    await this.#moveOut(entry, entry.state, record, entry.dueAt);
    return true;
  }
}
