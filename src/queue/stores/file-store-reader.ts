/**
 * Reading queue files: the record with its updates (no content read), and a content
 * stream that reads only the content bytes, a fresh one on every call.
 *
 * Postfix counterpart: qmgr_message.c (reading the envelope of a queue file) and the
 * content readers of the delivery agents.
 *
 * Does not do: decide what a failure means. A damaged file throws
 * CorruptMessageError; a missing one the fs error (ENOENT), so the store can tell a
 * message that moved from one that is broken.
 *
 * @module
 */

import type { FileHandle } from 'node:fs/promises';
import { CorruptMessageError } from '../../errors.js';
import type { QueueId } from '../../types.js';
import { openRegularFile } from '../../util/safe-open.js';
import {
  decodePreamble,
  MAX_RECORD_BYTES,
  type ParsedTail,
  PREAMBLE_SIZE,
  type Preamble,
  parseTail,
} from './file-store-format.js';
import { RangeStream } from './range-stream.js';

/**
 * Bytes read in one go at the start of a file: small messages need just this read.
 * Kept small because a claim reads hundreds of files at once and each read's buffer is
 * fresh memory; a larger message costs a stat and a read of its record part instead.
 */
const FIRST_READ = 8 * 1024;

/** A queue file's preamble and parsed record. */
export interface QueueFileInfo extends ParsedTail {
  readonly preamble: Preamble;
}

/** Reads the record and updates of an open queue file. */
export async function readQueueFile(handle: FileHandle, queueId: QueueId): Promise<QueueFileInfo> {
  const first = Buffer.allocUnsafe(FIRST_READ);
  const { bytesRead } = await handle.read(first, 0, FIRST_READ, 0);
  const preamble = decodePreamble(queueId, first.subarray(0, bytesRead));
  const recordOffset = PREAMBLE_SIZE + preamble.contentLength;
  let tail: Buffer;
  if (bytesRead < FIRST_READ) {
    // The whole file is in hand.
    if (recordOffset > bytesRead) throw new CorruptMessageError(queueId, 'content is truncated');
    tail = first.subarray(recordOffset, bytesRead);
  } else {
    const { size } = await handle.stat();
    if (recordOffset > size) throw new CorruptMessageError(queueId, 'content is truncated');
    const tailLength = size - recordOffset;
    if (tailLength > 2 * MAX_RECORD_BYTES)
      throw new CorruptMessageError(queueId, 'record and updates are too large');
    tail = Buffer.allocUnsafe(tailLength);
    let done = 0;
    while (done < tailLength) {
      const r = await handle.read(tail, done, tailLength - done, recordOffset + done);
      if (r.bytesRead === 0) break;
      done += r.bytesRead;
    }
    tail = tail.subarray(0, done);
  }
  return { preamble, ...parseTail(queueId, preamble, tail, recordOffset) };
}

/**
 * Opens a queue file read-only (never following a link or waiting on a FIFO: anything
 * but a regular file throws NotRegularFileError) and reads its record and updates.
 */
export async function readQueueFileAt(path: string, queueId: QueueId): Promise<QueueFileInfo> {
  const { handle } = await openRegularFile(path, 'r', { allowLinks: true });
  try {
    return await readQueueFile(handle, queueId);
  } finally {
    await handle.close();
  }
}

/**
 * A stream of a queue file's content. `open` finds and opens the file (trying every
 * directory it may have moved to); the file then stays readable through renames.
 */
export class QueueContentStream extends RangeStream {
  readonly #queueId: QueueId;
  readonly #open: () => Promise<FileHandle>;
  #handle: FileHandle | undefined;

  constructor(queueId: QueueId, open: () => Promise<FileHandle>) {
    super(queueId, 'content is truncated', PREAMBLE_SIZE, PREAMBLE_SIZE);
    this.#queueId = queueId;
    this.#open = open;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    this.#init().then(
      () => callback(),
      (err: unknown) => callback(err as Error),
    );
  }

  async #init(): Promise<void> {
    this.#handle = await this.#open();
    const head = Buffer.alloc(PREAMBLE_SIZE);
    const { bytesRead } = await this.#handle.read(head, 0, PREAMBLE_SIZE, 0);
    const preamble = decodePreamble(this.#queueId, head.subarray(0, bytesRead));
    this.end = PREAMBLE_SIZE + preamble.contentLength;
  }

  protected override source(): FileHandle | undefined {
    return this.#handle;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const handle = this.#handle;
    this.#handle = undefined;
    if (!handle) {
      callback(error);
      return;
    }
    handle.close().then(
      () => callback(error),
      () => callback(error),
    );
  }
}
