/**
 * Journal: the durable, append-only message journal a queue store keeps small
 * messages in, so that many commits share one fdatasync (group commit) and mail in
 * flight costs no file of its own.
 *
 * What is journalled: a new message (its stored record and its content, CRLF and
 * dot-unstuffed, in one frame), recipient outcomes, state changes (released to
 * deferred with a due time, to hold or corrupt, requeued to incoming), the message
 * moving out to a per-message file, and its removal. Each append is one frame in the
 * current segment file (journal-format.ts), written by the group committer
 * (group-commit.ts): concurrent appends share one pwritev and one fdatasync, and a
 * durable append resolves only once the fdatasync covering its bytes has completed.
 *
 * How a store uses it (FileQueueStore, as its journal for small messages):
 * - `open()` recovers: `entries()` are the live messages, oldest first, with state and
 *   due time, to build the store's index; `recovery` says what was torn or damaged.
 * - `appendMessage()` is a commit (durable on return; the 250 may go out). The
 *   returned entry holds the frame in memory while the hand-off budget allows and for
 *   HANDOFF_MS at most (journal-handoff.ts), so the QueueManager can deliver without
 *   reading it back (`openContent` serves it from memory); `releaseHandoff()` when
 *   done (removal, release and move do it too).
 *   JournalMessageWriter wraps this as the store's MessageWriter for messages under
 *   the inline limit.
 * - `recordOutcomes()` / `changeState()` journal what qmgr decides: durable for
 *   bounced and deferred outcomes and for hold and corrupt, lazy for sent marks and a
 *   release to deferred (the store's existing rules).
 * - `readRecord()` rebuilds the current record (to claim a message not in memory, to
 *   list it, or to move it out), `openContent()` streams its content.
 * - Messages that stay queued (released to deferred or hold, or still live when their
 *   segment is among the oldest: `pinning()`) should move out: the store writes a
 *   per-message file from `readRecord()` + `openContent()`, makes it durable, then
 *   calls `markMoved()`. From then on the file is the message's home and the journal
 *   forgets it. If a crash leaves both (the moved frame lost), the file wins.
 * - `markRemoved()` when every recipient is final (lazy by default: a crash then means
 *   a duplicate delivery, as with a lost sent mark).
 *
 * Segments: rotated at `segmentSize`; a segment is deleted once it and every older one
 * hold no live message (segment-set.ts says why in order), after a sync that makes the
 * removal frames durable. So unlinks happen per segment, not per message.
 *
 * Postfix counterpart: none — Postfix keeps one queue file per message and fsyncs each
 * (cleanup(8), mail_stream.c). The journal keeps the contract of those files (a 250
 * means durable, a crash loses nothing acknowledged, a torn write is recognised) with
 * one fdatasync per batch instead of per message.
 *
 * SECURITY: the directory is created mode 0700 and segment files 0600; queue IDs are
 * checked before they are written; everything read back is checked (journal-format.ts).
 * The journal assumes one process owns its directory: the store's directory lock
 * guarantees it.
 *
 * Does not do: leases, claims and the state index of the store (MessageIndex), write
 * per-message files, or decide when a message moves out (the store's policy).
 *
 * @module
 */

import type { Readable } from 'node:stream';
import { Readable as ReadableStream } from 'node:stream';
import { systemClock } from '../../../clock.js';
import { QueueStoreError } from '../../../errors.js';
import { type ComponentLogger, silentLogger } from '../../../log.js';
import type { Clock, QueueId } from '../../../types.js';
import { errorMessage } from '../../../util/error-message.js';
import type { MessageRecord, RecipientOutcome } from '../../types.js';
import { recordText } from '../file-store-format.js';
import { GroupCommitter, type Placement } from './group-commit.js';
import { HandoffBudget } from './handoff-budget.js';
import { JournalContentStream } from './journal-content.js';
import { JournalEntry } from './journal-entry.js';
import {
  encodeMessageFrame,
  encodeUpdateFrame,
  FRAME_HEADER_SIZE,
  FrameType,
  type JournalStateChange,
} from './journal-format.js';
import { JournalHandoff } from './journal-handoff.js';
import { nodeJournalIo } from './journal-io.js';
import {
  DEFAULT_SEGMENT_SIZE,
  type JournalOptions,
  type JournalRecord,
  type JournalStats,
} from './journal-options.js';
import { readJournalRecord } from './journal-record.js';
import { type JournalRecoveryReport, recoverJournal } from './journal-recovery.js';
import { DUE_HOLD, DUE_INCOMING, type JournalTable } from './journal-table.js';
import type { Segment } from './segment-set.js';
import { SegmentSet } from './segment-set.js';

export type { JournalOptions, JournalRecord, JournalStats } from './journal-options.js';
export { DEFAULT_SEGMENT_SIZE } from './journal-options.js';

const MAX_BATCH_BYTES = 4 * 1024 * 1024;
/** Linux's IOV_MAX: one pwritev takes this many buffers. */
const MAX_BATCH_FRAMES = 1024;

function isQueueStoreError(err: unknown): err is QueueStoreError {
  return err instanceof QueueStoreError;
}

/** The message journal of one queue directory. See the module header. */
export class Journal {
  readonly directory: string;
  /** What recovery found at open. */
  readonly recovery: JournalRecoveryReport;
  /** The hand-off byte budget. */
  readonly budget: HandoffBudget;
  /** Called each time a batch's fdatasync starts (GroupCommitOptions.syncStarted). */
  syncStarted: (() => void) | undefined;
  readonly #handoff: JournalHandoff;
  readonly #log: ComponentLogger;
  readonly #segments: SegmentSet;
  readonly #committer: GroupCommitter;
  /** The live messages (typed-array columns by slot; views made on demand). */
  readonly #table: JournalTable;
  /** Message frames queued but not yet durable, by queue ID. */
  readonly #committing = new Set<QueueId>();
  #liveBytes = 0;
  #openWriters = 0;
  #closed = false;

  private constructor(
    directory: string,
    log: ComponentLogger,
    segments: SegmentSet,
    table: JournalTable,
    recovery: JournalRecoveryReport,
    budget: HandoffBudget,
    gatherMs: number,
    clock: Clock,
  ) {
    this.directory = directory;
    this.#log = log;
    this.#segments = segments;
    this.#table = table;
    this.recovery = recovery;
    this.budget = budget;
    this.#handoff = new JournalHandoff(budget, table, clock);
    for (const e of this.entries()) this.#liveBytes += e.frameLength;
    segments.onUnused = () => this.#scheduleReclaim();
    this.#committer = new GroupCommitter({
      target: { segmentFor: (bytes) => this.#segmentFor(bytes) },
      maxBatchBytes: MAX_BATCH_BYTES,
      maxBatchFrames: MAX_BATCH_FRAMES,
      gatherMs,
      expected: () => this.#openWriters,
      syncStarted: () => this.syncStarted?.(),
    });
  }

  /**
   * Opens (creating if needed) and recovers the journal in `options.directory`; appends
   * go on after the newest segment's last frame, or in a new segment when that one is
   * damaged. Throws QueueStoreError if the directory cannot
   * be used or was written by a newer format.
   */
  static async open(options: JournalOptions): Promise<Journal> {
    const { directory } = options;
    if (typeof directory !== 'string' || directory === '') {
      throw new QueueStoreError('the journal needs a directory: Journal.open({ directory })');
    }
    const segmentSize = options.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    if (!Number.isSafeInteger(segmentSize) || segmentSize < 64 * 1024) {
      throw new QueueStoreError(
        `journal segmentSize must be a whole number of bytes >= 65536, not ${String(segmentSize)}`,
      );
    }
    const gatherMs = options.gatherMs ?? 0;
    if (!(gatherMs >= 0 && gatherMs <= 1000)) {
      throw new QueueStoreError(`journal gatherMs must be 0..1000 ms, not ${String(gatherMs)}`);
    }
    const io = options.io ?? nodeJournalIo;
    const log = (options.logger ?? silentLogger).for('queue');
    const budget =
      options.handoffBudget instanceof HandoffBudget
        ? options.handoffBudget
        : new HandoffBudget(options.handoffBudget);
    const segments = new SegmentSet({
      directory,
      io,
      segmentSize,
      preallocate: options.preallocate !== false,
      onSpareError: (err) =>
        log.warning(
          undefined,
          `journal: cannot preallocate the next segment: ${errorMessage(err)}; new segments grow as they are written until it works`,
        ),
    });
    try {
      await io.mkdir(directory);
      await segments.removeLeftoverSpare();
      const { table, report, resume } = await recoverJournal(directory, io, segments);
      const journal = new Journal(
        directory,
        log,
        segments,
        table,
        report,
        budget,
        gatherMs,
        options.clock ?? systemClock,
      );
      journal.#report();
      if (resume) segments.resume(resume);
      else await segments.rotate();
      journal.#scheduleReclaim();
      return journal;
    } catch (err) {
      await segments.close();
      if (isQueueStoreError(err)) throw err;
      throw new QueueStoreError(
        `cannot open the queue journal ${directory}: ${errorMessage(err)}; check that the directory is writable and the disk has room`,
        undefined,
        { cause: err },
      );
    }
  }

  /** Logs what recovery found that an operator should know. */
  #report(): void {
    const r = this.recovery;
    if (r.tornBytes > 0)
      this.#log.warning(
        undefined,
        `journal: ignored a torn write of ${r.tornBytes} bytes at the end of the newest segment`,
      );
    for (const d of r.damaged) {
      this.#log.warning(
        undefined,
        `journal: skipped ${d.length} damaged bytes at offset ${d.offset} of ${d.segment}; the segment will be kept as .damaged`,
      );
    }
    if (r.duplicateMessages > 0)
      this.#log.warning(
        undefined,
        `journal: ignored ${r.duplicateMessages} duplicate message frames`,
      );
    if (r.invalidFrames > 0)
      this.#log.warning(undefined, `journal: ignored ${r.invalidFrames} frames that did not parse`);
  }

  #assertOpen(): void {
    if (this.#closed) throw new QueueStoreError('the queue journal is closed');
  }

  #entry(queueId: QueueId): JournalEntry {
    const entry = this.get(queueId);
    if (!entry) throw new QueueStoreError('no such message in the queue journal', queueId);
    return entry;
  }

  #writeError(err: unknown, queueId?: QueueId): QueueStoreError {
    if (isQueueStoreError(err)) return err;
    return new QueueStoreError(
      `cannot write the queue journal: ${errorMessage(err)}; check free space and permissions of the queue directory`,
      queueId,
      { cause: err },
    );
  }

  async #segmentFor(bytes: number): Promise<Segment> {
    const before = this.#segments.current;
    const segment = await this.#segments.segmentFor(bytes);
    if (segment !== before) this.#scheduleReclaim();
    return segment;
  }

  /** Live messages. */
  get size(): number {
    return this.#table.size;
  }

  /**
   * Live messages in journal order (oldest first), each a view made as the iteration
   * reaches it. Do not append or remove while iterating.
   */
  *entries(): IterableIterator<JournalEntry> {
    for (const [queueId, slot] of this.#table.slots())
      yield new JournalEntry(this.#table, queueId, slot);
  }

  /** A live message, if the journal holds it (a view: `live` says whether it still does). */
  get(queueId: QueueId): JournalEntry | undefined {
    const slot = this.#table.slot(queueId);
    return slot === undefined ? undefined : new JournalEntry(this.#table, queueId, slot);
  }

  /** Whether the journal holds the message (no view made). */
  has(queueId: QueueId): boolean {
    return this.#table.slot(queueId) !== undefined;
  }

  /**
   * A message writer is open (its commit may come soon): the group committer may wait
   * for it (gatherMs). Pair with `writerClosed()`.
   */
  writerOpened(): void {
    this.#openWriters++;
  }

  writerClosed(): void {
    if (this.#openWriters > 0) this.#openWriters--;
  }

  /**
   * Appends a new message and resolves once it is durable: the client may have its
   * 250. `record` is the stored record (every recipient pending); `content` the
   * message as CRLF, dot-unstuffed. Rejects with QueueStoreError if it is not durable
   * (nothing is acknowledged then; recovery ignores what was written). `handoff: false`:
   * do not keep the frame in memory (no one is about to deliver it); when it is kept,
   * `record` may be kept with it for a while and given to the first `readRecord` as it
   * is, so it must not be changed after the call.
   */
  async appendMessage(
    record: MessageRecord,
    content: readonly Buffer[],
    options: { readonly hold?: boolean; readonly handoff?: boolean } = {},
  ): Promise<JournalEntry> {
    this.#assertOpen();
    const queueId = record.queueId;
    if (this.has(queueId) || this.#committing.has(queueId)) {
      throw new QueueStoreError('a message with this queue ID is already in the journal', queueId);
    }
    let encoded: ReturnType<typeof encodeMessageFrame>;
    try {
      // The JSON goes straight into the frame: no buffer of its own.
      encoded = encodeMessageFrame(queueId, recordText(record), content, options.hold === true);
    } catch (err) {
      throw new QueueStoreError(`cannot journal the message: ${errorMessage(err)}`, queueId, {
        cause: err,
      });
    }
    const { frame, layout } = encoded;
    this.#committing.add(queueId);
    let home: Segment | undefined;
    let placement: Placement;
    try {
      placement = await this.#committer.append(frame, true, (p) => {
        // Live from the moment it is placed, so its segment cannot be reclaimed.
        home = p.segment;
        home.live++;
      });
    } catch (err) {
      if (home) home.live--;
      throw this.#writeError(err, queueId);
    } finally {
      this.#committing.delete(queueId);
    }
    const slot = this.#table.add(
      queueId,
      placement.segment.sequence,
      placement.offset,
      layout.recordLength,
      layout.contentLength,
      options.hold === true ? DUE_HOLD : DUE_INCOMING,
    );
    if (options.handoff !== false) this.#handoff.keep(queueId, slot, frame, record);
    this.#liveBytes += frame.length;
    return new JournalEntry(this.#table, queueId, slot);
  }

  /** Appends an update frame for a live message; its JSON's place is noted on the entry. */
  async #appendUpdate(
    entry: JournalEntry,
    type: typeof FrameType.outcomes | typeof FrameType.state,
    payload: unknown,
    durable: boolean,
  ): Promise<void> {
    const frame = encodeUpdateFrame(type, entry.queueId, payload);
    const jsonAt = FRAME_HEADER_SIZE + entry.queueId.length;
    let noted: Placement | undefined;
    entry.pending++;
    try {
      await this.#committer.append(frame, durable, (p) => {
        // Noted in journal order as soon as placed, so later frames come after it.
        entry.addUpdate(p.segment.sequence, p.offset + jsonAt, frame.length - jsonAt);
        noted = p;
      });
    } catch (err) {
      // The frame was abandoned with its batch: forget where it would have been.
      if (noted) entry.dropUpdate(noted.segment.sequence, noted.offset + jsonAt);
      throw this.#writeError(err, entry.queueId);
    } finally {
      entry.pending--;
    }
  }

  /**
   * Journals recipient outcomes. `durable`: resolve only once synced (bounced and
   * deferred outcomes); otherwise once written (sent marks, which may be lazy).
   */
  async recordOutcomes(
    queueId: QueueId,
    outcomes: readonly RecipientOutcome[],
    durable: boolean,
  ): Promise<void> {
    this.#assertOpen();
    if (outcomes.length === 0) return;
    await this.#appendUpdate(this.#entry(queueId), FrameType.outcomes, outcomes, durable);
  }

  /**
   * Journals a state change (a release, a queue operation); the entry's state follows
   * once the frame is written. The hand-off buffer is released (a later attempt reads
   * from disk).
   */
  async changeState(queueId: QueueId, change: JournalStateChange, durable: boolean): Promise<void> {
    this.#assertOpen();
    const entry = this.#entry(queueId);
    this.#dropHandoff(entry);
    await this.#appendUpdate(entry, FrameType.state, change, durable);
    entry.applyState(change);
  }

  /**
   * The message now lives in a durable per-message file: forgets it at once (so its
   * segment can be reclaimed) and journals that, durably. If the frame is lost (a
   * failed write, a crash before it), recovery finds both the file and the message;
   * the file wins, so the caller must have made the file durable first.
   */
  async markMoved(queueId: QueueId): Promise<void> {
    this.#assertOpen();
    this.#forget(this.#entry(queueId));
    try {
      await this.#committer.append(encodeUpdateFrame(FrameType.moved, queueId), true);
    } catch (err) {
      throw this.#writeError(err, queueId);
    }
  }

  /**
   * The message is finished (every recipient final, or deleted): forgets it at once
   * and journals its removal, lazily unless `durable`.
   */
  async markRemoved(queueId: QueueId, durable = false): Promise<void> {
    this.#assertOpen();
    const entry = this.#entry(queueId);
    this.#forget(entry);
    try {
      await this.#committer.append(encodeUpdateFrame(FrameType.removed, queueId), durable);
    } catch (err) {
      throw this.#writeError(err, queueId);
    }
  }

  #forget(entry: JournalEntry): void {
    this.#dropHandoff(entry);
    this.#table.delete(entry.queueId);
    this.#liveBytes -= entry.frameLength;
    const home = this.#segments.get(entry.segment);
    if (home) {
      home.live--;
      if (home.live === 0) this.#scheduleReclaim();
    }
  }

  #dropHandoff(entry: JournalEntry): void {
    const slot = this.#table.slot(entry.queueId);
    if (slot !== undefined) this.#handoff.drop(slot);
  }

  /** Gives back the hand-off memory of a message (delivery no longer needs it). */
  releaseHandoff(queueId: QueueId): void {
    const entry = this.get(queueId);
    if (entry) this.#dropHandoff(entry);
  }

  /** The message's current record (outcomes and state changes applied), state and due time. */
  async readRecord(queueId: QueueId): Promise<JournalRecord> {
    this.#assertOpen();
    let entry = this.#entry(queueId);
    // Just committed and not changed since: the record it was encoded from, not parsed again.
    const committed = this.#handoff.takeRecord(this.#table.slot(queueId)!);
    if (committed)
      return { record: committed, state: entry.state, dueAt: entry.dueAt, asCommitted: true };
    if (entry.pending > 0) {
      // Frames still queued for it are written first, so the read sees them.
      await this.#committer.flush();
      entry = this.#entry(queueId);
    }
    const record = await readJournalRecord(this.#segments, entry, entry.record);
    return { record, state: entry.state, dueAt: entry.dueAt };
  }

  /**
   * A fresh stream of the message's content: from memory while the hand-off holds it,
   * else from its segment. Throws QueueStoreError if the journal does not hold it.
   */
  openContent(queueId: QueueId): Readable {
    this.#assertOpen();
    const entry = this.#entry(queueId);
    const inMemory = entry.content;
    if (inMemory) return ReadableStream.from([inMemory], { objectMode: false });
    return new JournalContentStream(
      queueId,
      this.#segments,
      entry.segment,
      entry.contentOffset,
      entry.contentLength,
    );
  }

  /**
   * Up to `limit` live messages in the oldest segments, oldest first: the ones that
   * keep those segments from being reclaimed, to move out to per-message files when
   * the journal grows (`stats().segments`). Messages in the current segment and the
   * one before it are never listed: they pin nothing yet, and most of them are mail
   * just accepted that will be delivered and removed in a moment.
   */
  pinning(limit: number): JournalEntry[] {
    const out: JournalEntry[] = [];
    const before = this.#segments.all().at(-2)?.sequence ?? Number.POSITIVE_INFINITY;
    for (const [queueId, slot] of this.#table.slots()) {
      if (out.length >= limit) break;
      // The table is in append order: past the old segments, everything is newer.
      if (this.#table.segment(slot) >= before) break;
      out.push(new JournalEntry(this.#table, queueId, slot));
    }
    return out;
  }

  /** Resolves once everything appended so far is durable. */
  async sync(): Promise<void> {
    this.#assertOpen();
    try {
      await this.#committer.sync();
    } catch (err) {
      throw this.#writeError(err);
    }
  }

  #scheduleReclaim(): void {
    if (this.#closed || !this.#segments.reclaimable()) return;
    void this.reclaim().catch((err: unknown) => {
      if (this.#closed) return;
      this.#log.warning(
        undefined,
        `journal: cannot delete a finished segment: ${errorMessage(err)}`,
      );
    });
  }

  /**
   * Deletes the segments nothing live refers to (oldest first), after syncing what
   * was written so their removal frames are durable. Resolves with how many went.
   */
  reclaim(): Promise<number> {
    return this.#segments.reclaim(() => this.#committer.sync());
  }

  /** Counters. */
  stats(): JournalStats {
    return {
      ...this.#committer.stats,
      messages: this.#table.size,
      liveBytes: this.#liveBytes,
      segments: this.#segments.all().length,
      segmentBytes: this.#segments.bytes,
      segmentsCreated: this.#segments.created,
      segmentsReclaimed: this.#segments.deleted,
      segmentsPreallocated: this.#segments.preallocated,
      handoffBytes: this.budget.used,
      handoffRefused: this.budget.refused,
    };
  }

  /**
   * Writes and syncs everything appended (lazy frames too), then closes the files.
   * Streams still reading lose their handle.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    let failure: unknown;
    await this.#committer.close().catch((err: unknown) => {
      failure = err;
    });
    this.#handoff.close();
    for (const [, slot] of this.#table.slots()) this.#handoff.drop(slot);
    await this.#segments.close();
    if (failure) throw this.#writeError(failure);
  }
}
