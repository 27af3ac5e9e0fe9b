/**
 * The hostile-address corpus: local parts an attacker or a careless program puts in an
 * envelope, for every way into Postern (SMTP, QMQP, `submit()`, `postern sendmail`).
 * Each entry is the local part as Postern keeps it (unquoted, as `submit()` and
 * `sendmail -f` take it) and how it goes on the wire: `smtpPath()` gives the bytes of an
 * SMTP path (quoted where RFC 5321 needs it; control characters raw, as an attacker sends
 * them), `wireAddress()` the bytes for QMQP.
 *
 * What every way in must show for each of them: nothing reaches a command's argv as an
 * option, nothing is written outside the spool, and a refusal is a 5xx (or a QMQP `D`,
 * or a sysexits code) with a reason.
 *
 * @module
 */

import { formatAddress } from '../../src/address/address.js';

/** What makes an entry hostile. */
export type HostileKind =
  | 'option'
  | 'command'
  | 'path'
  | 'control'
  | 'crlf'
  | 'eight-bit'
  | 'quoted'
  | 'long'
  | 'shell'
  | 'domain';

export interface HostileAddress {
  /** A short name for test titles. */
  readonly name: string;
  /** The local part, unquoted (as Postern keeps it). */
  readonly local: string;
  /** A domain of its own (a hostile domain); otherwise the caller's. */
  readonly domain?: string;
  readonly kinds: readonly HostileKind[];
  /**
   * `latin1`: the wire carries the characters as single bytes (ö as 0xF6, which is not
   * UTF-8); default `utf8`.
   */
  readonly encoding?: 'utf8' | 'latin1';
}

export const HOSTILE_ADDRESSES: readonly HostileAddress[] = [
  { name: 'sendmail option -oQ', local: '-oQ/tmp/evil', kinds: ['option', 'path'] },
  { name: 'bare option -f', local: '-f', kinds: ['option'] },
  { name: 'long option', local: '--help', kinds: ['option'] },
  { name: 'quoted leading dash', local: '-x y', kinds: ['option', 'quoted'] },
  { name: 'option in the extension', local: 'user+-oQ/tmp/evil', kinds: ['option', 'path'] },
  { name: 'pipe to a command', local: '|/bin/sh -c id', kinds: ['command', 'quoted'] },
  { name: 'pipe, no spaces', local: '|id', kinds: ['command'] },
  { name: 'absolute path', local: '/etc/passwd', kinds: ['path'] },
  { name: 'include file', local: ':include:/etc/passwd', kinds: ['path', 'command'] },
  { name: 'parent directory', local: '../x', kinds: ['path'] },
  { name: 'two levels up', local: '../../corpus-escape', kinds: ['path'] },
  { name: 'dot-dot', local: '..', kinds: ['path'] },
  { name: 'dot', local: '.', kinds: ['path'] },
  { name: 'slash inside', local: 'a/b', kinds: ['path'] },
  { name: 'hidden folder', local: '.Trash', kinds: ['path'] },
  { name: 'NUL byte', local: 'nul\0byte', kinds: ['control'] },
  { name: 'bare CR', local: 'cr\rhere', kinds: ['control'] },
  { name: 'tab', local: 'tab\there', kinds: ['control', 'quoted'] },
  { name: 'DEL', local: 'del\x7fhere', kinds: ['control'] },
  {
    name: 'CRLF and a second command',
    local: 'x\r\nRCPT TO:<victim@example.net>',
    kinds: ['crlf', 'control'],
  },
  { name: 'bare LF', local: 'lf\nhere', kinds: ['crlf', 'control'] },
  { name: 'UTF-8', local: 'jörg', kinds: ['eight-bit'] },
  { name: 'latin1 byte (not UTF-8)', local: 'jörg', kinds: ['eight-bit'], encoding: 'latin1' },
  { name: 'quoted space', local: 'john smith', kinds: ['quoted'] },
  { name: 'quoted at-sign', local: 'a@evil.example', kinds: ['quoted'] },
  { name: 'quoted quote and backslash', local: 'a"b\\c', kinds: ['quoted'] },
  { name: 'shell expansions', local: '$(id)`id`${HOME}', kinds: ['shell', 'quoted'] },
  { name: '5000 characters', local: 'a'.repeat(5000), kinds: ['long'] },
  { name: 'leading dash in the domain', local: 'user', domain: '-evil.example', kinds: ['domain'] },
  { name: 'domain with a slash', local: 'user', domain: 'evil/example', kinds: ['domain', 'path'] },
];

/** The address with `domain` (or the entry's own), as Postern keeps it. */
export function hostileAddress(entry: HostileAddress, domain: string): string {
  return `${entry.local}@${entry.domain ?? domain}`;
}

/** The bytes of the address for a wire protocol that takes it as is (QMQP). */
export function wireAddress(entry: HostileAddress, domain: string): Buffer {
  return Buffer.from(hostileAddress(entry, domain), entry.encoding ?? 'utf8');
}

/** The bytes of an SMTP path `<...>` for the address (quoted as an SMTP client would). */
export function smtpPath(entry: HostileAddress, domain: string): Buffer {
  const address = `${entry.local}@${entry.domain ?? domain}`;
  return Buffer.from(`<${formatAddress(address)}>`, entry.encoding ?? 'utf8');
}

/** Whether an SMTP client must announce SMTPUTF8 for this address. */
export function needsSmtputf8(entry: HostileAddress): boolean {
  return (entry.encoding ?? 'utf8') === 'utf8' && /[^\x00-\x7f]/.test(entry.local);
}
