/**
 * ReplyParser: turns the bytes a remote SMTP/LMTP server sends into SmtpReply values.
 *
 * Postfix counterpart: smtp_chat.c (smtp_chat_resp): multi-line replies are joined, the
 * enhanced status is taken from the first line, and every read is bounded.
 *
 * A remote reply is data, never trusted: lines longer than `maxLineLength` are
 * truncated, a reply of more than `maxLines` lines or a line that is not
 * `DDD[ -]text` is a protocol error, and a server whose code and enhanced status
 * disagree (`250 5.0.0`) is normalised by SmtpReply rather than refused. Bare LF line
 * ends are tolerated, as Postfix does on input.
 *
 * STANDARDS: RFC 5321 section 4.2 (reply syntax), RFC 2034 (enhanced status codes).
 *
 * @module
 */

import { PosternError, type PosternErrorOptions } from '../../errors.js';
import { defaultEnhanced, SmtpReply } from '../../smtp-reply.js';

/** Limits on what one reply may be. */
export interface ReplyParserLimits {
  /** Longest line kept; the rest is dropped. @default 2048 */
  readonly maxLineLength?: number;
  /** Most lines in one reply. @default 1000 */
  readonly maxLines?: number;
}

/** Raised for a reply that is not SMTP. */
export class ReplySyntaxError extends PosternError {
  constructor(message: string, options?: PosternErrorOptions) {
    super('POSTERN_ERR_REPLY_SYNTAX', message, options);
  }
}

const ENHANCED = /^([245]\.\d{1,3}\.\d{1,3})(?: +|$)/;

/** Incremental parser: `push()` bytes, get back every reply completed by them. */
export class ReplyParser {
  readonly #maxLine: number;
  readonly #maxLines: number;
  #partial = '';
  #overlong = false;
  #lines: string[] = [];
  #code = 0;

  constructor(limits: ReplyParserLimits = {}) {
    this.#maxLine = limits.maxLineLength ?? 2048;
    this.#maxLines = limits.maxLines ?? 1000;
  }

  /** Whether bytes of an unfinished reply are buffered. */
  get pending(): boolean {
    return this.#partial !== '' || this.#lines.length > 0;
  }

  /** Feeds bytes; returns the replies they complete, in order. Throws ReplySyntaxError. */
  push(chunk: Buffer | string): SmtpReply[] {
    const text = typeof chunk === 'string' ? chunk : chunk.toString('latin1');
    const out: SmtpReply[] = [];
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) {
        this.#append(text.slice(start));
        break;
      }
      this.#append(text.slice(start, nl));
      start = nl + 1;
      let line = this.#partial;
      this.#partial = '';
      this.#overlong = false;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      const reply = this.#line(line);
      if (reply) out.push(reply);
    }
    return out;
  }

  #append(piece: string): void {
    if (this.#overlong) return;
    const room = this.#maxLine - this.#partial.length;
    if (piece.length > room) {
      this.#partial += piece.slice(0, Math.max(0, room));
      this.#overlong = true;
    } else {
      this.#partial += piece;
    }
  }

  #line(line: string): SmtpReply | undefined {
    const m = /^([2-5]\d\d)([ -]|$)(.*)$/s.exec(line);
    if (!m) {
      throw new ReplySyntaxError(`malformed reply line "${printableShort(line)}"`);
    }
    const code = Number(m[1]);
    if (this.#lines.length > 0 && code !== this.#code) {
      throw new ReplySyntaxError(`reply code changed from ${this.#code} to ${code} mid-reply`);
    }
    this.#code = code;
    this.#lines.push(m[3] ?? '');
    if (this.#lines.length > this.#maxLines) {
      throw new ReplySyntaxError(`reply longer than ${this.#maxLines} lines`);
    }
    if (m[2] === '-') return undefined;
    const lines = this.#lines;
    this.#lines = [];
    return buildReply(code, lines);
  }
}

/** A reply from its code and raw text lines (enhanced status read from the first line). */
export function buildReply(code: number, rawLines: readonly string[]): SmtpReply {
  const first = rawLines[0] ?? '';
  const e = code < 300 || code >= 400 ? ENHANCED.exec(first) : null;
  if (!e)
    return new SmtpReply(code, code >= 300 && code < 400 ? '' : defaultEnhanced(code), rawLines);
  const status = e[1]!;
  // Every line of an enhanced reply repeats the status; keep it out of the text.
  const lines = rawLines.map((l) =>
    l.startsWith(status) ? l.slice(status.length).trimStart() : l,
  );
  return new SmtpReply(code, status, lines);
}

function printableShort(line: string): string {
  return line.replace(/[^\x20-\x7e]/g, '?').slice(0, 80);
}
