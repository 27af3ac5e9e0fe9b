/**
 * What the journal keeps in memory per live message: where its record and content
 * are (never the content itself, apart from a hand-off buffer while one is allowed),
 * its state and due time, and where its later outcome and state frames are.
 *
 * Memory: one small object per live message (about 150 bytes with its queue ID),
 * plus three numbers per outcome or state frame written for it. Messages that stay
 * queued are meant to move out of the journal into per-message files, so the journal
 * holds mostly mail in flight.
 *
 * Postfix counterpart: none — Postfix's queue files are found by name; journalled
 * messages are found through this index.
 *
 * @module
 */

import type { QueueId } from '../../../types.js';
import type { JournalStateChange } from './journal-format.js';

/** The state of a journalled message (active is the store's business: leases live in memory). */
export type JournalMessageState = 'incoming' | 'deferred' | 'hold' | 'corrupt';

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
  /** Offset and length of the record JSON. */
  readonly recordOffset: number;
  readonly recordLength: number;
  /** Offset and length of the content (CRLF, dot-unstuffed). */
  readonly contentOffset: number;
  readonly contentLength: number;
  /** Current state, as the journal last recorded it. */
  state: JournalMessageState;
  /** For `deferred`: when the next attempt is due (ms); 0 otherwise. */
  dueAt: number;
  /**
   * Outcome and state frames written for this message, as flat triples (segment,
   * offset of the JSON, its length), oldest first; undefined while there are none.
   */
  updates: number[] | undefined = undefined;
  /**
   * The message frame as committed (record and content), kept in memory while the
   * hand-off budget allows; see `content` and `record`.
   */
  frame: Buffer | undefined = undefined;
  /** Frames for this message queued but not yet written. */
  pending = 0;

  constructor(
    queueId: QueueId,
    segment: number,
    frameOffset: number,
    recordOffset: number,
    recordLength: number,
    contentOffset: number,
    contentLength: number,
    hold: boolean,
  ) {
    this.queueId = queueId;
    this.segment = segment;
    this.frameOffset = frameOffset;
    this.recordOffset = recordOffset;
    this.recordLength = recordLength;
    this.contentOffset = contentOffset;
    this.contentLength = contentLength;
    this.state = hold ? 'hold' : 'incoming';
    this.dueAt = 0;
  }

  /** The content from memory, if the frame is still held. */
  get content(): Buffer | undefined {
    const start = this.contentOffset - this.frameOffset;
    return this.frame?.subarray(start, start + this.contentLength);
  }

  /** The record JSON from memory, if the frame is still held. */
  get record(): Buffer | undefined {
    const start = this.recordOffset - this.frameOffset;
    return this.frame?.subarray(start, start + this.recordLength);
  }

  /** Notes an update frame's JSON at (segment, offset, length). */
  addUpdate(segment: number, offset: number, length: number): void {
    if (this.updates) this.updates.push(segment, offset, length);
    else this.updates = [segment, offset, length];
  }

  /** Forgets the update frame at (segment, offset): its batch failed. */
  dropUpdate(segment: number, offset: number): void {
    const u = this.updates;
    if (!u) return;
    for (let i = 0; i + 2 < u.length; i += 3) {
      if (u[i] === segment && u[i + 1] === offset) {
        u.splice(i, 3);
        break;
      }
    }
    if (u.length === 0) this.updates = undefined;
  }

  /** Applies a state change to the state and due time. */
  applyState(change: JournalStateChange): void {
    this.state = change.state;
    this.dueAt = change.state === 'deferred' ? change.dueAt : 0;
  }
}
