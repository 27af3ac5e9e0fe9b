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

import { Readable } from 'node:stream';
import { CorruptMessageError } from '../../../errors.js';
import type { QueueId } from '../../../types.js';
import type { Segment, SegmentSet } from './segment-set.js';

const CHUNK = 64 * 1024;

/** Content bytes [offset, offset + length) of a segment, as a stream. */
export class JournalContentStream extends Readable {
  readonly #queueId: QueueId;
  readonly #segments: SegmentSet;
  #segment: Segment | undefined;
  #position: number;
  readonly #end: number;

  constructor(
    queueId: QueueId,
    segments: SegmentSet,
    sequence: number,
    offset: number,
    length: number,
  ) {
    super({ highWaterMark: CHUNK });
    this.#queueId = queueId;
    this.#segments = segments;
    // Taken now, before anything can remove the message and reclaim its segment.
    this.#segment = segments.acquire(sequence);
    this.#position = offset;
    this.#end = offset + length;
  }

  override _read(size: number): void {
    const segment = this.#segment;
    const want = Math.min(Math.max(size, CHUNK), this.#end - this.#position);
    if (!segment || want <= 0) {
      this.push(null);
      return;
    }
    const buffer = Buffer.allocUnsafe(want);
    segment.file.read(buffer, 0, want, this.#position).then(
      ({ bytesRead }) => {
        if (bytesRead === 0) {
          this.destroy(new CorruptMessageError(this.#queueId, 'journal content is truncated'));
          return;
        }
        this.#position += bytesRead;
        this.push(bytesRead === want ? buffer : buffer.subarray(0, bytesRead));
        if (this.#position >= this.#end) this.push(null);
      },
      (err: unknown) => this.destroy(err as Error),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const segment = this.#segment;
    this.#segment = undefined;
    if (segment) this.#segments.release(segment);
    callback(error);
  }
}
