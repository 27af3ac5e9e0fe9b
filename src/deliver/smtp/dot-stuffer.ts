/**
 * DotStuffer: the message as it goes after DATA — dot-stuffed, long lines folded, a
 * final CRLF made sure of, and the `.` terminator appended.
 *
 * Postfix counterpart: smtp_proto.c (smtp_text_out, smtp_fputs with
 * `smtp_line_length_limit`): a line that starts with `.` gets a second `.`; a line
 * longer than the limit is broken by inserting CRLF SPACE, which keeps headers valid
 * (the continuation is a folded header line) and bodies readable.
 *
 * Streams chunk by chunk; never holds more than one input chunk. A bare LF in the
 * stored content (there should be none) goes out as CRLF, so the output can never carry
 * an `<LF>.<LF>` that some server would take as the end of data (SMTP smuggling).
 *
 * STANDARDS: RFC 5321 section 4.5.2 (transparency), section 4.5.3.1.6 (998 octets).
 *
 * @module
 */

import { Transform, type TransformCallback } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const FOLD = Buffer.from('\r\n ');
const DOT_BUF = Buffer.from('.');
const TERMINATOR = Buffer.from('.\r\n');

export class DotStuffer extends Transform {
  readonly #limit: number;
  /** Bytes of the current output line so far (not counting CRLF). */
  #col = 0;
  /** The previous input byte was CR (a CRLF may span chunks). */
  #lastCr = false;

  /** @param lineLengthLimit - longest line sent; 0 = never fold. @default 998 */
  constructor(lineLengthLimit = 998) {
    super();
    this.#limit = lineLengthLimit > 0 ? lineLengthLimit : Number.POSITIVE_INFINITY;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const out: Buffer[] = [];
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(LF, start);
      const end = nl < 0 ? chunk.length : nl;
      this.#segment(chunk, start, end, out);
      if (nl < 0) break;
      // End of line: CR already emitted as part of the segment when present.
      const hadCr = end > start ? chunk[end - 1] === CR : this.#lastCr;
      out.push(hadCr ? Buffer.from([LF]) : CRLF);
      this.#col = 0;
      this.#lastCr = false;
      start = nl + 1;
    }
    done(null, out.length === 1 ? out[0] : Buffer.concat(out));
  }

  /** Emits bytes [start, end) of one line (no LF inside). */
  #segment(chunk: Buffer, start: number, end: number, out: Buffer[]): void {
    if (start === end) return;
    if (this.#col === 0 && chunk[start] === DOT) {
      out.push(DOT_BUF);
      this.#col = 1;
    }
    let len = end - start;
    // A trailing CR is the line end's, not content: it does not count toward the limit.
    const trailingCr = chunk[end - 1] === CR ? 1 : 0;
    if (this.#col + len - trailingCr <= this.#limit) {
      out.push(chunk.subarray(start, end));
      this.#col += len;
      this.#lastCr = trailingCr === 1;
      return;
    }
    let pos = start;
    while (pos < end) {
      const room = this.#limit - this.#col;
      const rest = end - pos;
      if (rest - trailingCr <= room) {
        out.push(chunk.subarray(pos, end));
        this.#col += rest;
        break;
      }
      if (room > 0) {
        out.push(chunk.subarray(pos, pos + room));
        pos += room;
      }
      out.push(FOLD);
      this.#col = 1;
    }
    len = 0;
    this.#lastCr = trailingCr === 1;
  }

  override _flush(done: TransformCallback): void {
    // Content that does not end in CRLF gets one before the terminator (RFC 5321 4.1.1.4).
    if (this.#col > 0 || this.#lastCr) {
      done(null, Buffer.concat([this.#lastCr ? Buffer.from([LF]) : CRLF, TERMINATOR]));
    } else {
      done(null, TERMINATOR);
    }
  }
}
