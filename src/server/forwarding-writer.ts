/**
 * ForwardingWriter: the MessageWriter of an smtpd worker. Its content stream becomes
 * DATA frames to the primary, which writes them to its own store; `commit()` resolves
 * only when the primary's store has made the message durable, so the 250 still never
 * precedes durability; `abort()` tells the primary to drop the message.
 *
 * A large message (past DIRECT_AFTER bytes) asks the primary for the file its store
 * keeps the message in, and writes the rest of the content there itself: a thread or
 * process of the same server on the same file system, so the bytes cross no channel and
 * the primary only commits (record, fdatasync, rename) what is already in its file. A
 * store without such a file (memory, PostgreSQL) answers no, and the content goes on in
 * DATA frames.
 *
 * Postfix counterpart: smtpd(8) writing queue file records to cleanup(8) through
 * mail_stream.c.
 *
 * Does not: re-read what it wrote (no `openWritten()`): DKIM and content filters that
 * need it run only in a single-process server; sync the file (the primary's commit
 * does, which covers every write to it).
 *
 * SECURITY: the file is the store's temp file, named by the primary over the server's
 * own channel; it is opened for writing without O_CREAT and without following links.
 *
 * @module
 */

import { constants, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { QueueStoreError } from '../errors.js';
import { writeAll } from '../queue/stores/file-store-writer.js';
import type { MessageWriter, NewMessageRecord } from '../queue/types.js';
import type { QueueId } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import type { WorkerChannel } from './worker-channel.js';
import { Frame, MAX_DATA } from './worker-frames.js';

/**
 * Content past this many bytes is written to the store's file directly. Below it the
 * frames cost less than the round trip and the file's opening; a message up to the
 * queue journal's inline limit (64 KiB) stays in the journal.
 */
export const DIRECT_AFTER = 256 * 1024;

/** Content for the file is collected into writes of this size (as the store's own writer does). */
const FILE_WRITE_BYTES = 256 * 1024;

/**
 * A message being written through the primary.
 *
 * @example
 * ```ts
 * const writer = new ForwardingWriter(channel, queueId);
 * writer.content.end(bytes);
 * await writer.commit(record);
 * ```
 */
export class ForwardingWriter implements MessageWriter {
  readonly queueId: QueueId;
  readonly content: Writable;
  readonly #channel: WorkerChannel;
  readonly #id: number;
  #done = false;
  /** Bytes sent in DATA frames. */
  #sent = 0;
  /** Whether the primary was asked for the store's file (once per message). */
  #asked = false;
  /** The store's file, once the primary handed it over; the offset of its next byte. */
  #file: FileHandle | undefined;
  #position = 0;
  /** Bytes written to the file. */
  #written = 0;
  /** Content taken for the file and not written yet. */
  #collected: Buffer[] = [];
  #collectedBytes = 0;

  constructor(channel: WorkerChannel, queueId: QueueId) {
    this.queueId = queueId;
    this.#channel = channel;
    this.#id = channel.open(queueId);
    this.content = new Writable({
      highWaterMark: MAX_DATA,
      // Nothing listens for 'close' on this internal stream and abort() destroys it itself:
      // not destroying it after 'finish' spares each message a destroy and its tick.
      autoDestroy: false,
      write: (chunk: Buffer, _enc, cb) => this.#write([chunk], cb),
      writev: (chunks, cb) =>
        this.#write(
          chunks.map((c) => c.chunk as Buffer),
          cb,
        ),
    });
  }

  #write(chunks: Buffer[], cb: (err?: Error | null) => void): void {
    const closed = this.#channel.closed;
    if (closed) {
      cb(closed);
      return;
    }
    if (this.#file || (!this.#asked && this.#sent >= DIRECT_AFTER)) {
      this.#direct(chunks).then(
        () => cb(),
        (err: Error) => cb(err),
      );
      return;
    }
    this.#frames(chunks, cb);
  }

  /** Sends `chunks` as DATA frames; `cb` once the channel takes more. */
  #frames(chunks: Buffer[], cb: (err?: Error | null) => void): void {
    let ok = true;
    for (const chunk of chunks) {
      // A chunk that fits one frame goes as it is, without a view of it.
      for (let at = 0; at < chunk.length; at += MAX_DATA) {
        const piece = chunk.length <= MAX_DATA ? chunk : chunk.subarray(at, at + MAX_DATA);
        ok = this.#channel.send(Frame.data, this.#id, piece);
      }
      this.#sent += chunk.length;
    }
    if (ok) cb();
    else this.#channel.once('drain', () => cb(this.#channel.closed ?? null));
  }

  /** Writes `chunks` to the store's file, asking for it first; frames if there is none. */
  async #direct(chunks: Buffer[]): Promise<void> {
    if (!this.#asked) {
      this.#asked = true;
      await this.#openFile();
    }
    const file = this.#file;
    if (!file) {
      await new Promise<void>((resolve, reject) =>
        this.#frames(chunks, (err) => (err ? reject(err) : resolve())),
      );
      return;
    }
    for (const c of chunks) {
      this.#collected.push(c);
      this.#collectedBytes += c.length;
    }
    if (this.#collectedBytes >= FILE_WRITE_BYTES) await this.#flush(file);
  }

  /** Writes what was collected for the file. */
  async #flush(file: FileHandle): Promise<void> {
    const chunks = this.#collected;
    const bytes = this.#collectedBytes;
    this.#collected = [];
    this.#collectedBytes = 0;
    await writeAll(file, chunks, this.#position + this.#written);
    this.#written += bytes;
  }

  async #openFile(): Promise<void> {
    const at = await this.#channel.requestFile(this.#id);
    if (!at) return;
    const file = await fs.open(at.path, constants.O_WRONLY | constants.O_NOFOLLOW);
    if (this.#done) {
      await file.close();
      throw new QueueStoreError('the message was aborted', this.queueId);
    }
    this.#file = file;
    this.#position = at.position;
  }

  commit(record: NewMessageRecord): Promise<void> {
    if (this.#done)
      return Promise.reject(new Error(`${this.queueId}: commit after commit or abort`));
    const content = this.content;
    if (!content.writableEnded) content.end();
    // Every DATA frame is queued, every write to the file done, before COMMIT. A write
    // calls back once its frames are queued, so with none in flight (the usual case: the
    // channel took them at once) there is nothing to wait for; the stream's 'finish'
    // follows on the next tick. Then COMMIT goes at once, with the channel's promise.
    if (
      this.#file === undefined &&
      content.errored === null &&
      (content.writableFinished || (content.writableLength === 0 && !content.destroyed))
    ) {
      this.#done = true;
      return this.#channel.commit(this.#id, record);
    }
    return this.#commitAfterWrites(record);
  }

  /** commit() once the writes in flight and the store's file are done. */
  async #commitAfterWrites(record: NewMessageRecord): Promise<void> {
    const content = this.content;
    if (
      !content.writableFinished &&
      (content.writableLength > 0 || content.destroyed || content.errored !== null)
    )
      await finished(content);
    const file = this.#file;
    if (file) {
      try {
        await this.#flush(file);
        this.#file = undefined;
        await file.close();
      } catch (err) {
        // The primary drops the message; the client gets the store's 4xx, never a 250.
        await this.abort();
        throw new QueueStoreError(
          `cannot write the queue file: ${errorMessage(err)}; check free space and permissions of the queue directory`,
          this.queueId,
          { cause: err },
        );
      }
      this.#channel.send(Frame.written, this.#id, String(this.#written));
    }
    this.#done = true;
    await this.#channel.commit(this.#id, record);
  }

  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    if (!this.content.destroyed) this.content.destroy();
    this.#channel.send(Frame.abort, this.#id);
    const file = this.#file;
    this.#file = undefined;
    this.#collected = [];
    // A write under way completes first (FileHandle.close waits for it).
    await file?.close().catch(() => undefined);
  }
}
