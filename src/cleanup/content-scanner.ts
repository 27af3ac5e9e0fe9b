/**
 * ContentScanner: the byte-level pass over message content on its way into the queue —
 * counts the bytes received, notices 8-bit data and normalises line ends.
 *
 * Postfix counterpart: the record layer between smtpd/qmqpd/pickup and cleanup(8)
 * (a message arrives as line records, so every line end becomes one record boundary)
 * and `cleanup_replace_stray_cr_lf`, which blanks a CR or LF that is not part of a
 * line end before any check or signature sees the content.
 *
 * The one rule, applied to headers and body alike:
 * - every LF ends a line; a CR immediately before it belongs to that line end; the
 *   stored line end is always CRLF. So content from smtpd (CRLF) passes unchanged, and
 *   content with bare-LF lines (QMQP, pickup, a host application) is stored as CRLF;
 * - a CR that is not followed by LF is a stray CR: with `replaceStrayCr` it becomes a
 *   space (Postfix's `cleanup_replace_stray_cr_lf = yes`), otherwise it is kept;
 * - at the end of the content a last line without a line end gets CRLF.
 * A "stray LF" in Postfix's sense (an LF inside a record) cannot occur under this
 * rule, because an LF always ends a line — exactly how Postfix's own receivers split
 * input into records.
 *
 * Clean CRLF chunks (the common case) are passed through without copying.
 *
 * Does not: parse headers (header-parser.ts), enforce the size limit (the caller reads
 * `inputBytes`), or interpret MIME.
 *
 * SECURITY: every byte is untrusted; the scanner never grows a buffer beyond twice the
 * chunk it was given and keeps one byte of state between chunks.
 *
 * STANDARDS: RFC 5322 section 2.3 (CR and LF only together as CRLF), RFC 6152 (8-bit
 * data).
 *
 * @module
 */

import { isAscii } from 'node:buffer';

const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;
const CRLF = Buffer.from('\r\n');
const EMPTY = Buffer.alloc(0);

/** Options for ContentScanner. */
export interface ContentScannerOptions {
  /** Replace a CR not followed by LF with a space (Postfix `cleanup_replace_stray_cr_lf`). */
  readonly replaceStrayCr: boolean;
}

export class ContentScanner {
  readonly #replaceStrayCr: boolean;
  /** The previous chunk ended in CR: whether it is a line end depends on the next byte. */
  #pendingCr = false;
  /** The last byte produced was LF (or nothing was produced yet). */
  #atLineStart = true;
  #producedAny = false;
  #inputBytes = 0;
  #eightBit = false;
  #strayCr = 0;

  constructor(options: ContentScannerOptions) {
    this.#replaceStrayCr = options.replaceStrayCr;
  }

  /** Bytes given to `push()` so far, as received. */
  get inputBytes(): number {
    return this.#inputBytes;
  }

  /** Whether any byte above 0x7F was seen. */
  get eightBit(): boolean {
    return this.#eightBit;
  }

  /** Number of stray CRs seen (replaced or kept). */
  get strayCrCount(): number {
    return this.#strayCr;
  }

  /**
   * Normalises one chunk. The result may be the chunk itself, a slice of it, or a new
   * buffer; it may be empty (a lone trailing CR is held until the next chunk).
   */
  push(chunk: Buffer): Buffer {
    this.#inputBytes += chunk.length;
    if (chunk.length === 0) return chunk;
    if (!this.#eightBit && !isAscii(chunk)) this.#eightBit = true;

    let out: Buffer;
    if (!this.#pendingCr && isCleanCrlf(chunk)) {
      // Fast path: hold back a trailing CR (its LF may start the next chunk).
      if (chunk[chunk.length - 1] === CR) {
        this.#pendingCr = true;
        out = chunk.subarray(0, chunk.length - 1);
      } else {
        out = chunk;
      }
    } else {
      out = this.#slow(chunk);
    }
    this.#note(out);
    return out;
  }

  /** Ends the input: settles a pending CR and terminates an unfinished last line. */
  end(): Buffer {
    const parts: Buffer[] = [];
    if (this.#pendingCr) {
      this.#pendingCr = false;
      this.#strayCr++;
      parts.push(Buffer.from([this.#replaceStrayCr ? SPACE : CR]));
      this.#atLineStart = false;
      this.#producedAny = true;
    }
    if (this.#producedAny && !this.#atLineStart) {
      parts.push(CRLF);
      this.#atLineStart = true;
    }
    if (parts.length === 0) return EMPTY;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  #note(out: Buffer): void {
    if (out.length === 0) return;
    this.#producedAny = true;
    this.#atLineStart = out[out.length - 1] === LF;
  }

  /** Byte loop for chunks with bare LFs, stray CRs, or a CR carried from the last chunk. */
  #slow(chunk: Buffer): Buffer {
    // Worst case every byte is a bare LF that becomes CRLF, plus a carried CR.
    const out = Buffer.allocUnsafe(chunk.length * 2 + 2);
    let o = 0;
    let pending = this.#pendingCr;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (pending) {
        pending = false;
        if (b === LF) {
          out[o++] = CR;
          out[o++] = LF;
          continue;
        }
        this.#strayCr++;
        out[o++] = this.#replaceStrayCr ? SPACE : CR;
      }
      if (b === CR) {
        pending = true;
      } else if (b === LF) {
        out[o++] = CR;
        out[o++] = LF;
      } else {
        out[o++] = b;
      }
    }
    this.#pendingCr = pending;
    return out.subarray(0, o);
  }
}

/**
 * True when every LF in `chunk` is preceded by CR and every CR is followed by LF (a CR
 * as the very last byte is allowed: the caller holds it back).
 */
function isCleanCrlf(chunk: Buffer): boolean {
  let i = chunk.indexOf(LF);
  while (i !== -1) {
    if (i === 0 || chunk[i - 1] !== CR) return false;
    i = chunk.indexOf(LF, i + 1);
  }
  const last = chunk.length - 1;
  let j = chunk.indexOf(CR);
  while (j !== -1) {
    if (j !== last && chunk[j + 1] !== LF) return false;
    j = chunk.indexOf(CR, j + 1);
  }
  return true;
}
