/**
 * ByteReader: pull-based reading of a byte stream — single bytes, exact lengths, or an
 * exact length piped into a Writable with backpressure — for protocols framed by byte
 * counts (QMQP netstrings, maildrop files).
 *
 * It pulls from the stream's async iterator only when asked, so a slow consumer slows
 * the peer instead of buffering: memory stays at one chunk plus what was asked for.
 *
 * @module
 */

import type { Readable, Writable } from 'node:stream';
import { PosternError } from '../errors.js';

const EMPTY = Buffer.alloc(0);

/** The stream ended before the expected bytes. */
export class UnexpectedEndError extends PosternError {
  constructor(what: string) {
    super('POSTERN_ERR_UNEXPECTED_END', `unexpected end of input while reading ${what}`);
  }
}

export class ByteReader {
  readonly #iterator: AsyncIterator<Buffer | string>;
  #buffer: Buffer = EMPTY;
  #ended = false;

  constructor(stream: Readable | AsyncIterable<Buffer | string>) {
    // A Readable's default iterator destroys the stream at the end of input, which would
    // also kill the write side of a socket before the peer gets its reply.
    const readable = stream as Readable;
    this.#iterator =
      typeof readable.iterator === 'function'
        ? readable.iterator({ destroyOnReturn: false })[Symbol.asyncIterator]()
        : (stream as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  }

  /** Bytes read from the stream but not yet consumed. */
  get buffered(): number {
    return this.#buffer.length;
  }

  async #fill(): Promise<boolean> {
    if (this.#ended) return false;
    const { value, done } = await this.#iterator.next();
    if (done) {
      this.#ended = true;
      return false;
    }
    const chunk = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    return true;
  }

  /** The next byte without consuming it; undefined at the end of the stream. */
  async peek(): Promise<number | undefined> {
    while (this.#buffer.length === 0) if (!(await this.#fill())) return undefined;
    return this.#buffer[0];
  }

  /** The next byte; undefined at the end of the stream. */
  async readByte(): Promise<number | undefined> {
    const b = await this.peek();
    if (b !== undefined) this.#buffer = this.#buffer.subarray(1);
    return b;
  }

  /** Exactly `n` bytes (keep `n` small: the result is held in memory). */
  async readExact(n: number, what: string): Promise<Buffer> {
    while (this.#buffer.length < n) if (!(await this.#fill())) throw new UnexpectedEndError(what);
    const out = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return Buffer.from(out);
  }

  /** Writes exactly `n` bytes to `sink`, waiting for `drain` whenever it asks to. */
  async pipeExact(n: number, sink: Writable, what: string): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.#buffer.length === 0 && !(await this.#fill())) throw new UnexpectedEndError(what);
      const take = Math.min(left, this.#buffer.length);
      const piece = this.#buffer.subarray(0, take);
      this.#buffer = this.#buffer.subarray(take);
      left -= take;
      if (!sink.write(piece)) await new Promise<void>((resolve) => sink.once('drain', resolve));
    }
  }

  /** Reads and drops `n` bytes. */
  async skip(n: number, what: string): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.#buffer.length === 0 && !(await this.#fill())) throw new UnexpectedEndError(what);
      const take = Math.min(left, this.#buffer.length);
      this.#buffer = this.#buffer.subarray(take);
      left -= take;
    }
  }
}
