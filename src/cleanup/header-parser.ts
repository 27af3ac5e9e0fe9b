/**
 * HeaderParser: splits normalised message content (CRLF line ends, see
 * content-scanner.ts) into the primary header block — one logical header at a time,
 * with its raw bytes and its unfolded value — and the body, which is passed through
 * in the chunks it arrived in.
 *
 * Postfix counterpart: the primary-header part of mime_state.c as cleanup(8) uses it:
 * a header starts with a field name and a colon (is_header.c), continues on lines that
 * start with a space or tab, and the header block ends at an empty line or at the first
 * line that is not a header — in which case an empty line is inserted before it, so
 * the body stays a body. A first line `From ...` (a UNIX mailbox separator) becomes an
 * `X-Mailbox-Line:` header, as Postfix's receivers do.
 *
 * Limits (bounded memory):
 * - one logical header keeps at most `headerSizeLimit` bytes (its field name and colon
 *   always); the excess, including whole continuation lines, is discarded and the
 *   header is marked `truncated` — Postfix's `header_size_limit` ("the excess is
 *   discarded"). A long physical line is never a reason to fail: it is handled by
 *   bytes, and in the body it passes through whole;
 * - a line is classified from its first bytes; a would-be field name longer than
 *   998 bytes (RFC 5322 section 2.1.1) without a colon is not a header.
 *
 * Does not: decide what to do with a header (cleanup.ts), parse MIME structure, decode
 * RFC 2047 words.
 *
 * SECURITY: input is hostile. The parser holds at most one logical header (bounded by
 * `headerSizeLimit`) and one undecided line prefix (bounded by 998 bytes plus the last
 * chunk) at a time.
 *
 * STANDARDS: RFC 5322 sections 2.1 (header/body), 2.2 (field syntax), 2.2.3 (folding).
 *
 * @module
 */

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;

/** RFC 5322 section 2.1.1: the longest line a field name could sit on. */
const NAME_LIMIT = 998;
const MAILBOX_PREFIX = Buffer.from('From ');
const MAILBOX_HEADER = Buffer.from('X-Mailbox-Line: ');

/** One logical header of the primary header block. */
export interface HeaderField {
  /** Field name as written (`Message-ID`). */
  readonly name: string;
  /** Field name lower-cased, for comparisons. */
  readonly lowerName: string;
  /** The header's bytes, every physical line ending in CRLF. */
  readonly raw: Buffer;
  /** The value after the colon, unfolded and trimmed (UTF-8 decoded, for inspection only). */
  readonly value: string;
  /** Bytes beyond `headerSizeLimit` were discarded. */
  readonly truncated: boolean;
}

/** Why the header block ended. */
export type HeaderEndReason =
  /** An empty line (consumed: it is not part of the body). */
  | 'empty-line'
  /** A line that is not a header; it starts the body (a separator must be inserted). */
  | 'non-header'
  /** The content ended inside the header block. */
  | 'eof';

/** What the parser produced from some input, in order. */
export type HeaderEvent =
  | { readonly kind: 'header'; readonly field: HeaderField }
  | { readonly kind: 'end'; readonly reason: HeaderEndReason }
  | { readonly kind: 'body'; readonly data: Buffer };

/** Options for HeaderParser. */
export interface HeaderParserOptions {
  /** Postfix `header_size_limit`: bytes kept of one logical header. */
  readonly headerSizeLimit: number;
  /** Turn a first line `From ...` into `X-Mailbox-Line: From ...`. @default true */
  readonly mailboxLine?: boolean;
}

type LineClass = 'undecided' | 'empty' | 'non-header' | 'header' | 'continuation' | 'mailbox';

interface CurrentHeader {
  readonly parts: Buffer[];
  size: number;
  truncated: boolean;
  /** Bytes of the name (before optional spaces and the colon). */
  readonly nameLength: number;
  /** Offset of the colon in the raw bytes. */
  readonly colon: number;
}

export class HeaderParser {
  readonly #limit: number;
  readonly #mailboxLine: boolean;
  #inHeaders = true;
  #firstLine = true;
  /** Bytes of the current line not yet classified. */
  #prefix: Buffer[] = [];
  #prefixLength = 0;
  /** The current line has been classified and goes into `#current`. */
  #lineOpen = false;
  /** Some bytes of the current line were kept; the last kept byte. */
  #lineKept = false;
  #lastKept = 0;
  #lineDropped = false;
  #current: CurrentHeader | undefined;

  constructor(options: HeaderParserOptions) {
    this.#limit = Math.max(0, options.headerSizeLimit);
    this.#mailboxLine = options.mailboxLine ?? true;
  }

  /** Still inside the primary header block. */
  get inHeaders(): boolean {
    return this.#inHeaders;
  }

  /** Feeds normalised bytes; returns what they completed. */
  push(chunk: Buffer): HeaderEvent[] {
    const events: HeaderEvent[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      if (!this.#inHeaders) {
        events.push({ kind: 'body', data: pos === 0 ? chunk : chunk.subarray(pos) });
        break;
      }
      const lf = chunk.indexOf(LF, pos);
      const segEnd = lf === -1 ? chunk.length : lf + 1;
      const seg = chunk.subarray(pos, segEnd);
      pos = segEnd;
      const lineDone = lf !== -1;
      if (!this.#lineOpen) {
        // A line that arrived whole (the usual case) is classified as it is.
        let prefix = seg;
        if (this.#prefixLength > 0) {
          this.#prefix.push(seg);
          prefix = Buffer.concat(this.#prefix, this.#prefixLength + seg.length);
        }
        const cls = this.#classify(prefix, lineDone);
        if (cls === 'undecided') {
          this.#prefix = [prefix];
          this.#prefixLength = prefix.length;
          continue;
        }
        if (this.#prefixLength > 0) {
          this.#prefix = [];
          this.#prefixLength = 0;
        }
        this.#apply(cls, prefix, events);
        if (!this.#inHeaders) continue;
      } else {
        this.#append(seg);
      }
      if (lineDone) this.#finishLine();
    }
    return events;
  }

  /** Ends the input. */
  end(): HeaderEvent[] {
    const events: HeaderEvent[] = [];
    if (!this.#inHeaders) return events;
    if (this.#prefixLength > 0) {
      const prefix = Buffer.concat(this.#prefix, this.#prefixLength);
      this.#prefix = [];
      this.#prefixLength = 0;
      const cls = this.#classify(prefix, true);
      // A complete line is never undecided.
      this.#apply(cls === 'undecided' ? 'non-header' : cls, prefix, events);
      if (!this.#inHeaders) return events;
    }
    if (this.#lineOpen) this.#finishLine();
    this.#flush(events);
    this.#inHeaders = false;
    events.push({ kind: 'end', reason: 'eof' });
    return events;
  }

  #classify(prefix: Buffer, complete: boolean): LineClass {
    const n = prefix.length;
    if (n === 0) return complete ? 'empty' : 'undecided';
    if (this.#firstLine && this.#mailboxLine) {
      const m = Math.min(n, MAILBOX_PREFIX.length);
      if (prefix.compare(MAILBOX_PREFIX, 0, m, 0, m) === 0) {
        if (n >= MAILBOX_PREFIX.length) return 'mailbox';
        if (!complete) return 'undecided';
      }
    }
    const b0 = prefix[0]!;
    if (b0 === LF) return 'empty';
    if (b0 === CR) {
      if (n === 1) return complete ? 'empty' : 'undecided';
      return prefix[1] === LF ? 'empty' : 'non-header';
    }
    if (b0 === SP || b0 === HT) return this.#current ? 'continuation' : 'non-header';
    let i = 0;
    while (i < n && isNameByte(prefix[i]!)) i++;
    if (i === 0) return 'non-header';
    while (i < n && (prefix[i] === SP || prefix[i] === HT)) i++;
    // Decided the same way however the line was chunked.
    if (i > NAME_LIMIT) return 'non-header';
    if (i >= n) return complete ? 'non-header' : 'undecided';
    return prefix[i] === COLON ? 'header' : 'non-header';
  }

  #apply(cls: Exclude<LineClass, 'undecided'>, prefix: Buffer, events: HeaderEvent[]): void {
    switch (cls) {
      case 'empty':
        this.#flush(events);
        this.#inHeaders = false;
        events.push({ kind: 'end', reason: 'empty-line' });
        return;
      case 'non-header':
        this.#flush(events);
        this.#inHeaders = false;
        events.push({ kind: 'end', reason: 'non-header' });
        events.push({ kind: 'body', data: prefix });
        return;
      case 'continuation':
        this.#lineOpen = true;
        this.#append(prefix);
        return;
      case 'header':
      case 'mailbox': {
        this.#flush(events);
        let raw = prefix;
        if (cls === 'mailbox') raw = Buffer.concat([MAILBOX_HEADER, prefix]);
        let nameLength = 0;
        while (isNameByte(raw[nameLength]!)) nameLength++;
        let colon = nameLength;
        while (raw[colon] !== COLON) colon++;
        this.#current = { parts: [], size: 0, truncated: false, nameLength, colon };
        this.#lineOpen = true;
        // The name and colon are always kept, whatever the limit; a line within the limit
        // is kept in one piece.
        const rest = raw.length - (colon + 1);
        if (rest === 0 || rest <= this.#limit - (colon + 1)) {
          this.#keep(raw);
          return;
        }
        this.#keep(raw.subarray(0, colon + 1));
        this.#append(raw.subarray(colon + 1));
        return;
      }
    }
  }

  /** Adds bytes of the open line to the current header, within the limit. */
  #append(bytes: Buffer): void {
    const cur = this.#current;
    if (!cur || bytes.length === 0) return;
    const budget = this.#limit - cur.size;
    if (budget <= 0) {
      cur.truncated = true;
      this.#lineDropped = true;
      return;
    }
    if (bytes.length > budget) {
      cur.truncated = true;
      this.#lineDropped = true;
      this.#keep(bytes.subarray(0, budget));
      return;
    }
    this.#keep(bytes);
  }

  #keep(bytes: Buffer): void {
    const cur = this.#current!;
    if (bytes.length === 0) return;
    // Copied: header bytes are few, and the caller's chunk may be reused.
    cur.parts.push(Buffer.from(bytes));
    cur.size += bytes.length;
    this.#lineKept = true;
    this.#lastKept = bytes[bytes.length - 1]!;
  }

  #finishLine(): void {
    const cur = this.#current;
    if (cur && this.#lineKept && this.#lineDropped && this.#lastKept !== LF) {
      // The line end was cut off with the excess: every stored line still ends in CRLF.
      const end = this.#lastKept === CR ? Buffer.from('\n') : Buffer.from('\r\n');
      cur.parts.push(end);
      cur.size += end.length;
    }
    this.#lineOpen = false;
    this.#lineKept = false;
    this.#lineDropped = false;
    this.#firstLine = false;
  }

  #flush(events: HeaderEvent[]): void {
    const cur = this.#current;
    this.#current = undefined;
    if (!cur) return;
    const raw = cur.parts.length === 1 ? cur.parts[0]! : Buffer.concat(cur.parts, cur.size);
    const name = raw.toString('latin1', 0, cur.nameLength);
    const value = raw
      .toString('utf8', cur.colon + 1)
      .replace(/\r?\n/g, '')
      .trim();
    events.push({
      kind: 'header',
      field: { name, lowerName: name.toLowerCase(), raw, value, truncated: cur.truncated },
    });
  }
}

/** RFC 5322 ftext: printable US-ASCII except colon. */
function isNameByte(b: number): boolean {
  return b >= 0x21 && b <= 0x7e && b !== COLON;
}
