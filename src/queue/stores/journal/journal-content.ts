/**
 * A stream of a journalled message's content, read from its segment through the
 * segment's shared handle (one pread per 64 KiB, no open or close), or from memory
 * while the message's frame is still held for the hand-off.
 *
 * The segment is taken when the stream is made and given back when it ends or is
 * destroyed, so a segment is never deleted under a reader, even if the message is
 * removed while it is being read (a second MX attempt, a DSN with the content).
 *
 * Postfix counterpart: the delivery agents reading the message content from the queue
 * file (mail_copy.c, smtp_proto.c).
 *
 * @module
 */

import type { QueueId } from '../../../types.js';
import { RangeStream } from '../range-stream.js';
import type { Segment, SegmentSet } from './segment-set.js';

/** Content bytes [offset, offset + length) of a segment, as a stream. */
export class JournalContentStream extends RangeStream {
  readonly #segments: SegmentSet;
  #segment: Segment | undefined;

  constructor(
    queueId: QueueId,
    segments: SegmentSet,
    sequence: number,
    offset: number,
    length: number,
  ) {
    super(queueId, 'journal content is truncated', offset, offset + length);
    this.#segments = segments;
    // Taken now, before anything can remove the message and reclaim its segment.
    this.#segment = segments.acquire(sequence);
  }

  protected override source(): Segment['file'] | undefined {
    return this.#segment?.file;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const segment = this.#segment;
    this.#segment = undefined;
    if (segment) this.#segments.release(segment);
    callback(error);
  }
}
