/**
 * Writing a new queue file: the MessageWriter of FileQueueStore.
 *
 * The content is collected into large writes (a small message is written with its
 * preamble and record in one write at commit; a large one in 256 KiB writes), the file
 * is fdatasync'ed and closed, and the store then renames it into `incoming/` (or
 * `hold/`) and syncs that directory with a shared fsync. Syscalls per small message:
 * open, write, fdatasync, close, rename, plus a share of one directory fsync. An smtpd
 * worker may write the rest of a large message into the file itself (`openDirect`,
 * direct-content.ts); the commit then syncs its writes with the writer's own.
 *
 * Postfix counterpart: mail_stream.c and cleanup's queue file writing (a file in
 * `incoming/` created by cleanup, fsync'ed before the client gets its 250).
 *
 * Does not do: decide where the file goes (the store's `publish` does) or check the
 * content (Cleanup does).
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { QueueStoreError } from '../../errors.js';
import type { QueueId } from '../../types.js';
import { errorMessage } from '../../util/error-message.js';
import { storedRecord } from '../lease.js';
import type { MessageRecord, MessageWriter, NewMessageRecord } from '../types.js';
import { checkedBytes, type DirectContentWriter, type DirectTarget } from './direct-content.js';
import { encodePreamble, encodeRecord, PREAMBLE_SIZE } from './file-store-format.js';

/** Content is written once this much has been collected. */
const FLUSH_BYTES = 256 * 1024;

/** Writes every byte of `buffers` at `position`, however the kernel splits it. */
export async function writeAll(
  handle: FileHandle,
  buffers: Buffer[],
  position: number,
): Promise<void> {
  let pending = buffers.filter((b) => b.length > 0);
  let pos = position;
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending, pos);
    pos += bytesWritten;
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const b of pending) {
      if (skip >= b.length) {
        skip -= b.length;
        continue;
      }
      rest.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
    pending = rest;
  }
}

/** What the writer needs from its store. */
export interface WriterHost {
  /** Moves the finished temp file into its queue and makes that durable. */
  publish(queueId: QueueId, record: MessageRecord, hold: boolean): Promise<void>;
  /** Called once the writer is done (committed or aborted), to stop tracking it. */
  done(queueId: QueueId): void;
}

export class FileMessageWriter implements MessageWriter, DirectContentWriter {
  readonly queueId: QueueId;
  readonly content: Writable;
  readonly #tmpPath: string;
  readonly #host: WriterHost;
  #handle: FileHandle | undefined;
  #chunks: Buffer[] = [];
  #collected = 0;
  /** File offset of the next content byte. */
  #position = PREAMBLE_SIZE;
  #state: 'open' | 'committing' | 'committed' | 'aborted' = 'open';
  /** The file's length once committed: where the first update frame goes. */
  size = 0;

  private constructor(queueId: QueueId, tmpPath: string, handle: FileHandle, host: WriterHost) {
    this.queueId = queueId;
    this.#tmpPath = tmpPath;
    this.#handle = handle;
    this.#host = host;
    this.content = new Writable({
      highWaterMark: 64 * 1024,
      writev: (chunks, callback) => {
        for (const { chunk } of chunks) this.#collect(chunk as Buffer);
        this.#maybeFlush().then(
          () => callback(),
          (err: Error) => this.#failed(err, callback),
        );
      },
      write: (chunk: Buffer, _encoding, callback) => {
        this.#collect(chunk);
        this.#maybeFlush().then(
          () => callback(),
          (err: Error) => this.#failed(err, callback),
        );
      },
    });
  }

  /** Creates the temp file (O_EXCL, mode 0600) and returns its writer. */
  static async create(
    queueId: QueueId,
    tmpPath: string,
    host: WriterHost,
  ): Promise<FileMessageWriter> {
    const handle = await fs.open(tmpPath, 'wx', 0o600);
    return new FileMessageWriter(queueId, tmpPath, handle, host);
  }

  /** A write failed: an error for the writer's user, unless it aborted meanwhile. */
  #failed(err: Error, callback: (error?: Error | null) => void): void {
    callback(this.#state === 'aborted' ? null : err);
  }

  #collect(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#collected += chunk.length;
  }

  async #maybeFlush(force = false): Promise<void> {
    if (this.#collected < FLUSH_BYTES && !(force && this.#collected > 0)) return;
    const handle = this.#handle;
    if (!handle) throw new QueueStoreError('the message was aborted', this.queueId);
    const chunks = this.#chunks;
    const start = this.#position;
    this.#chunks = [];
    this.#position += this.#collected;
    this.#collected = 0;
    // The preamble is written for real at commit; until then the space is zeros.
    if (start === PREAMBLE_SIZE) chunks.unshift(Buffer.alloc(PREAMBLE_SIZE));
    await writeAll(handle, chunks, start === PREAMBLE_SIZE ? 0 : start);
  }

  /**
   * The content written so far as a fresh stream that stays readable after `abort()`:
   * the temp file is opened before anything can unlink it. Cleanup uses it when a
   * content filter adds headers and keeps the body.
   */
  async openWritten(): Promise<Readable> {
    if (this.#state !== 'open' || !this.#handle) {
      throw new QueueStoreError('the message is not being written any more', this.queueId);
    }
    if (this.content.writableEnded) await finished(this.content);
    await this.#maybeFlush(true);
    const length = this.#position - PREAMBLE_SIZE;
    if (length === 0) return Readable.from([]);
    const reader = await fs.open(this.#tmpPath, 'r');
    return reader.createReadStream({ start: PREAMBLE_SIZE, end: PREAMBLE_SIZE + length - 1 });
  }

  /**
   * Hands the file over for the rest of the content (direct-content.ts): what the
   * stream took is written first; the bytes written directly count once `written()`
   * reports them.
   */
  async openDirect(): Promise<DirectTarget> {
    if (this.#state !== 'open' || !this.#handle || this.content.destroyed) {
      throw new QueueStoreError('the message is not being written any more', this.queueId);
    }
    if (!this.content.writableEnded) this.content.end();
    await finished(this.content);
    await this.#maybeFlush(true);
    const position = this.#position;
    let reported = false;
    return {
      path: resolve(this.#tmpPath),
      position,
      written: (bytes: number) => {
        if (reported || this.#state !== 'open' || this.#position !== position)
          throw new QueueStoreError('direct content reported twice or too late', this.queueId);
        reported = true;
        this.#position += checkedBytes(bytes);
      },
    };
  }

  async commit(record: NewMessageRecord): Promise<void> {
    if (record.queueId !== this.queueId && this.#state === 'open') {
      throw new QueueStoreError(
        `the record names queue ID ${record.queueId}, the writer ${this.queueId}`,
        this.queueId,
      );
    }
    await this.commitRecord(storedRecord(record), record.hold === true);
  }

  /**
   * Commits with a record as it is to be stored, outcomes included: how a message that
   * already has a history (moved out of the queue journal) gets a file of its own.
   */
  async commitRecord(stored: MessageRecord, hold: boolean): Promise<void> {
    if (this.#state !== 'open') {
      throw new QueueStoreError(
        `the message was already ${this.#state === 'aborted' ? 'aborted' : 'committed'}`,
        this.queueId,
      );
    }
    if (stored.queueId !== this.queueId) {
      throw new QueueStoreError(
        `the record names queue ID ${stored.queueId}, the writer ${this.queueId}`,
        this.queueId,
      );
    }
    this.#state = 'committing';
    try {
      if (!this.content.writableEnded) this.content.end();
      await finished(this.content);
      const handle = this.#handle;
      if (!handle) throw new QueueStoreError('the message was aborted', this.queueId);
      const recordBytes = encodeRecord(stored);
      const contentLength = this.#position - PREAMBLE_SIZE + this.#collected;
      const preamble = encodePreamble(contentLength, recordBytes);
      const chunks = this.#chunks;
      this.#chunks = [];
      if (this.#position === PREAMBLE_SIZE) {
        await writeAll(handle, [preamble, ...chunks, recordBytes], 0);
      } else {
        await writeAll(handle, [...chunks, recordBytes], this.#position);
        await writeAll(handle, [preamble], 0);
      }
      this.size = PREAMBLE_SIZE + contentLength + recordBytes.length;
      await handle.datasync();
      this.#handle = undefined;
      await handle.close();
      await this.#host.publish(this.queueId, stored, hold);
      this.#state = 'committed';
      this.#host.done(this.queueId);
    } catch (err) {
      await this.#discard();
      this.#state = 'aborted';
      if (err instanceof QueueStoreError) throw err;
      throw new QueueStoreError(
        `cannot write the queue file: ${errorMessage(err)}; check free space and permissions of the queue directory`,
        this.queueId,
        {
          cause: err,
        },
      );
    }
  }

  async abort(): Promise<void> {
    if (this.#state === 'committed' || this.#state === 'aborted') return;
    if (this.#state === 'committing') {
      // A commit is under way; it either finishes (and the message stays) or cleans up.
      return;
    }
    this.#state = 'aborted';
    await this.#discard();
  }

  async #discard(): Promise<void> {
    this.#chunks = [];
    if (!this.content.destroyed) this.content.destroy();
    const handle = this.#handle;
    this.#handle = undefined;
    if (handle) await handle.close().catch(() => undefined);
    await fs.unlink(this.#tmpPath).catch(() => undefined);
    this.#host.done(this.queueId);
  }
}
