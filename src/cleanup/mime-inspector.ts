/**
 * MimeInspector: a streaming MIME boundary tracker over the message body that feeds
 * mime_header_checks, nested_header_checks and body_checks, and applies their line
 * edits (PREPEND, REPLACE, IGNORE, STRIP) to the output.
 *
 * Postfix counterpart: mime_state.c as cleanup(8) drives it: multipart boundaries
 * (matched on their first `mime_boundary_length_limit` characters, against every
 * enclosing multipart, as mime_state does), part headers, message/rfc822 (and
 * message/global) attachments whose headers are "nested" headers, and
 * `body_checks_size_limit` per body segment (each part body, the preamble and
 * epilogues count as their own segment). Nesting deeper than `mime_nesting_limit` is
 * not tracked further (Postfix's strict_mime_encoding_domain is off by default, so it
 * is not an error either); the first such event is reported once.
 *
 * Why not mailsplit: mailsplit is a Transform that yields to the event loop once per
 * line (~25 MB/s on this machine) and rebuilds every part. This tracker works on the
 * chunks Cleanup already has, emits unchanged bytes as slices of them (one slice per
 * run of unchanged lines), and only looks at lines that can matter: once a segment is
 * past the body-check limit only lines starting with `--` are examined (found with
 * `indexOf`), and once no boundary is open and no check remains the rest of the
 * message passes through without a look. It is used only when a check table is
 * configured; without one Cleanup never splits the body into lines.
 *
 * Does not: decode transfer encodings or RFC 2047 words, check MIME syntax strictly,
 * or look at the primary header block (HeaderParser and the transaction do).
 *
 * SECURITY: input is hostile. Memory is bounded by one logical part header
 * (`headerSizeLimit`), one held line (at most the larger of 2048 bytes and the boundary
 * limit) and the boundary stack (`mimeNestingLimit` entries of at most
 * `mimeBoundaryLengthLimit` bytes). A longer line is inspected on its first bytes and
 * the rest passes through.
 *
 * STANDARDS: RFC 2046 section 5.1 (multipart, boundaries), 5.2.1 (message/rfc822);
 * RFC 6532 section 3.7 (message/global); RFC 2045 section 5 (Content-Type).
 *
 * @module
 */

import {
  type CheckClass,
  type ContentChecks,
  isMimeHeader,
  type LineEdit,
} from './content-checks.js';

const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;
const LF_DASHES = Buffer.from('\n--');
/** Body lines longer than this are inspected on their first bytes only. */
const BODY_LINE_CAP = 2048;

/** Options for MimeInspector. */
export interface MimeInspectorOptions {
  readonly checks: ContentChecks;
  /** Postfix `mime_nesting_limit`. */
  readonly nestingLimit: number;
  /** Postfix `mime_boundary_length_limit`. */
  readonly boundaryLengthLimit: number;
  /** Postfix `body_checks_size_limit`, per body segment. */
  readonly bodyChecksSizeLimit: number;
  /** Postfix `header_size_limit`: the most of one part header held for inspection. */
  readonly headerSizeLimit: number;
  /** Called once when the structure is nested deeper than `nestingLimit`. */
  readonly onNestingLimit?: () => void;
}

/** A parsed Content-Type: lower-cased type/subtype and the boundary parameter. */
export interface ContentTypeInfo {
  readonly type: string;
  readonly subtype: string;
  readonly boundary?: string;
}

/** Parses a Content-Type value (RFC 2045 section 5.1), tolerating comments and junk. */
export function parseContentType(value: string): ContentTypeInfo {
  const v = value.replace(/\([^()]*\)/g, ' ');
  const m = /^\s*([^\s/;]+)\s*\/\s*([^\s;]+)/.exec(v);
  const type = (m?.[1] ?? 'text').toLowerCase();
  const subtype = (m?.[2] ?? 'plain').toLowerCase();
  const b = /;\s*boundary\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;]+))/i.exec(v);
  const boundary = b ? (b[1] !== undefined ? b[1].replace(/\\(.)/g, '$1') : b[2]) : undefined;
  return boundary !== undefined && boundary !== ''
    ? { type, subtype, boundary }
    : { type, subtype };
}

type Mode = 'body' | 'part-headers' | 'nested-headers';

interface OpenMultipart {
  /** `--` + boundary, cut at the boundary length limit. */
  readonly marker: Buffer;
  /** Nesting depth of this multipart. */
  readonly depth: number;
}

interface PendingHeader {
  readonly parts: Buffer[];
  size: number;
  readonly lowerName: string;
}

export class MimeInspector {
  readonly #o: MimeInspectorOptions;
  readonly #stack: OpenMultipart[] = [];
  #mode: Mode = 'body';
  #depth = 0;
  /** Body bytes of the current segment inspected so far. */
  #segment = 0;
  /** Bytes of a line whose start is not yet decided (held back). */
  #carry: Buffer | undefined;
  /** The current line was already passed through; bytes up to the next LF follow it. */
  #midLine = false;
  /** ... and those bytes are dropped (the line was replaced or deleted). */
  #dropLine = false;
  #header: PendingHeader | undefined;
  /** Content-Type of the header block being read. */
  #contentType: string | undefined;
  #nestingReported = false;
  /** Output of the current push. */
  #out: Buffer[] = [];

  constructor(options: MimeInspectorOptions) {
    this.#o = options;
  }

  /** Sets the structure of the body from the primary header block's Content-Type. */
  start(contentType: string | undefined): void {
    this.#contentType = contentType;
    this.#endOfHeaderBlock(0);
  }

  /** Inspects normalised body bytes (CRLF line ends); returns what to write. */
  async push(chunk: Buffer): Promise<Buffer[]> {
    this.#out = [];
    let pos = 0;
    while (pos < chunk.length) {
      if (this.#midLine) {
        const lf = chunk.indexOf(LF, pos);
        const end = lf < 0 ? chunk.length : lf + 1;
        if (!this.#dropLine) this.#out.push(chunk.subarray(pos, end));
        pos = end;
        if (lf >= 0) {
          this.#midLine = false;
          this.#dropLine = false;
        }
        continue;
      }
      if (this.#carry === undefined && this.#passive()) {
        // Nothing can change any more: no open boundary, no check left.
        this.#out.push(pos === 0 ? chunk : chunk.subarray(pos));
        break;
      }
      if (this.#carry === undefined && this.#skimming()) {
        // Only lines starting with `--` matter: jump to the next one.
        const lineStart =
          chunk[pos] === DASH ? pos : ((i) => (i < 0 ? -1 : i + 1))(chunk.indexOf(LF_DASHES, pos));
        if (lineStart < 0) {
          // No candidate: pass all but a tail that might start one (`\n-`).
          const lastLf = chunk.lastIndexOf(LF);
          const tailStart = lastLf < pos ? pos : lastLf + 1;
          this.#out.push(chunk.subarray(pos, tailStart));
          pos = tailStart;
          if (pos < chunk.length) {
            // An unfinished last line: hold it only if it could be a boundary.
            const tail = chunk.subarray(pos);
            if (tail[0] === DASH && (tail.length < 2 || tail[1] === DASH)) {
              await this.#hold(tail);
            } else {
              this.#out.push(tail);
              this.#midLine = true;
            }
            pos = chunk.length;
          }
          continue;
        }
        if (lineStart > pos) this.#out.push(chunk.subarray(pos, lineStart));
        pos = lineStart;
      }
      // One line (or the start of one) at `pos`, completing any carry.
      const lf = chunk.indexOf(LF, pos);
      if (lf < 0) {
        await this.#hold(chunk.subarray(pos));
        pos = chunk.length;
        continue;
      }
      let line = chunk.subarray(pos, lf + 1);
      if (this.#carry !== undefined) {
        line = Buffer.concat([this.#carry, line]);
        this.#carry = undefined;
      }
      pos = lf + 1;
      await this.#line(line, true);
    }
    const out = this.#out;
    this.#out = [];
    return out;
  }

  /** Ends the body: a held last line is inspected and written. */
  async end(): Promise<Buffer[]> {
    this.#out = [];
    if (this.#carry !== undefined) {
      const line = this.#carry;
      this.#carry = undefined;
      await this.#line(line, false);
    }
    this.#flushHeader();
    const out = this.#out;
    this.#out = [];
    return out;
  }

  /** In body mode, with no boundary to look for and nothing left to check. */
  #passive(): boolean {
    return this.#mode === 'body' && this.#stack.length === 0 && !this.#bodyCheckDue();
  }

  /** In body mode past the check limit, inside a multipart: only `--` lines matter. */
  #skimming(): boolean {
    return this.#mode === 'body' && this.#stack.length > 0 && !this.#bodyCheckDue();
  }

  #bodyCheckDue(): boolean {
    return this.#o.checks.checksBody && this.#segment < this.#o.bodyChecksSizeLimit;
  }

  /** Holds an unfinished line; past the cap it is inspected on what it has so far. */
  async #hold(bytes: Buffer): Promise<void> {
    const carry =
      this.#carry === undefined ? Buffer.from(bytes) : Buffer.concat([this.#carry, bytes]);
    // A header line is held until headerName() can tell whether it is one (it looks at
    // up to 998 bytes), so that the answer never depends on where the chunks were cut.
    const cap =
      this.#mode === 'body'
        ? Math.max(BODY_LINE_CAP, this.#o.boundaryLengthLimit + 8)
        : Math.max(this.#o.headerSizeLimit, HEADER_NAME_SCAN + 2);
    if (carry.length <= cap) {
      this.#carry = carry;
      return;
    }
    if (this.#mode !== 'body') {
      const first = carry[0];
      const continuation = (first === SP || first === HT) && this.#header !== undefined;
      if (!continuation && headerName(carry) === undefined) {
        // Not a header: the header block ends here, as #line() decides for a whole line.
        this.#carry = undefined;
        await this.#checkHeader();
        this.#endOfHeaderBlock(this.#depth + 1);
        await this.#hold(carry);
        return;
      }
    }
    // Too long to hold: a body line is checked on its first bytes, a header line is
    // written unchecked; either way the rest of the line follows as it comes.
    this.#carry = undefined;
    this.#midLine = true;
    if (this.#mode !== 'body' || !this.#bodyCheckDue()) {
      this.#flushHeader();
      if (this.#mode === 'body') this.#segment += carry.length;
      this.#out.push(carry);
      return;
    }
    this.#segment += carry.length;
    const edit = await this.#o.checks.check('body', carry.subarray(0, cap).toString('utf8'));
    if (edit === undefined) {
      this.#out.push(carry);
    } else if (edit.kind === 'prepend') {
      this.#out.push(Buffer.from(`${edit.text}\r\n`, 'utf8'), carry);
    } else {
      // REPLACE, IGNORE, STRIP: the whole line goes, up to and including its LF.
      if (edit.kind === 'replace') this.#out.push(Buffer.from(`${edit.text}\r\n`, 'utf8'));
      this.#dropLine = true;
    }
  }

  /** One line, with its CRLF when `terminated`. */
  async #line(raw: Buffer, terminated: boolean): Promise<void> {
    const content = terminated ? stripEol(raw) : raw;
    // A boundary ends whatever was being read, at every level (RFC 2046 section 5.1.2).
    if (this.#stack.length > 0 && content[0] === DASH && content[1] === DASH) {
      const hit = this.#matchBoundary(content);
      if (hit) {
        this.#flushHeader();
        await this.#bodyLine(raw, content, true);
        this.#stack.length = hit.index + (hit.close ? 0 : 1);
        this.#depth = hit.close ? hit.index : (this.#stack[hit.index]?.depth ?? 0);
        this.#segment = 0;
        this.#contentType = undefined;
        this.#mode = hit.close ? 'body' : 'part-headers';
        return;
      }
    }
    if (this.#mode === 'body') {
      await this.#bodyLine(raw, content, false);
      return;
    }
    // Part or nested headers.
    if (content.length === 0) {
      await this.#checkHeader();
      this.#out.push(raw);
      this.#endOfHeaderBlock(this.#depth + 1);
      return;
    }
    const first = content[0]!;
    if ((first === SP || first === HT) && this.#header) {
      this.#appendHeader(raw);
      return;
    }
    const name = headerName(content);
    if (name !== undefined) {
      await this.#checkHeader();
      this.#header = { parts: [], size: 0, lowerName: name.toLowerCase() };
      this.#appendHeader(raw);
      return;
    }
    // Not a header: the header block ended without an empty line; this is body.
    await this.#checkHeader();
    this.#endOfHeaderBlock(this.#depth + 1);
    await this.#line(raw, terminated);
  }

  async #bodyLine(raw: Buffer, content: Buffer, boundary: boolean): Promise<void> {
    if (!this.#bodyCheckDue()) {
      if (!boundary) this.#segment += raw.length;
      this.#out.push(raw);
      return;
    }
    this.#segment += raw.length;
    const edit = await this.#o.checks.check('body', content.toString('utf8'));
    this.#applyEdit(edit, raw);
  }

  #applyEdit(edit: LineEdit | undefined, raw: Buffer): void {
    if (edit === undefined) {
      this.#out.push(raw);
      return;
    }
    switch (edit.kind) {
      case 'prepend':
        this.#out.push(Buffer.from(`${edit.text}\r\n`, 'utf8'), raw);
        return;
      case 'replace':
        this.#out.push(Buffer.from(`${edit.text}\r\n`, 'utf8'));
        return;
      case 'ignore':
      case 'strip':
        return;
    }
  }

  #appendHeader(raw: Buffer): void {
    const h = this.#header!;
    if (h.size + raw.length > this.#o.headerSizeLimit) {
      // Too large to inspect: written unchecked, the rest of it passes as it comes.
      this.#flushHeader();
      this.#out.push(raw);
      return;
    }
    h.parts.push(Buffer.from(raw));
    h.size += raw.length;
  }

  /** Writes the pending header unchecked (too large, or inspection cut short). */
  #flushHeader(): void {
    const h = this.#header;
    this.#header = undefined;
    if (h) this.#out.push(...h.parts);
  }

  async #checkHeader(): Promise<void> {
    const h = this.#header;
    if (!h) return;
    this.#header = undefined;
    const raw = h.parts.length === 1 ? h.parts[0]! : Buffer.concat(h.parts, h.size);
    const text = raw.toString('utf8').replace(/\r?\n/g, '');
    if (h.lowerName === 'content-type') this.#contentType = text.slice(text.indexOf(':') + 1);
    const where: CheckClass =
      isMimeHeader(h.lowerName) || this.#mode === 'part-headers' ? 'mime-header' : 'nested-header';
    const edit = await this.#o.checks.check(where, text);
    this.#applyEdit(edit, raw);
  }

  /** A header block ended: what follows depends on its Content-Type. */
  #endOfHeaderBlock(depth: number): void {
    const ct = parseContentType(this.#contentType ?? '');
    this.#contentType = undefined;
    this.#segment = 0;
    this.#mode = 'body';
    const deeper = depth + 1;
    if (ct.type === 'multipart' && ct.boundary !== undefined) {
      if (!this.#withinNesting(deeper)) return;
      const b = ct.boundary.slice(0, this.#o.boundaryLengthLimit);
      this.#stack.push({ marker: Buffer.from(`--${b}`, 'latin1'), depth: deeper });
      this.#depth = deeper;
    } else if (ct.type === 'message' && (ct.subtype === 'rfc822' || ct.subtype === 'global')) {
      if (!this.#withinNesting(deeper)) return;
      this.#mode = 'nested-headers';
      this.#depth = deeper;
    }
  }

  #withinNesting(depth: number): boolean {
    if (depth <= this.#o.nestingLimit) return true;
    if (!this.#nestingReported) {
      this.#nestingReported = true;
      this.#o.onNestingLimit?.();
    }
    return false;
  }

  /** The innermost-first match of a `--boundary` line against the open multiparts. */
  #matchBoundary(content: Buffer): { index: number; close: boolean } | undefined {
    for (let i = this.#stack.length - 1; i >= 0; i--) {
      const marker = this.#stack[i]!.marker;
      if (content.length < marker.length) continue;
      if (content.compare(marker, 0, marker.length, 0, marker.length) !== 0) continue;
      const close = content[marker.length] === DASH && content[marker.length + 1] === DASH;
      return { index: i, close };
    }
    return undefined;
  }
}

function stripEol(line: Buffer): Buffer {
  let n = line.length;
  if (n > 0 && line[n - 1] === LF) n--;
  if (n > 0 && line[n - 1] === CR) n--;
  return line.subarray(0, n);
}

/** The field name when `line` starts a header (`name:` with optional WSP before the colon). */
/** How far headerName() looks for the colon that makes a line a header. */
const HEADER_NAME_SCAN = 998;

function headerName(line: Buffer): string | undefined {
  let i = 0;
  while (i < line.length && i < HEADER_NAME_SCAN) {
    const b = line[i]!;
    if (b < 0x21 || b > 0x7e || b === COLON) break;
    i++;
  }
  if (i === 0) return undefined;
  let j = i;
  while (line[j] === SP || line[j] === HT) j++;
  return line[j] === COLON ? line.toString('latin1', 0, i) : undefined;
}
