/**
 * RFC 5321 paths: parsing the argument of `MAIL FROM:` / `RCPT TO:` into Postfix's
 * internal address form plus ESMTP parameters, and formatting an internal address back
 * into the external (quoted) form.
 *
 * Postfix counterpart: smtpd.c extract_addr() and the tok822/quote_821_local.c pair
 * (internal form: the local part unquoted, `''` for the null sender `<>`).
 *
 * Does not: rewrite (append `@$myorigin`, strip a trailing dot, lower-case the domain —
 * see rewrite/canonical-form.ts), convert U-labels to A-labels, decide whether SMTPUTF8
 * was announced (the caller checks `utf8` against the MAIL parameters), or interpret
 * the meaning of ESMTP parameters (SIZE, BODY, NOTIFY... belong to the receiver).
 *
 * SECURITY: the argument is hostile input. Every failure is an SmtpError with a fixed
 * reply (never an echo of the input), control characters (NUL, CR, LF...) are rejected
 * anywhere, and the RFC 5321 section 4.5.3.1 length limits are enforced before an
 * address goes any further.
 *
 * STANDARDS: RFC 5321 section 4.1.2 (Path, Mailbox, esmtp-param), 4.1.3 (address
 * literals), 4.5.1 (`<Postmaster>` without a domain), 4.5.3.1 (size limits);
 * RFC 6531 section 3.3 (UTF-8 in local parts and domains).
 *
 * @module
 */

import { isIP } from 'node:net';
import { SmtpError } from '../errors.js';
import { SmtpReply } from '../smtp-reply.js';
import type { Address } from '../types.js';

/**
 * A parsed `MAIL FROM:` or `RCPT TO:` argument.
 *
 * @example
 * ```ts
 * const arg: MailArgument = parseMailArgument('<alice@example.com> SIZE=1000', 'sender');
 * arg.address; // 'alice@example.com'
 * ```
 */
export interface MailArgument {
  /** The address in internal form (local part unquoted); `''` for `<>`. */
  readonly address: Address;
  /** The address has non-ASCII characters: it needs SMTPUTF8 (RFC 6531). */
  readonly utf8: boolean;
  /** ESMTP parameters, keywords upper-cased; value `undefined` when given without `=`. */
  readonly params: ReadonlyMap<string, string | undefined>;
}

/** Options for parseMailArgument. */
export interface ParseMailArgumentOptions {
  /**
   * Postfix `strict_rfc821_envelopes`: when false, a bare address without `<>` is
   * accepted too. @default false
   */
  readonly strictRfc821Envelopes?: boolean;
}

/** RFC 5321 section 4.5.3.1.1. */
export const MAX_LOCAL_PART_OCTETS = 64;
/** RFC 5321 section 4.5.3.1.2. */
export const MAX_DOMAIN_OCTETS = 255;
/** RFC 5321 section 4.5.3.1.3: including the angle brackets. */
export const MAX_PATH_OCTETS = 256;

type Kind = 'sender' | 'recipient';

/** RFC 5322 atext (RFC 5321 section 4.1.2 Atom), as the body of a character class. */
const ATEXT_CHARS = "A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~";
/** One atom of ASCII atext, then more separated by single dots. */
const ATOMS = `[${ATEXT_CHARS}]+(?:\\.[${ATEXT_CHARS}]+)*`;
const ATEXT = new RegExp(`^[${ATEXT_CHARS}]$`);
/** RFC 6531 UTF8-non-ascii, less control and lone-surrogate code points. */
const BAD_NON_ASCII = /[\p{Cc}\p{Cs}]/u;
const LABEL_ASCII = /^[A-Za-z0-9_-]$/;
/** A domain of ASCII letters, digits, `_`, `-` and dots: the common case, checked in one scan. */
const ASCII_DOMAIN = /^[A-Za-z0-9_.-]*$/;
/** An ASCII Dot-string: atoms of atext separated by single dots, checked in one scan. */
const ASCII_DOT_STRING = new RegExp(`^${ATOMS}$`);
/** An address whose local part is an ASCII Dot-string (what formatAddress() leaves alone). */
const PLAIN_ADDRESS = new RegExp(`^${ATOMS}(?:@[^@]*)?$`);
/** A local part of ASCII atext and dots: the common case, checked in one scan. */
const ASCII_LOCAL = new RegExp(`[${ATEXT_CHARS}.]+`, 'y');

function octets(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** True when every character is US-ASCII (0..127). */
export function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

function addressError(kind: Kind, reason: string): SmtpError {
  const r =
    kind === 'sender'
      ? new SmtpReply(501, '5.1.7', 'Bad sender address syntax')
      : new SmtpReply(501, '5.1.3', 'Bad recipient address syntax');
  return new SmtpError(r, `${r.text}: ${reason}`);
}

function tooLongError(kind: Kind, what: string): SmtpError {
  const r =
    kind === 'sender'
      ? new SmtpReply(501, '5.1.7', `Bad sender address syntax: ${what} too long`)
      : new SmtpReply(501, '5.1.3', `Bad recipient address syntax: ${what} too long`);
  return new SmtpError(r);
}

function paramError(kind: Kind, reason: string): SmtpError {
  const r = new SmtpReply(
    501,
    '5.5.4',
    `Bad ${kind === 'sender' ? 'MAIL' : 'RCPT'} parameter syntax`,
  );
  return new SmtpError(r, `${r.text}: ${reason}`);
}

/** A non-ASCII code point acceptable in a UTF-8 local part or U-label. */
function okNonAscii(ch: string): boolean {
  return ch.codePointAt(0)! > 0x7f && !BAD_NON_ASCII.test(ch);
}

/**
 * Parses what follows `MAIL FROM:` or `RCPT TO:` (leading spaces allowed): a path in
 * angle brackets, then optional ESMTP parameters separated by spaces.
 *
 * @throws SmtpError `501 5.1.7` (sender) / `501 5.1.3` (recipient) for a bad or
 *   over-long address, `501 5.5.4` for bad parameter syntax.
 *
 * @example
 * ```ts
 * const { address, params } = parseMailArgument('<"john doe"@example.com> NOTIFY=NEVER', 'recipient');
 * // address: 'john doe@example.com'
 * ```
 */
export function parseMailArgument(
  argument: string,
  kind: Kind,
  options: ParseMailArgumentOptions = {},
): MailArgument {
  let i = 0;
  while (argument[i] === ' ' || argument[i] === '\t') i++;
  let inner: string;
  let rest: string;
  if (argument[i] === '<') {
    const end = findPathEnd(argument, i + 1);
    if (end < 0) throw addressError(kind, 'missing ">" or unbalanced quotes');
    inner = argument.slice(i + 1, end);
    rest = argument.slice(end + 1);
    if (rest !== '' && rest[0] !== ' ' && rest[0] !== '\t') {
      throw addressError(kind, 'text after ">" without a space');
    }
  } else {
    // strict_rfc821_envelopes = no: Postfix accepts `MAIL FROM:user@example.com`.
    if (options.strictRfc821Envelopes) throw addressError(kind, 'address not in <>');
    const end = findBareEnd(argument, i);
    inner = argument.slice(i, end);
    rest = argument.slice(end);
    if (inner === '') throw addressError(kind, 'no address');
    if (inner.includes('<') || inner.includes('>')) throw addressError(kind, 'stray angle bracket');
  }
  if (octets(inner) + 2 > MAX_PATH_OCTETS) throw tooLongError(kind, 'path');
  const address = parsePath(inner, kind);
  return { address, utf8: !isAscii(address), params: parseParams(rest, kind) };
}

/** Index of the `>` closing a path that starts at `from`, or -1. Quoted `>` does not count. */
function findPathEnd(s: string, from: number): number {
  let quoted = false;
  for (let j = from; j < s.length; j++) {
    const c = s[j];
    if (quoted) {
      if (c === '\\') j++;
      else if (c === '"') quoted = false;
    } else if (c === '"') {
      quoted = true;
    } else if (c === '>') {
      return j;
    } else if (c === '<') {
      return -1;
    }
  }
  return -1;
}

/** End of a bare (unbracketed) address: the first space outside quotes. */
function findBareEnd(s: string, from: number): number {
  let quoted = false;
  let j = from;
  for (; j < s.length; j++) {
    const c = s[j];
    if (quoted) {
      if (c === '\\') j++;
      else if (c === '"') quoted = false;
    } else if (c === '"') {
      quoted = true;
    } else if (c === ' ' || c === '\t') {
      break;
    }
  }
  return Math.min(j, s.length);
}

/** Parses the text between `<` and `>` into the internal form. */
function parsePath(inner: string, kind: Kind): Address {
  if (inner === '') {
    if (kind === 'sender') return '';
    throw addressError(kind, 'null recipient');
  }
  let mailbox = inner;
  if (inner[0] === '@') {
    // RFC 5321 section 4.1.2 A-d-l: accepted and ignored (section C, "source routes").
    mailbox = stripSourceRoute(inner, kind);
  }
  let local: string;
  let localLength: number;
  let pos: number;
  if (mailbox[0] === '"') {
    const q = parseQuoted(mailbox, kind);
    local = q.local;
    pos = q.end;
    localLength = octets(mailbox.slice(0, pos));
  } else {
    // The ASCII run is taken in one scan; a character it stops at is judged one by one.
    ASCII_LOCAL.lastIndex = 0;
    pos = ASCII_LOCAL.test(mailbox) ? ASCII_LOCAL.lastIndex : 0;
    while (pos < mailbox.length && mailbox[pos] !== '@') {
      const ch = String.fromCodePoint(mailbox.codePointAt(pos)!);
      if (!(ATEXT.test(ch) || ch === '.' || okNonAscii(ch))) {
        throw addressError(kind, 'invalid character in local part');
      }
      pos += ch.length;
    }
    local = mailbox.slice(0, pos);
    localLength = octets(local);
    if (local === '') throw addressError(kind, 'empty local part');
  }
  if (localLength > MAX_LOCAL_PART_OCTETS) throw tooLongError(kind, 'local part');
  if (pos === mailbox.length) {
    // RFC 5321 section 4.5.1: `RCPT TO:<Postmaster>` must be accepted without a domain.
    if (kind === 'recipient' && local.toLowerCase() === 'postmaster') return local;
    throw addressError(kind, 'no domain');
  }
  if (mailbox[pos] !== '@') throw addressError(kind, 'text after quoted local part');
  const domain = mailbox.slice(pos + 1);
  checkDomain(domain, kind);
  return `${local}@${domain}`;
}

/** Removes `@a,@b:` from `@a,@b:user@d`, checking each domain. */
function stripSourceRoute(inner: string, kind: Kind): string {
  let j = 0;
  for (;;) {
    if (inner[j] !== '@') throw addressError(kind, 'bad source route');
    let k = j + 1;
    let bracket = false;
    while (k < inner.length) {
      const c = inner[k];
      if (c === '[') bracket = true;
      else if (c === ']') bracket = false;
      else if (!bracket && (c === ',' || c === ':')) break;
      k++;
    }
    if (k >= inner.length) throw addressError(kind, 'bad source route');
    checkDomain(inner.slice(j + 1, k), kind);
    if (inner[k] === ':') return inner.slice(k + 1);
    j = k + 1;
  }
}

/** Parses a quoted-string local part at the start of `s`; returns it unquoted. */
function parseQuoted(s: string, kind: Kind): { local: string; end: number } {
  let out = '';
  let j = 1;
  while (j < s.length) {
    const cp = s.codePointAt(j)!;
    const ch = String.fromCodePoint(cp);
    if (ch === '"') return { local: out, end: j + 1 };
    if (ch === '\\') {
      // RFC 5321 quoted-pairSMTP: backslash followed by %d32-126.
      const next = s.charCodeAt(j + 1);
      if (!(next >= 32 && next <= 126)) throw addressError(kind, 'bad quoted pair');
      out += s[j + 1];
      j += 2;
      continue;
    }
    // qtextSMTP: %d32-33 / %d35-91 / %d93-126, plus UTF-8 (RFC 6531).
    if (!((cp >= 32 && cp <= 126) || okNonAscii(ch))) {
      throw addressError(kind, 'invalid character in quoted local part');
    }
    out += ch;
    j += ch.length;
  }
  throw addressError(kind, 'unterminated quoted string');
}

/** Checks an RFC 5321 Domain or address-literal (U-labels allowed, RFC 6531). */
function checkDomain(domain: string, kind: Kind): void {
  if (domain === '') throw addressError(kind, 'empty domain');
  if (octets(domain) > MAX_DOMAIN_OCTETS) throw tooLongError(kind, 'domain');
  if (domain[0] === '[') {
    if (!isAddressLiteral(domain)) throw addressError(kind, 'bad address literal');
    return;
  }
  // One trailing dot is tolerated (the rewriter strips it, as Postfix does).
  const body = domain.endsWith('.') ? domain.slice(0, -1) : domain;
  if (body === '') throw addressError(kind, 'empty domain');
  // An ASCII domain needs no per-character pass: its characters are all allowed.
  const ascii = ASCII_DOMAIN.test(body);
  for (const label of body.split('.')) {
    if (label === '' || (ascii ? label.length : octets(label)) > 63) {
      throw addressError(kind, 'bad domain label');
    }
    if (label.startsWith('-') || label.endsWith('-')) throw addressError(kind, 'bad domain label');
    if (ascii) continue;
    for (const ch of label) {
      // Underscores appear in real host names; Postfix's valid_hostname() allows them.
      if (!(LABEL_ASCII.test(ch) || okNonAscii(ch)))
        throw addressError(kind, 'bad domain character');
    }
  }
}

/** `[192.0.2.1]` or `[IPv6:2001:db8::1]` (RFC 5321 section 4.1.3). */
export function isAddressLiteral(domain: string): boolean {
  if (!domain.startsWith('[') || !domain.endsWith(']')) return false;
  const body = domain.slice(1, -1);
  if (/^ipv6:/i.test(body)) return isIP(body.slice(5)) === 6 && !body.includes('%');
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(body) && isIP(body) === 4;
}

const NO_PARAMS: ReadonlyMap<string, string | undefined> = new Map();

/** Only spaces and tabs (or nothing). */
function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09) return false;
  }
  return true;
}

/** RFC 5321 section 4.1.2 esmtp-param; keywords upper-cased, duplicates refused. */
function parseParams(rest: string, kind: Kind): ReadonlyMap<string, string | undefined> {
  // Most commands carry no parameters: one shared empty map, no split.
  if (isBlank(rest)) return NO_PARAMS;
  const params = new Map<string, string | undefined>();
  for (const word of rest.split(/[ \t]+/)) {
    if (word === '') continue;
    const eq = word.indexOf('=');
    const keyword = eq < 0 ? word : word.slice(0, eq);
    const value = eq < 0 ? undefined : word.slice(eq + 1);
    if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(keyword)) throw paramError(kind, 'bad keyword');
    // esmtp-value = 1*(%d33-60 / %d62-126)
    if (value !== undefined && !/^[\x21-\x3c\x3e-\x7e]+$/.test(value)) {
      throw paramError(kind, `bad value for ${keyword.toUpperCase()}`);
    }
    const key = keyword.toUpperCase();
    if (params.has(key)) throw paramError(kind, `duplicate ${key}`);
    params.set(key, value);
  }
  return params;
}

/**
 * Splits an internal address at the last `@`; `domain` is '' when there is none.
 *
 * @example
 * ```ts
 * splitAddress('alice@example.com'); // { local: 'alice', domain: 'example.com' }
 * splitAddress('postmaster'); // { local: 'postmaster', domain: '' }
 * ```
 */
export function splitAddress(address: Address): { local: string; domain: string } {
  const at = address.lastIndexOf('@');
  if (at < 0) return { local: address, domain: '' };
  return { local: address.slice(0, at), domain: address.slice(at + 1) };
}

/** RFC 5321 Dot-string (RFC 6531: UTF-8 atext allowed). */
function isDotString(local: string): boolean {
  if (ASCII_DOT_STRING.test(local)) return true;
  if (local === '') return false;
  for (const atom of local.split('.')) {
    if (atom === '') return false;
    for (const ch of atom) {
      if (!(ATEXT.test(ch) || okNonAscii(ch))) return false;
    }
  }
  return true;
}

/**
 * The external RFC 5321 form of an internal address, without angle brackets: the local
 * part is quoted when it is not a Dot-string (`john doe@x` → `"john doe"@x`), with `"`
 * and `\` escaped. `''` (the null sender) stays `''`.
 *
 * @example
 * ```ts
 * formatAddress('john doe@example.com'); // '"john doe"@example.com'
 * ```
 */
export function formatAddress(address: Address): string {
  if (address === '') return '';
  // A Dot-string local part is written as it is: the address is its own external form.
  if (PLAIN_ADDRESS.test(address)) return address;
  const { local, domain } = splitAddress(address);
  const at = address.includes('@') ? `@${domain}` : '';
  if (isDotString(local)) return `${local}${at}`;
  return `"${local.replace(/["\\]/g, '\\$&')}"${at}`;
}
