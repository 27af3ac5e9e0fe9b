/**
 * LineReader: bounded reading of SMTP command lines from a byte stream.
 *
 * Postfix counterpart: smtp_stream.c smtp_get() with SMTP_GET_FLAG_SKIP, as smtpd(8)
 * uses it for commands: a line ends at LF, a CR just before the LF is part of the line
 * terminator, and a line longer than `line_length_limit` is not kept — its excess is
 * read and thrown away up to the next LF, so memory stays bounded whatever the client
 * sends.
 *
 * The reader is a plain buffer: the session pushes socket chunks in and pulls whole
 * lines out. Bytes after the last complete line stay buffered and can be taken back
 * chunk by chunk (`takeChunk()`) when the session switches to DATA, so pipelined content that
 * arrived with the DATA command is not lost.
 *
 * Does not: interpret commands, decide the bare-LF policy (it reports `bareLf`), or
 * read DATA content (smtpd-data-reader.ts).
 *
 * SECURITY: hostile input. At most `limit` bytes of an unterminated line are held;
 * NUL bytes and invalid UTF-8 are reported so that the session can refuse the command
 * before any of it reaches a parser or a log.
 *
 * STANDARDS: RFC 5321 section 2.3.8 (lines end in CRLF), 4.5.3.1.4 (command line
 * length); RFC 6531 section 3.3 (UTF-8 in commands).
 *
 * @module
 */

import { isUtf8 } from 'node:buffer';

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);

/** One command line as read from the client. */
export interface CommandLine {
  /**
   * The line without its terminator, decoded as UTF-8. For an over-long line, only its
   * first `limit` bytes (enough to log what it was).
   */
  readonly text: string;
  /** The line was longer than the limit; its excess was discarded. */
  readonly tooLong: boolean;
  /** The line ended in a bare LF rather than CRLF. */
  readonly bareLf: boolean;
  /** The line contains a NUL byte. */
  readonly hasNul: boolean;
  /** The line is not valid UTF-8. */
  readonly badUtf8: boolean;
}

/** Splits a byte stream into bounded command lines. */
export class LineReader {
  readonly #limit: number;
  /** The chunk being read, from #pos. */
  #buf: Buffer = EMPTY;
  #pos = 0;
  /** Chunks received after #buf, not yet looked at. */
  readonly #queue: Buffer[] = [];
  #queued = 0;
  /** The head of an over-long line whose excess is being skipped, or undefined. */
  #overflow: Buffer | undefined;
  /** The last byte skipped was a CR (a CRLF may straddle two chunks). */
  #skippedCr = false;

  /** @param limit - the longest line kept, in bytes, not counting CRLF (Postfix `line_length_limit`). */
  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`line limit must be a positive integer, got ${limit}`);
    this.#limit = limit;
  }

  /** Appends bytes received from the client. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.#pos >= this.#buf.length && this.#queue.length === 0) {
      this.#buf = chunk;
      this.#pos = 0;
    } else {
      this.#queue.push(chunk);
      this.#queued += chunk.length;
    }
  }

  /** Puts bytes back in front of everything buffered (what followed the end of DATA). */
  unshift(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.#pos < this.#buf.length) {
      const rest = this.#buf.subarray(this.#pos);
      this.#queue.unshift(rest);
      this.#queued += rest.length;
    }
    this.#buf = chunk;
    this.#pos = 0;
  }

  /** Bytes buffered and not yet returned. */
  get buffered(): number {
    return this.#buf.length - this.#pos + this.#queued;
  }

  /** A copy of up to `n` buffered bytes, without consuming them (for logs). */
  peek(n: number): Buffer {
    const parts: Buffer[] = [this.#buf.subarray(this.#pos, this.#pos + n)];
    let have = parts[0]!.length;
    for (const q of this.#queue) {
      if (have >= n) break;
      parts.push(q.subarray(0, n - have));
      have += parts[parts.length - 1]!.length;
    }
    return Buffer.concat(parts);
  }

  /** Whether the excess of an over-long line is being skipped. */
  get skipping(): boolean {
    return this.#overflow !== undefined;
  }

  /**
   * Removes and returns the next buffered chunk as received (for DATA, which must not
   * be copied into one buffer), or undefined if nothing is buffered.
   */
  takeChunk(): Buffer | undefined {
    this.#overflow = undefined;
    if (this.#pos < this.#buf.length) {
      const rest = this.#pos === 0 ? this.#buf : this.#buf.subarray(this.#pos);
      this.#buf = EMPTY;
      this.#pos = 0;
      return rest;
    }
    const next = this.#queue.shift();
    if (next) this.#queued -= next.length;
    return next;
  }

  /** The next complete line, or undefined until more input is pushed. */
  next(): CommandLine | undefined {
    for (;;) {
      if (this.#pos >= this.#buf.length) {
        const next = this.#queue.shift();
        if (!next) {
          this.#buf = EMPTY;
          this.#pos = 0;
          return undefined;
        }
        this.#queued -= next.length;
        this.#buf = next;
        this.#pos = 0;
      }
      const buf = this.#buf;
      const start = this.#pos;
      const lf = buf.indexOf(LF, start);
      if (this.#overflow !== undefined) {
        if (lf < 0) {
          // Still inside the over-long line: drop what came.
          this.#skippedCr = buf[buf.length - 1] === CR;
          this.#pos = buf.length;
          continue;
        }
        const head = this.#overflow;
        this.#overflow = undefined;
        this.#pos = lf + 1;
        const bareLf = !(lf > start ? buf[lf - 1] === CR : this.#skippedCr);
        return makeLine(head, 0, head.length, true, bareLf);
      }
      if (lf < 0) {
        // A trailing CR may be the first half of the CRLF that ends a line of exactly
        // `limit` bytes: wait for the next byte before calling the line too long.
        const pendingCr = buf[buf.length - 1] === CR ? 1 : 0;
        if (buf.length - start > this.#limit + pendingCr) {
          // Keep a copy of the head for the log; skip the rest up to the next LF.
          this.#overflow = Buffer.from(buf.subarray(start, start + this.#limit));
          this.#skippedCr = buf[buf.length - 1] === CR;
          this.#pos = buf.length;
          continue;
        }
        const next = this.#queue.shift();
        if (!next) return undefined;
        // A line split across chunks: join the (at most `limit`-byte) head with the next chunk.
        this.#queued -= next.length;
        this.#buf = Buffer.concat([buf.subarray(start), next]);
        this.#pos = 0;
        continue;
      }
      let end = lf;
      let bareLf = true;
      if (end > start && buf[end - 1] === CR) {
        end--;
        bareLf = false;
      }
      this.#pos = lf + 1;
      if (end - start > this.#limit) return makeLine(buf, start, start + this.#limit, true, bareLf);
      return makeLine(buf, start, end, false, bareLf);
    }
  }
}

function makeLine(
  buf: Buffer,
  start: number,
  end: number,
  tooLong: boolean,
  bareLf: boolean,
): CommandLine {
  // One pass over the bytes: a command line is short and nearly always ASCII, which
  // decodes as Latin-1 into a one-byte string with no copy of the line in between.
  let hasNul = false;
  let ascii = true;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    if (b === 0) hasNul = true;
    else if (b > 0x7f) ascii = false;
  }
  if (ascii)
    return { text: buf.toString('latin1', start, end), tooLong, bareLf, hasNul, badUtf8: false };
  const bytes = buf.subarray(start, end);
  return { text: bytes.toString('utf8'), tooLong, bareLf, hasNul, badUtf8: !isUtf8(bytes) };
}
