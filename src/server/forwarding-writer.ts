/**
 * ForwardingWriter: the MessageWriter of an smtpd worker process. Its content stream
 * becomes DATA frames to the primary, which writes them to its own store; `commit()`
 * resolves only when the primary's store has made the message durable, so the 250 still
 * never precedes durability; `abort()` tells the primary to drop the message.
 *
 * Postfix counterpart: smtpd(8) writing queue file records to cleanup(8) through
 * mail_stream.c.
 *
 * Does not: re-read what it wrote (no `openWritten()`): DKIM and content filters that
 * need it run only in a single-process server.
 *
 * @module
 */

import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { MessageWriter, NewMessageRecord } from '../queue/types.js';
import type { QueueId } from '../types.js';
import type { WorkerChannel } from './worker-channel.js';
import { Frame, MAX_DATA } from './worker-frames.js';

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

  constructor(channel: WorkerChannel, queueId: QueueId) {
    this.queueId = queueId;
    this.#channel = channel;
    this.#id = channel.open(queueId);
    this.content = new Writable({
      highWaterMark: MAX_DATA,
      write: (chunk: Buffer, _enc, cb) => this.#write(chunk, cb),
    });
  }

  #write(chunk: Buffer, cb: (err?: Error | null) => void): void {
    const closed = this.#channel.closed;
    if (closed) {
      cb(closed);
      return;
    }
    // A chunk that fits one frame goes as it is, without a view of it.
    let ok = true;
    for (let at = 0; at < chunk.length; at += MAX_DATA) {
      const piece = chunk.length <= MAX_DATA ? chunk : chunk.subarray(at, at + MAX_DATA);
      ok = this.#channel.send(Frame.data, this.#id, piece);
    }
    if (ok) cb();
    else this.#channel.once('drain', () => cb(this.#channel.closed ?? null));
  }

  async commit(record: NewMessageRecord): Promise<void> {
    if (this.#done) throw new Error(`${this.queueId}: commit after commit or abort`);
    if (!this.content.writableEnded) this.content.end();
    // Every DATA frame is queued before COMMIT: wait for the stream to hand them over.
    if (!this.content.writableFinished) await finished(this.content);
    this.#done = true;
    await this.#channel.commit(this.#id, record);
  }

  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    if (!this.content.destroyed) this.content.destroy();
    this.#channel.send(Frame.abort, this.#id);
  }
}
