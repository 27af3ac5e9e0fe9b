/**
 * Addresses in message headers: finding each addr-spec of an RFC 5322 address list
 * (From, To, Cc, Reply-To, Resent-*...), so Cleanup can rewrite it in place or take it
 * as an envelope recipient (`sendmail -t`).
 *
 * Postfix counterpart: tok822_parse.c / tok822_find.c as cleanup_addr.c and
 * cleanup_message.c (cleanup_rewrite_sender / cleanup_rewrite_recip, the extraction
 * of recipients for CLEANUP_FLAG_EXTRACT) use them, and header_opts.c (which headers
 * hold sender and recipient addresses).
 *
 * The parser keeps the header's own text: display names, comments, encoded words
 * (RFC 2047) and folding are left as they are, and only the addr-spec's span is
 * replaced, so a rewrite changes nothing else. Groups (`undisclosed-recipients:;`,
 * `team: a@x, b@y;`) are understood; an addr-spec with a comment inside it
 * (`user(comment)@example.com`) is found but not rewritten.
 *
 * Does not: decode encoded words (display names are never rewritten), validate
 * domains, or apply any rewriting itself (header-rewriting.ts).
 *
 * SECURITY: header text is hostile. The scan is linear, bounded by the header (itself
 * bounded by `headerSizeLimit`); unbalanced quotes, comments and brackets end at the
 * end of the text; a replacement address is formatted with formatAddress() and made
 * printable, so a table result cannot add a header line.
 *
 * STANDARDS: RFC 5322 sections 3.4 (address specification), 3.2.2 (comments and
 * folding white space), 3.2.4 (quoted strings), 3.6.2/3.6.3 (originator and
 * destination fields), 3.6.6 (Resent fields).
 *
 * @module
 */

import type { Address } from '../types.js';
import type { Mutable } from '../util/mutable.js';
import { toInternal } from './address-mapping.js';

/** Headers that hold sender addresses (Postfix HDR_OPT_SENDER), lower-cased. */
export const SENDER_HEADERS: ReadonlySet<string> = new Set([
  'from',
  'sender',
  'errors-to',
  'return-receipt-to',
  'disposition-notification-to',
  'return-path',
  'resent-from',
  'resent-sender',
]);

/** Headers that hold recipient addresses (Postfix HDR_OPT_RECIP), lower-cased. */
export const RECIPIENT_HEADERS: ReadonlySet<string> = new Set([
  'to',
  'cc',
  'bcc',
  'apparently-to',
  'reply-to',
  'resent-to',
  'resent-cc',
  'resent-bcc',
  'resent-reply-to',
]);

/** A local part (dot-atoms or one quoted string), optionally `@domain` or `@[literal]`. */
const ADDR_SPEC =
  /^(?:"(?:[^"\\\r\n]|\\.)*"|[^\s"<>()[\]\\,;:@]+)(?:@(?:[^\s"<>()[\]\\,;:@]+|\[[^\s[\]\\]*\]))?$/;

/** One addr-spec found in a header value. */
export interface HeaderAddress {
  /** Offset of the addr-spec in the value. */
  readonly start: number;
  /** Offset just past it. */
  readonly end: number;
  /** The address in internal form (local part unquoted). */
  readonly address: Address;
  /** Whether the span can be replaced (no comment inside the addr-spec). */
  readonly replaceable: boolean;
  /** Where the display name (the phrase before `<`) lies, for `name <addr>` forms. */
  readonly phrase?: { readonly start: number; readonly end: number };
}

/** Finds every addr-spec in an address-list header value. */
export function findAddresses(value: string): HeaderAddress[] {
  const out: HeaderAddress[] = [];
  const n = value.length;
  let segStart = 0;
  let angleStart = -1;
  // The last complete `<...>` of the segment (its inside), or -1.
  let angleFrom = -1;
  let angleTo = -1;
  let hasComment = false;
  let i = 0;
  while (i < n) {
    const c = value.charCodeAt(i);
    if (c === 0x22) {
      i = skipQuoted(value, i);
      continue;
    }
    if (c === 0x28) {
      if (angleStart < 0) hasComment = true;
      i = skipComment(value, i);
      continue;
    }
    if (angleStart >= 0) {
      if (c === 0x3e) {
        angleFrom = angleStart + 1;
        angleTo = i;
        angleStart = -1;
      }
      i++;
      continue;
    }
    if (c === 0x3c) {
      angleStart = i;
    } else if (c === 0x2c || c === 0x3b) {
      endSegment(value, out, segStart, i, angleFrom, angleTo, hasComment);
      angleFrom = -1;
      hasComment = false;
      segStart = i + 1;
    } else if (c === 0x3a) {
      // A group name: what came before is a display name, not an address.
      angleFrom = -1;
      hasComment = false;
      segStart = i + 1;
    }
    i++;
  }
  if (angleStart >= 0) {
    angleFrom = angleStart + 1;
    angleTo = n;
  }
  endSegment(value, out, segStart, n, angleFrom, angleTo, hasComment);
  return out;
}

/** One segment of the list ends: its `<addr-spec>`, or the whole segment as one. */
function endSegment(
  value: string,
  out: HeaderAddress[],
  segStart: number,
  segEnd: number,
  angleFrom: number,
  angleTo: number,
  hasComment: boolean,
): void {
  if (angleFrom >= 0) addAddress(value, out, angleFrom, angleTo, false, segStart, angleFrom - 1);
  else addAddress(value, out, segStart, segEnd, hasComment, -1, -1);
}

/** The addr-spec in `value[start..end)`, if it is one; the phrase's span when `phraseStart` >= 0. */
function addAddress(
  value: string,
  out: HeaderAddress[],
  start: number,
  end: number,
  commented: boolean,
  phraseStart: number,
  phraseEnd: number,
): void {
  let s = start;
  let e = end;
  // Skip white space and leading/trailing comments.
  for (;;) {
    while (s < e && isWsp(value.charCodeAt(s))) s++;
    if (value.charCodeAt(s) === 0x28) {
      s = skipComment(value, s);
      continue;
    }
    break;
  }
  for (;;) {
    while (e > s && isWsp(value.charCodeAt(e - 1))) e--;
    if (e > s && value.charCodeAt(e - 1) === 0x29) {
      const open = findCommentStart(value, s, e - 1);
      if (open < 0) break;
      e = open;
      continue;
    }
    break;
  }
  if (e <= s) return;
  let text = value.slice(s, e);
  let inner = commented;
  if (text.includes('(')) {
    inner = true;
    text = stripComments(text);
  }
  // A source route inside angle brackets (`<@a,@b:user@d>`) is obsolete syntax.
  const route = text.charCodeAt(0) === 0x40 ? /^@[^:]*:/.exec(text) : null;
  if (route) {
    s += route[0].length;
    text = text.slice(route[0].length);
  }
  const external = text.includes('"')
    ? text.trim()
    : WSP.test(text)
      ? text.replace(/\s+/g, '')
      : text;
  // Only something shaped like an addr-spec counts: hostile leftovers (an unterminated
  // quote, stray brackets) are not addresses.
  if (!ADDR_SPEC.test(external)) return;
  const address = toInternal(external);
  if (address === '') return;
  const found: Mutable<HeaderAddress> = { start: s, end: e, address, replaceable: !inner };
  if (phraseStart >= 0) found.phrase = { start: phraseStart, end: phraseEnd };
  out.push(found);
}

/** Any white space (what an address outside quotes loses). */
const WSP = /\s/;

/** The value with the given spans replaced (spans sorted, not overlapping). */
export function replaceAddresses(
  value: string,
  replacements: readonly { readonly start: number; readonly end: number; readonly text: string }[],
): string {
  let out = '';
  let pos = 0;
  for (const r of replacements) {
    out += value.slice(pos, r.start) + r.text;
    pos = r.end;
  }
  return out + value.slice(pos);
}

function isWsp(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0d || code === 0x0a;
}

function skipQuoted(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length) {
    const c = text[i];
    if (c === '\\') i += 2;
    else if (c === '"') return i + 1;
    else i++;
  }
  return text.length;
}

/** Skips a (possibly nested) comment starting at `start`. */
function skipComment(text: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < text.length) {
    const c = text[i];
    if (c === '\\') {
      i += 2;
      continue;
    }
    if (c === '(') depth++;
    else if (c === ')') {
      depth--;
      if (depth === 0) return i + 1;
    }
    i++;
  }
  return text.length;
}

/** The `(` that opens the comment closing at `close`, or -1. */
function findCommentStart(text: string, from: number, close: number): number {
  let i = from;
  while (i < close) {
    const c = text[i];
    if (c === '"') {
      i = skipQuoted(text, i);
      continue;
    }
    if (c === '(') {
      const end = skipComment(text, i);
      if (end === close + 1) return i;
      i = end;
      continue;
    }
    i++;
  }
  return -1;
}

function stripComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') {
      const end = skipQuoted(text, i);
      out += text.slice(i, end);
      i = end;
    } else if (c === '(') {
      i = skipComment(text, i);
    } else {
      out += c;
      i++;
    }
  }
  return out;
}
