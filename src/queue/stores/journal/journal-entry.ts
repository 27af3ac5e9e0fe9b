/**
 * JournalEntry: a live message of the journal as its users see it — where its record
 * and content are (never the content itself, apart from a hand-off buffer while one
 * is allowed), its state and due time, and where its later outcome and state frames
 * are.
 *
 * Memory: an entry is a small view made on demand over the journal's table
 * (journal-table.ts), which is where the facts live, in typed arrays; nothing is kept
 * per message as an object. A view names its message by queue ID and slot: once the
 * message has left the journal, changes made through an old view are ignored (the
 * slot may hold another message by then), and its immutable facts (place and lengths)
 * are those read when the view was made.
 *
 * Postfix counterpart: none — Postfix's queue files are found by name; journalled
 * messages are found through this index.
 *
 * @module
 */

import type { QueueId } from '../../../types.js';
import { FRAME_HEADER_SIZE, type JournalStateChange } from './journal-format.js';
import {
  DUE_HOLD,
  DUE_INCOMING,
  dueOf,
  type EntryExtra,
  type JournalTable,
} from './journal-table.js';

/** The state of a journalled message (active is the store's business: leases live in memory). */
export type JournalMessageState = 'incoming' | 'deferred' | 'hold' | 'corrupt';

/**
 * A live message in the journal (a view over its table slot). Offsets are absolute
 * within segment `segment`. Read-only to users of the journal; the journal updates it.
 */
export class JournalEntry {
  readonly queueId: QueueId;
  /** Sequence number of the segment holding the message frame. */
  readonly segment: number;
  /** Offset of the message frame. */
  readonly frameOffset: number;
  /** Length of the record JSON. */
  readonly recordLength: number;
  /** Length of the content (CRLF, dot-unstuffed). */
  readonly contentLength: number;
  readonly #table: JournalTable;
  readonly #slot: number;

  constructor(table: JournalTable, queueId: QueueId, slot: number) {
    this.#table = table;
    this.#slot = slot;
    this.queueId = queueId;
    this.segment = table.segment(slot);
    this.frameOffset = table.frameOffset(slot);
    this.recordLength = table.recordLength(slot);
    this.contentLength = table.contentLength(slot);
  }

  /** Whether the message is still in the journal under this view's slot. */
  get live(): boolean {
    return this.#table.holds(this.queueId, this.#slot);
  }

  /** Offset of the record JSON: after the frame header, the queue ID and its u32 length. */
  get recordOffset(): number {
    // Queue IDs are ASCII: their length is their byte length.
    return this.frameOffset + FRAME_HEADER_SIZE + this.queueId.length + 4;
  }

  /** Offset of the content, right after the record. */
  get contentOffset(): number {
    return this.recordOffset + this.recordLength;
  }

  /** Bytes of the whole message frame. */
  get frameLength(): number {
    return this.contentOffset - this.frameOffset + this.contentLength;
  }

  /** Current state, as the journal last recorded it ('incoming' once gone). */
  get state(): JournalMessageState {
    const due = this.live ? this.#table.due(this.#slot) : DUE_INCOMING;
    if (due >= 0) return 'deferred';
    return due === DUE_INCOMING ? 'incoming' : due === DUE_HOLD ? 'hold' : 'corrupt';
  }

  /** For `deferred`: when the next attempt is due (ms); 0 otherwise. */
  get dueAt(): number {
    return this.live ? Math.max(this.#table.due(this.#slot), 0) : 0;
  }

  #extra(): EntryExtra | undefined {
    return this.live ? this.#table.extra(this.#slot) : undefined;
  }

  /**
   * The message frame as committed (record and content), kept in memory while the
   * hand-off budget allows; see `content` and `record`.
   */
  get frame(): Buffer | undefined {
    return this.#extra()?.frame;
  }

  set frame(frame: Buffer | undefined) {
    if (!this.live) return;
    if (frame !== undefined) this.#table.moreOf(this.#slot).frame = frame;
    else {
      const x = this.#table.extra(this.#slot);
      if (x) {
        x.frame = undefined;
        x.record = undefined;
      }
      this.#table.trim(this.#slot);
    }
  }

  /**
   * Outcome and state frames written for this message, as flat triples (segment,
   * offset of the JSON, its length), oldest first; undefined while there are none.
   */
  get updates(): number[] | undefined {
    return this.#extra()?.updates;
  }

  /** Frames for this message queued but not yet written. */
  get pending(): number {
    return this.#extra()?.pending ?? 0;
  }

  set pending(n: number) {
    if (!this.live) return;
    if (n !== 0) this.#table.moreOf(this.#slot).pending = n;
    else {
      const x = this.#table.extra(this.#slot);
      if (x) x.pending = 0;
      this.#table.trim(this.#slot);
    }
  }

  /** The content from memory, if the frame is still held. */
  get content(): Buffer | undefined {
    const frame = this.frame;
    if (!frame) return undefined;
    const start = this.contentOffset - this.frameOffset;
    return frame.subarray(start, start + this.contentLength);
  }

  /** The record JSON from memory, if the frame is still held. */
  get record(): Buffer | undefined {
    const frame = this.frame;
    if (!frame) return undefined;
    const start = this.recordOffset - this.frameOffset;
    return frame.subarray(start, start + this.recordLength);
  }

  /** Notes an update frame's JSON at (segment, offset, length). */
  addUpdate(segment: number, offset: number, length: number): void {
    if (this.live) this.#table.addUpdate(this.#slot, segment, offset, length);
  }

  /** Forgets the update frame at (segment, offset): its batch failed. */
  dropUpdate(segment: number, offset: number): void {
    if (this.live) this.#table.dropUpdate(this.#slot, segment, offset);
  }

  /** Applies a state change to the state and due time. */
  applyState(change: JournalStateChange): void {
    if (this.live) this.#table.setDue(this.#slot, dueOf(change));
  }
}
