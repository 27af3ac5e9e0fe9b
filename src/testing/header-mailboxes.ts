/**
 * Mailboxes out of an address-list header (From, To, Cc, Bcc, Reply-To) as
 * `{ name, address }` pairs, the way a test wants to compare them.
 *
 * Postfix counterpart: none (Postfix never reads display names); the addr-specs are
 * found by the same scanner Cleanup uses for header rewriting (tok822's role), and only
 * the display name is added here: comments dropped, quoted strings unquoted, encoded
 * words (RFC 2047) decoded.
 *
 * Does not: validate addresses or domains; a group yields its members, not its name.
 *
 * STANDARDS: RFC 5322 section 3.4; RFC 2047 (encoded words in a phrase).
 *
 * @module
 */

import libmime from 'libmime';
import { findAddresses } from '../cleanup/header-addresses.js';

/**
 * A mailbox from a message header: the display name ('' when there is none) and the
 * address.
 *
 * @example
 * ```ts
 * const from: MailAddress | undefined = (await mta.waitForMessage()).from;
 * expect(from).toEqual({ name: 'Ann Example', address: 'ann@example.com' });
 * ```
 */
export interface MailAddress {
  /** The display name, decoded; '' when the header gave none. */
  readonly name: string;
  /** The address (local part unquoted). */
  readonly address: string;
}

/** A display name from its raw phrase: comments out, quotes off, encoded words decoded. */
function displayName(phrase: string): string {
  let text = '';
  let depth = 0;
  for (let i = 0; i < phrase.length; i++) {
    const c = phrase[i]!;
    if (depth > 0) {
      if (c === '\\') i++;
      else if (c === '(') depth++;
      else if (c === ')') depth--;
      continue;
    }
    if (c === '(') {
      depth = 1;
      continue;
    }
    if (c === '"') {
      // A quoted string: its content, with quoted-pairs unescaped.
      for (i++; i < phrase.length && phrase[i] !== '"'; i++) {
        if (phrase[i] === '\\' && i + 1 < phrase.length) i++;
        text += phrase[i];
      }
      continue;
    }
    text += c;
  }
  return libmime.decodeWords(text.replace(/\s+/g, ' ').trim());
}

/** The mailboxes of a raw (undecoded) address-list header value. */
export function parseMailboxes(value: string | undefined): MailAddress[] {
  if (!value) return [];
  return findAddresses(value).map((a) => ({
    name: a.phrase ? displayName(value.slice(a.phrase.start, a.phrase.end)) : '',
    address: a.address,
  }));
}
