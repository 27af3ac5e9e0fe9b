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
  /**
   * The header's bytes, every physical line ending in CRLF: a view of the chunk pushed
   * when the header lay whole in it (valid as long as that chunk is), else its own copy.
   */
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

const LF_BYTES = Buffer.from('\n');
const CRLF_BYTES = Buffer.from('\r\n');

/** Lower-cased field names seen lately: a server sees the same few names in every message. */
const lowerNames = new Map<string, string>();
/** More names than mail has: a sender inventing names only makes the cache start over. */
const LOWER_NAMES_MAX = 512;

function lowerNameOf(name: string): string {
  let lower = lowerNames.get(name);
  if (lower === undefined) {
    lower = name.toLowerCase();
    if (lowerNames.size >= LOWER_NAMES_MAX) lowerNames.clear();
    lowerNames.set(name, lower);
  }
  return lower;
}

/** A header the parser completed; its unfolded value is decoded when first asked for. */
class ParsedField implements HeaderField {
  readonly name: string;
  readonly lowerName: string;
  readonly raw: Buffer;
  readonly truncated: boolean;
  readonly #colon: number;
  #value: string | undefined;

  constructor(raw: Buffer, nameLength: number, colon: number, truncated: boolean) {
    this.name = raw.toString('latin1', 0, nameLength);
    this.lowerName = lowerNameOf(this.name);
    this.raw = raw;
    this.truncated = truncated;
    this.#colon = colon;
  }

  get value(): string {
    this.#value ??= this.raw
      .toString('utf8', this.#colon + 1)
      .replace(/\r?\n/g, '')
      .trim();
    return this.#value;
  }
}

export class HeaderParser {
  readonly #limit: number;
  readonly #mailboxLine: boolean;
  #inHeaders = true;
  #firstLine = true;
  /** Bytes of the current line not yet classified. */
  #prefix: Buffer[] = [];
  #prefixLength = 0;
  /** The current line has been classified and goes into the current header. */
  #lineOpen = false;
  /** Some bytes of the current line were kept; the last kept byte. */
  #lineKept = false;
  #lastKept = 0;
  #lineDropped = false;
  /**
   * The header being collected (`#inField`): its first piece, any further pieces, its
   * size, whether bytes were cut, the bytes of its name and the offset of its colon.
   */
  #inField = false;
  #first: Buffer | undefined;
  #more: Buffer[] | undefined;
  #size = 0;
  #truncated = false;
  #nameLength = 0;
  #colon = 0;
  /** Some pieces of the open header are views of the chunk being pushed. */
  #views = false;

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
      const start = pos;
      const end = lf === -1 ? chunk.length : lf + 1;
      pos = end;
      const lineDone = lf !== -1;
      if (!this.#lineOpen) {
        if (this.#prefixLength > 0) {
          // The line began in an earlier chunk: classified from the bytes joined.
          this.#prefix.push(chunk.subarray(start, end));
          const prefix = Buffer.concat(this.#prefix, this.#prefixLength + end - start);
          if (!this.#decide(prefix, 0, prefix.length, lineDone, events)) continue;
        } else if (!this.#decide(chunk, start, end, lineDone, events)) {
          // A line that arrived whole (the usual case) is classified where it lies.
          continue;
        }
        if (!this.#inHeaders) continue;
      } else {
        this.#append(chunk, start, end);
      }
      if (lineDone) this.#finishLine();
    }
    // A header still open keeps copies of its pieces, not views of a chunk its writer
    // may reuse once this push is done.
    if (this.#inField && this.#views) this.#ownPieces();
    return events;
  }

  #ownPieces(): void {
    this.#views = false;
    this.#first = Buffer.from(this.#first!);
    if (this.#more) this.#more = this.#more.map((b) => Buffer.from(b));
  }

  /** Ends the input. */
  end(): HeaderEvent[] {
    const events: HeaderEvent[] = [];
    if (!this.#inHeaders) return events;
    if (this.#prefixLength > 0) {
      const prefix = Buffer.concat(this.#prefix, this.#prefixLength);
      this.#prefix = [];
      this.#prefixLength = 0;
      const cls = this.#classify(prefix, 0, prefix.length, true);
      // A complete line is never undecided.
      this.#apply(cls === 'undecided' ? 'non-header' : cls, prefix, 0, prefix.length, events);
      if (!this.#inHeaders) return events;
    }
    if (this.#lineOpen) this.#finishLine();
    this.#flush(events);
    this.#inHeaders = false;
    events.push({ kind: 'end', reason: 'eof' });
    return events;
  }

  /**
   * Classifies the line start `buf[start..end)` and applies it; false when it is still
   * undecided (then it is held as the prefix of the line).
   */
  #decide(
    buf: Buffer,
    start: number,
    end: number,
    complete: boolean,
    events: HeaderEvent[],
  ): boolean {
    const cls = this.#classify(buf, start, end, complete);
    if (cls === 'undecided') {
      this.#prefix = [start === 0 && end === buf.length ? buf : buf.subarray(start, end)];
      this.#prefixLength = end - start;
      return false;
    }
    if (this.#prefixLength > 0) {
      this.#prefix = [];
      this.#prefixLength = 0;
    }
    this.#apply(cls, buf, start, end, events);
    return true;
  }

  #classify(buf: Buffer, start: number, end: number, complete: boolean): LineClass {
    const n = end - start;
    if (n === 0) return complete ? 'empty' : 'undecided';
    if (this.#firstLine && this.#mailboxLine) {
      const m = Math.min(n, MAILBOX_PREFIX.length);
      let same = true;
      for (let i = 0; i < m && same; i++) same = buf[start + i] === MAILBOX_PREFIX[i];
      if (same) {
        if (n >= MAILBOX_PREFIX.length) return 'mailbox';
        if (!complete) return 'undecided';
      }
    }
    const b0 = buf[start]!;
    if (b0 === LF) return 'empty';
    if (b0 === CR) {
      if (n === 1) return complete ? 'empty' : 'undecided';
      return buf[start + 1] === LF ? 'empty' : 'non-header';
    }
    if (b0 === SP || b0 === HT) return this.#inField ? 'continuation' : 'non-header';
    let i = start;
    while (i < end && isNameByte(buf[i]!)) i++;
    if (i === start) return 'non-header';
    while (i < end && (buf[i] === SP || buf[i] === HT)) i++;
    // Decided the same way however the line was chunked.
    if (i - start > NAME_LIMIT) return 'non-header';
    if (i >= end) return complete ? 'non-header' : 'undecided';
    return buf[i] === COLON ? 'header' : 'non-header';
  }

  #apply(
    cls: Exclude<LineClass, 'undecided'>,
    buf: Buffer,
    start: number,
    end: number,
    events: HeaderEvent[],
  ): void {
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
        events.push({ kind: 'body', data: buf.subarray(start, end) });
        return;
      case 'continuation':
        this.#lineOpen = true;
        this.#append(buf, start, end);
        return;
      case 'header':
      case 'mailbox': {
        this.#flush(events);
        let raw = buf;
        let from = start;
        let to = end;
        if (cls === 'mailbox') {
          raw = Buffer.concat([MAILBOX_HEADER, buf.subarray(start, end)]);
          from = 0;
          to = raw.length;
        }
        let nameLength = 0;
        while (isNameByte(raw[from + nameLength]!)) nameLength++;
        let colon = nameLength;
        while (raw[from + colon] !== COLON) colon++;
        this.#inField = true;
        this.#first = undefined;
        this.#more = undefined;
        this.#size = 0;
        this.#truncated = false;
        this.#nameLength = nameLength;
        this.#colon = colon;
        this.#lineOpen = true;
        // The name and colon are always kept, whatever the limit; a line within the limit
        // is kept in one piece.
        const rest = to - from - (colon + 1);
        if (rest === 0 || rest <= this.#limit - (colon + 1)) {
          this.#keep(raw, from, to);
          return;
        }
        this.#keep(raw, from, from + colon + 1);
        this.#append(raw, from + colon + 1, to);
        return;
      }
    }
  }

  /** Adds bytes of the open line to the current header, within the limit. */
  #append(buf: Buffer, start: number, end: number): void {
    const n = end - start;
    if (!this.#inField || n === 0) return;
    const budget = this.#limit - this.#size;
    if (budget <= 0) {
      this.#truncated = true;
      this.#lineDropped = true;
      return;
    }
    if (n > budget) {
      this.#truncated = true;
      this.#lineDropped = true;
      this.#keep(buf, start, start + budget);
      return;
    }
    this.#keep(buf, start, end);
  }

  #keep(buf: Buffer, start: number, end: number): void {
    const n = end - start;
    if (n === 0) return;
    // A view, not a copy: the header is handed on within this push, like the body's
    // chunks; one still open when the push ends is copied then (#ownPieces).
    const piece = start === 0 && end === buf.length ? buf : buf.subarray(start, end);
    this.#views = true;
    this.#add(piece);
    this.#lineKept = true;
    this.#lastKept = piece[n - 1]!;
  }

  #add(piece: Buffer): void {
    if (this.#first === undefined) this.#first = piece;
    else if (this.#more === undefined) this.#more = [piece];
    else this.#more.push(piece);
    this.#size += piece.length;
  }

  #finishLine(): void {
    if (this.#inField && this.#lineKept && this.#lineDropped && this.#lastKept !== LF) {
      // The line end was cut off with the excess: every stored line still ends in CRLF.
      this.#add(this.#lastKept === CR ? LF_BYTES : CRLF_BYTES);
    }
    this.#lineOpen = false;
    this.#lineKept = false;
    this.#lineDropped = false;
    this.#firstLine = false;
  }

  #flush(events: HeaderEvent[]): void {
    if (!this.#inField) return;
    this.#inField = false;
    const first = this.#first!;
    const more = this.#more;
    this.#first = undefined;
    this.#more = undefined;
    this.#views = false;
    const raw = more === undefined ? first : Buffer.concat([first, ...more], this.#size);
    events.push({
      kind: 'header',
      field: new ParsedField(raw, this.#nameLength, this.#colon, this.#truncated),
    });
  }
}

/** RFC 5322 ftext: printable US-ASCII except colon. */
function isNameByte(b: number): boolean {
  return b >= 0x21 && b <= 0x7e && b !== COLON;
}
