/**
 * DotStuffer: the message as it goes after DATA — dot-stuffed, long lines folded, a
 * final CRLF made sure of, and the `.` terminator appended.
 *
 * Postfix counterpart: smtp_proto.c (smtp_text_out, smtp_fputs with
 * `smtp_line_length_limit`): a line that starts with `.` gets a second `.`; a line
 * longer than the limit is broken by inserting CRLF SPACE, which keeps headers valid
 * (the continuation is a folded header line) and bodies readable.
 *
 * Streams chunk by chunk; never holds more than one input chunk (and a CR that ends
 * one, until the next shows whether it ends a line). Input that needs no change — the
 * common case — goes out as the same buffer, not copied; only the bytes a change is
 * made at are split around. A bare LF in the stored content (there should be none)
 * goes out as CRLF, so the output can never carry an `<LF>.<LF>` that some server
 * would take as the end of data (SMTP smuggling). A bare CR is content.
 *
 * STANDARDS: RFC 5321 section 4.5.2 (transparency), section 4.5.3.1.6 (998 octets).
 *
 * @module
 */

import { Transform, type TransformCallback } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CR_BUF = Buffer.from('\r');
const CRLF = Buffer.from('\r\n');
const FOLD = Buffer.from('\r\n ');
const DOT_BUF = Buffer.from('.');
const TERMINATOR = Buffer.from('.\r\n');

export class DotStuffer extends Transform {
  readonly #limit: number;
  /** Bytes of the current output line so far (not counting CRLF). */
  #col = 0;
  /** The last chunk ended in a CR, not sent yet: a line end if the next byte is LF. */
  #heldCr = false;

  /** @param lineLengthLimit - longest line sent; 0 = never fold. @default 998 */
  constructor(lineLengthLimit = 998) {
    super();
    // A folded line starts with a space: below 2 there is no room for content after it.
    this.#limit = lineLengthLimit > 0 ? Math.max(2, lineLengthLimit) : Number.POSITIVE_INFINITY;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const n = chunk.length;
    if (n === 0) {
      done();
      return;
    }
    const out: Buffer[] = [];
    let i = 0;
    if (this.#heldCr) {
      this.#heldCr = false;
      if (chunk[0] === LF) {
        out.push(CRLF);
        this.#col = 0;
        i = 1;
      } else {
        // A bare CR: one byte of content.
        if (this.#col >= this.#limit) {
          out.push(FOLD);
          this.#col = 1;
        }
        out.push(CR_BUF);
        this.#col++;
      }
    }
    // chunk[from, i) is unchanged output not pushed yet.
    let from = i;
    while (i < n) {
      if (this.#col === 0 && chunk[i] === DOT) {
        if (i > from) out.push(chunk.subarray(from, i));
        out.push(DOT_BUF);
        from = i;
        this.#col = 1;
      }
      const nl = chunk.indexOf(LF, i);
      let end: number; // end of this line's content in the chunk
      if (nl >= 0) end = nl > i && chunk[nl - 1] === CR ? nl - 1 : nl;
      else if (chunk[n - 1] === CR) {
        end = n - 1;
        this.#heldCr = true;
      } else end = n;
      // Fold where the line passes the limit.
      while (this.#col + (end - i) > this.#limit) {
        const cut = i + (this.#limit - this.#col);
        out.push(chunk.subarray(from, cut), FOLD);
        from = i = cut;
        this.#col = 1;
      }
      this.#col += end - i;
      if (nl < 0) {
        i = n;
        break;
      }
      if (end === nl) {
        // A bare LF goes out as CRLF.
        if (nl > from) out.push(chunk.subarray(from, nl));
        out.push(CRLF);
        from = nl + 1;
      }
      this.#col = 0;
      i = nl + 1;
    }
    const stop = this.#heldCr ? n - 1 : n;
    if (stop > from) out.push(from === 0 && stop === n ? chunk : chunk.subarray(from, stop));
    if (out.length === 0) done();
    else done(null, out.length === 1 ? out[0] : Buffer.concat(out));
  }

  override _flush(done: TransformCallback): void {
    // Content that does not end in CRLF gets one before the terminator (RFC 5321 4.1.1.4);
    // a CR held back from the last chunk ends the last line.
    if (this.#col > 0 || this.#heldCr) done(null, Buffer.concat([CRLF, TERMINATOR]));
    else done(null, TERMINATOR);
  }
}
