/**
 * RangeStream: a byte range of a queue file or journal segment as a Readable, read
 * with positioned reads of at least 64 KiB, ending early with CorruptMessageError when
 * the file is shorter than the range says.
 *
 * Postfix counterpart: the delivery agents reading a message's content from its queue
 * file (mail_copy.c, smtp_proto.c).
 *
 * Does not do: find, open or close what it reads (its subclasses: a queue file's
 * handle, a journal segment taken from its SegmentSet).
 *
 * @module
 */

import { Readable } from 'node:stream';
import { CorruptMessageError } from '../../errors.js';
import type { QueueId } from '../../types.js';
import type { JournalFile } from './journal/journal-io.js';

/** Bytes read per positioned read, and the stream's highWaterMark. */
export const RANGE_CHUNK = 64 * 1024;

/** What a RangeStream reads from: a FileHandle or a journal file (their positioned read). */
export type PositionedSource = Pick<JournalFile, 'read'>;

/** Bytes [position, end) of `source()`; subclasses set the range and own the source. */
export abstract class RangeStream extends Readable {
  readonly #queueId: QueueId;
  readonly #truncated: string;
  protected position: number;
  protected end: number;

  constructor(queueId: QueueId, truncated: string, position: number, end: number) {
    super({ highWaterMark: RANGE_CHUNK });
    this.#queueId = queueId;
    this.#truncated = truncated;
    this.position = position;
    this.end = end;
  }

  /** What to read from now; undefined once released (the stream then ends). */
  protected abstract source(): PositionedSource | undefined;

  override _read(size: number): void {
    const source = this.source();
    const want = Math.min(Math.max(size, RANGE_CHUNK), this.end - this.position);
    if (!source || want <= 0) {
      this.push(null);
      return;
    }
    const buffer = Buffer.allocUnsafe(want);
    source.read(buffer, 0, want, this.position).then(
      ({ bytesRead }) => {
        if (bytesRead === 0) {
          this.destroy(new CorruptMessageError(this.#queueId, this.#truncated));
          return;
        }
        this.position += bytesRead;
        this.push(bytesRead === want ? buffer : buffer.subarray(0, bytesRead));
        if (this.position >= this.end) this.push(null);
      },
      (err: unknown) => this.destroy(err as Error),
    );
  }
}
