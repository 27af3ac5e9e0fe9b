/**
 * Small helpers of SmtpSession: names for logs, TLS facts, replies from untrusted
 * parts, and quiet aborts.
 *
 * @module
 */

import type { TLSSocket } from 'node:tls';
import { printable, SmtpReply } from '../smtp-reply.js';
import type { ClientInfo, SubmissionTransaction, TlsInfo } from '../types.js';

/** Longest client string quoted in a log line. */
export const MAX_LOGGED = 100;

/** Postfix's `name[address]` for logs. */
export function namaddrOf(c: ClientInfo): string {
  const name = c.name ?? 'unknown';
  // Clients come back: the last one's text is reused for the same name and address.
  if (name === lastName && c.address === lastAddress) return lastNamaddr;
  const namaddr = `${printable(name)}[${printable(c.address)}]`;
  lastName = name;
  lastAddress = c.address;
  lastNamaddr = namaddr;
  return namaddr;
}

let lastName = '';
let lastAddress = '';
let lastNamaddr = '[]';

/** The protocol, cipher and bits of an established TLS session. */
export function tlsInfoOf(socket: TLSSocket): TlsInfo {
  const c = socket.getCipher();
  return {
    protocol: socket.getProtocol() ?? 'TLS',
    cipher: c?.standardName ?? c?.name ?? 'unknown',
    ...(c && 'bits' in c && typeof (c as { bits?: unknown }).bits === 'number'
      ? { bits: (c as { bits: number }).bits }
      : {}),
  };
}

/** Aborts a transaction without waiting for it. */
export function abortQuietly(tx: SubmissionTransaction): void {
  tx.abort().catch(() => {
    // abort() leaves nothing behind by contract; a failure here has nothing to add.
  });
}

/** A reply from parts another component made (a resolve error), or 451 if they are unusable. */
export function safeReply(code: number, enhanced: string, text: string): SmtpReply {
  try {
    return new SmtpReply(code, enhanced, text);
  } catch {
    return new SmtpReply(451, '4.3.0', 'Error: address resolution returned an invalid reply');
  }
}

/** A client string for a log line: printable and short. */
export function clip(text: string): string {
  return printable(text).slice(0, MAX_LOGGED);
}
