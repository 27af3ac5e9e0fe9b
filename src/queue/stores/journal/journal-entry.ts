/**
 * What the journal keeps in memory per live message: where its record and content
 * are (never the content itself, apart from a hand-off buffer while one is allowed),
 * its state and due time, and where its later outcome and state frames are.
 *
 * Memory: one object of seven slots per live message (88 bytes on 64-bit V8, from
 * 120 with every field stored; the queue ID string is shared with the store's index).
 * What few messages have — a hand-off frame, update frames, frames not yet written —
 * hangs off a second object made only for them, with three numbers per outcome or
 * state frame. Offsets that follow from the frame layout (the record's, the
 * content's) are computed, not stored. Messages that stay queued are meant to move
 * out of the journal into per-message files, so the journal holds mostly mail in
 * flight.
 *
 * Postfix counterpart: none — Postfix's queue files are found by name; journalled
 * messages are found through this index.
 *
 * @module
 */

import type { QueueId } from '../../../types.js';
import { FRAME_HEADER_SIZE, type JournalStateChange } from './journal-format.js';

/** The state of a journalled message (active is the store's business: leases live in memory). */
export type JournalMessageState = 'incoming' | 'deferred' | 'hold' | 'corrupt';

/** `#due` codes for the states other than deferred (whose `#due` is its due time, >= 0). */
const INCOMING = -1;
const HOLD = -2;
const CORRUPT = -3;

/** What only some entries have; dropped once it holds nothing. */
interface EntryExtra {
  frame: Buffer | undefined;
  updates: number[] | undefined;
  pending: number;
}

/**
 * A live message in the journal. Offsets are absolute within segment `segment`.
 * Read-only to users of the journal; the journal updates it.
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
  /** The due time while deferred (>= 0), else INCOMING, HOLD or CORRUPT. */
  #due: number;
  #extra: EntryExtra | undefined = undefined;

  constructor(
    queueId: QueueId,
    segment: number,
    frameOffset: number,
    recordLength: number,
    contentLength: number,
    hold: boolean,
  ) {
    this.queueId = queueId;
    this.segment = segment;
    this.frameOffset = frameOffset;
    this.recordLength = recordLength;
    this.contentLength = contentLength;
    this.#due = hold ? HOLD : INCOMING;
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

  /** Current state, as the journal last recorded it. */
  get state(): JournalMessageState {
    const due = this.#due;
    if (due >= 0) return 'deferred';
    return due === INCOMING ? 'incoming' : due === HOLD ? 'hold' : 'corrupt';
  }

  /** For `deferred`: when the next attempt is due (ms); 0 otherwise. */
  get dueAt(): number {
    return Math.max(this.#due, 0);
  }

  /**
   * The message frame as committed (record and content), kept in memory while the
   * hand-off budget allows; see `content` and `record`.
   */
  get frame(): Buffer | undefined {
    return this.#extra?.frame;
  }

  set frame(frame: Buffer | undefined) {
    this.#more(frame !== undefined).frame = frame;
    this.#trim();
  }

  /**
   * Outcome and state frames written for this message, as flat triples (segment,
   * offset of the JSON, its length), oldest first; undefined while there are none.
   */
  get updates(): number[] | undefined {
    return this.#extra?.updates;
  }

  /** Frames for this message queued but not yet written. */
  get pending(): number {
    return this.#extra?.pending ?? 0;
  }

  set pending(n: number) {
    this.#more(n !== 0).pending = n;
    this.#trim();
  }

  /** The extra object, made if `make` (else a throwaway when there is none). */
  #more(make: boolean): EntryExtra {
    if (this.#extra) return this.#extra;
    const extra: EntryExtra = { frame: undefined, updates: undefined, pending: 0 };
    if (make) this.#extra = extra;
    return extra;
  }

  #trim(): void {
    const x = this.#extra;
    if (x && x.frame === undefined && x.updates === undefined && x.pending === 0)
      this.#extra = undefined;
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
    const x = this.#more(true);
    if (x.updates) x.updates.push(segment, offset, length);
    else x.updates = [segment, offset, length];
  }

  /** Forgets the update frame at (segment, offset): its batch failed. */
  dropUpdate(segment: number, offset: number): void {
    const x = this.#extra;
    const u = x?.updates;
    if (!x || !u) return;
    for (let i = 0; i + 2 < u.length; i += 3) {
      if (u[i] === segment && u[i + 1] === offset) {
        u.splice(i, 3);
        break;
      }
    }
    if (u.length === 0) {
      x.updates = undefined;
      this.#trim();
    }
  }

  /** Applies a state change to the state and due time. */
  applyState(change: JournalStateChange): void {
    if (change.state === 'deferred')
      this.#due = Number.isFinite(change.dueAt) ? Math.max(change.dueAt, 0) : 0;
    else
      this.#due = change.state === 'incoming' ? INCOMING : change.state === 'hold' ? HOLD : CORRUPT;
  }
}
