/**
 * DataReader: the SMTP DATA stream — end-of-data detection, dot-unstuffing and the
 * bare-LF policy, one chunk at a time.
 *
 * Postfix counterpart: smtpd.c receive_data() together with smtp_get()'s bare-LF
 * bookkeeping (Postfix 3.9 `smtpd_forbid_bare_newline`). The content is never held
 * whole: each chunk is scanned line end by line end, and what goes out is slices of
 * the input chunk, interrupted only where a byte must be removed (a stuffed dot, a
 * dropped dot line) or added (the CR of a bare LF).
 *
 * Policies (`smtpd_forbid_bare_newline`):
 * - `normalize` (default), `note`, `reject`: only `<CR><LF>.<CR><LF>` ends DATA. A bare
 *   LF ends a line and is stored as CRLF. A `.` line that ends in a bare LF, or that
 *   follows a line that ended in a bare LF, is neither end-of-data nor content: it is
 *   dropped (this is what defeats SMTP smuggling). `reject` differs only in that the
 *   session rejects the message afterwards when `sawBareLf` is set.
 * - `no`: legacy and vulnerable — any `.` line ends DATA, whatever its line ends.
 *
 * Output: the message with CRLF line ends, dot-unstuffed, as the Submission port wants
 * it. A lone CR inside a line is content and passes through (Cleanup deals with stray
 * CRs); `<CR><LF>.<CR><CR><LF>` is not an end (Postfix 3.9 no longer strips the extra CR).
 *
 * Does not: count or limit the size (the session does, over what is emitted), split
 * long lines into records (there are no records here; memory is bounded because nothing
 * is buffered beyond a two-byte state).
 *
 * SECURITY: CVE-2023-51764 (SMTP smuggling): the end-of-data decision depends only on
 * bytes seen, never on how they were split into chunks (a property test checks this).
 *
 * STANDARDS: RFC 5321 section 4.1.1.4 (DATA, end of mail data), 4.5.2 (transparency),
 * 2.3.8 (lines end in CRLF).
 *
 * @module
 */

import type { BareNewlinePolicy } from './smtpd-parameters.js';

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const CR_ONLY = Buffer.from('\r');

/** The next byte starts a line. */
const LINE_START = 0;
/** Inside a line. */
const MID = 1;
/** A `.` began the line (consumed, never emitted). */
const DOT_SEEN = 2;
/** `.` then CR began the line (both consumed, not yet emitted). */
const DOT_CR = 3;
type State = typeof LINE_START | typeof MID | typeof DOT_SEEN | typeof DOT_CR;

/** Streams one DATA phase. Make a new one for each message. */
export class DataReader {
  readonly #legacy: boolean;
  #state: State = LINE_START;
  /** In MID: the last byte of the previous chunk was a CR. */
  #lastCr = false;
  /** The previous line ended in a bare LF. */
  #prevBareLf = false;
  #sawBareLf = false;
  #droppedDotLines = 0;
  #done = false;

  constructor(policy: BareNewlinePolicy = 'normalize') {
    this.#legacy = policy === 'no';
  }

  /** A bare LF was seen somewhere in the content (for `reject` and `note`). */
  get sawBareLf(): boolean {
    return this.#sawBareLf;
  }

  /** How many `.` lines were dropped as neither content nor end-of-data. */
  get droppedDotLines(): number {
    return this.#droppedDotLines;
  }

  /** End-of-data has been seen. */
  get done(): boolean {
    return this.#done;
  }

  /**
   * Scans `chunk` from `start`, appending content pieces to `out` (slices of `chunk`,
   * or small constants). Returns the index just past the end-of-data line when it is in
   * this chunk (the bytes after it are the next commands), or -1 when the whole chunk
   * was consumed and more data is needed.
   */
  feed(chunk: Buffer, start: number, out: Buffer[]): number {
    if (this.#done) throw new Error('DataReader.feed() after end of data');
    const n = chunk.length;
    let i = start;
    // Bytes [from, i) are content not yet appended to `out`.
    let from = i;
    while (i < n) {
      switch (this.#state) {
        case LINE_START: {
          if (chunk[i] === DOT) {
            emit(out, chunk, from, i);
            i++;
            from = i;
            this.#state = DOT_SEEN;
          } else {
            this.#state = MID;
            this.#lastCr = false;
          }
          break;
        }
        case MID: {
          const lf = chunk.indexOf(LF, i);
          if (lf < 0) {
            this.#lastCr = chunk[n - 1] === CR;
            i = n;
            break;
          }
          // The byte before this LF is in this chunk, or was the last of the previous
          // chunk (only possible when the line continued across the boundary).
          const crlf = lf > i ? chunk[lf - 1] === CR : i === start ? this.#lastCr : false;
          if (crlf) {
            this.#prevBareLf = false;
          } else {
            this.#sawBareLf = true;
            this.#prevBareLf = true;
            emit(out, chunk, from, lf);
            out.push(CRLF);
            from = lf + 1;
          }
          i = lf + 1;
          this.#state = LINE_START;
          break;
        }
        case DOT_SEEN: {
          const c = chunk[i];
          if (c === LF) {
            // `.` LF: never an end under the safe policies; dropped.
            this.#sawBareLf = true;
            if (this.#legacy) return this.#finish(out, chunk, from, i, i + 1);
            this.#droppedDotLines++;
            this.#prevBareLf = true;
            i++;
            from = i;
            this.#state = LINE_START;
          } else if (c === CR) {
            i++;
            from = i;
            this.#state = DOT_CR;
          } else {
            // A stuffed dot: the line goes on without it.
            this.#state = MID;
            this.#lastCr = false;
          }
          break;
        }
        case DOT_CR: {
          if (chunk[i] === LF) {
            if (this.#prevBareLf && !this.#legacy) {
              // `.` CRLF after a line that ended in a bare LF: dropped.
              this.#droppedDotLines++;
              this.#prevBareLf = false;
              i++;
              from = i;
              this.#state = LINE_START;
            } else {
              return this.#finish(out, chunk, from, i, i + 1);
            }
          } else {
            // `.` CR then something else: a stuffed line that starts with a CR.
            // `from` is i: the CR is emitted here and byte i belongs to the line. Byte i
            // is not an LF (the branch above), so the CR cannot be part of a CRLF.
            out.push(CR_ONLY);
            this.#state = MID;
            this.#lastCr = false;
          }
          break;
        }
      }
    }
    emit(out, chunk, from, n);
    return -1;
  }

  #finish(out: Buffer[], chunk: Buffer, from: number, at: number, next: number): number {
    emit(out, chunk, from, at);
    this.#done = true;
    return next;
  }
}

function emit(out: Buffer[], chunk: Buffer, from: number, to: number): void {
  if (to > from) out.push(chunk.subarray(from, to));
}
