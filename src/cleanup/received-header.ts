/**
 * The `Received:` header Postern prepends to every message it accepts from outside,
 * and the RFC 5322 date format it and the missing-header code use.
 *
 * Postfix counterpart: the Received header that smtpd(8), qmqpd(8) and pickup(8) write
 * (smtpd.c, qmqpd.c, pickup.c), in Postfix's layout:
 *
 * ```
 * Received: from HELO (NAME [ADDR])
 * 	(using TLSv1.3 with cipher CIPHER (256/256 bits))
 * 	by MYHOSTNAME (MAIL_NAME) with ESMTPS id QUEUEID
 * 	for <rcpt>; Sun, 29 Nov 2026 12:00:00 +0000 (UTC)
 * ```
 * and for local submissions `Received: by MYHOSTNAME (MAIL_NAME, from userid USER)` /
 * `id QUEUEID; DATE`. The `for` clause appears only when exactly one recipient is known
 * (never reveal a Bcc list).
 *
 * Does not: decide whether a source gets a Received header (internal mail does not;
 * cleanup.ts decides), or count hops.
 *
 * SECURITY: HELO names, client names and user names come from clients; every value is
 * reduced to printable ASCII without parentheses, brackets or semicolons that could
 * change the header's structure, and bounded in length, so a client cannot add a line
 * or forge a clause.
 *
 * STANDARDS: RFC 5321 section 4.4 (trace information), RFC 5322 section 3.3 (date),
 * section 3.6.7 (trace fields).
 *
 * @module
 */

import { formatAddress } from '../address/address.js';
import type { Address, QueueId, SubmissionSource } from '../types.js';
import { mailDate } from '../util/mail-date.js';

/** Longest client-supplied token written into a Received header. */
const TOKEN_LIMIT = 255;
/** A token traceToken() keeps as it is: printable ASCII without `(`, `)`, `;` or a backslash. */
const CLEAN_TOKEN = /^[\x21-\x27\x2a-\x3a\x3c-\x5b\x5d-\x7e]+$/;

/** A client-supplied value made safe for a trace header comment or token. */
export function traceToken(value: string | undefined, fallback = 'unknown'): string {
  if (value === undefined) return fallback;
  // Most tokens (host names, addresses, the protocol) are clean already: one test.
  if (value.length <= TOKEN_LIMIT && CLEAN_TOKEN.test(value)) return value;
  // Printable ASCII only; drop characters that delimit comments and the date.
  const cleaned = value
    .replace(/[^\x21-\x7e]/g, '?')
    .replace(/[();\\]/g, '?')
    .slice(0, TOKEN_LIMIT);
  return cleaned === '' ? fallback : cleaned;
}

/** `[192.0.2.1]` or `[IPv6:2001:db8::1]` (RFC 5321 section 4.1.3). */
function addressLiteral(address: string): string {
  return address.includes(':') ? `[IPv6:${traceToken(address)}]` : `[${traceToken(address)}]`;
}

/** What goes into a Received header. */
export interface ReceivedHeaderInput {
  readonly source: SubmissionSource;
  /** Postfix `myhostname`. */
  readonly myhostname: string;
  /** Postfix `mail_name`. */
  readonly mailName: string;
  readonly queueId: QueueId;
  /** When the message arrived, ms since the epoch. */
  readonly time: number;
  /** The one recipient known when the content started, as the client gave it. */
  readonly recipient?: Address;
  /** The SASL login, when `smtpdSaslAuthenticatedHeader` asks to show it. */
  readonly authenticatedSender?: string;
}

/**
 * The complete Received header, lines joined with CRLF and ending in CRLF.
 * A source with a client address gets the network form; anything else the local form.
 */
export function receivedHeader(input: ReceivedHeaderInput): string {
  const { source } = input;
  const date = mailDate(input.time);
  const host = traceToken(input.myhostname);
  const mailName = traceToken(input.mailName, 'Postern');
  const client = source.client;
  if (!client || client.address === '') {
    const user =
      source.localUser !== undefined ? `, from userid ${traceToken(source.localUser)}` : '';
    return `Received: by ${host} (${mailName}${user})\r\n\tid ${input.queueId}; ${date}\r\n`;
  }
  const name = traceToken(client.name);
  const helo = traceToken(source.helo, name);
  // One string built piece by piece (no array of lines to join): one per message.
  let out = `Received: from ${helo} (${name} ${addressLiteral(client.address)})\r\n`;
  if (source.tls) {
    const bits =
      source.tls.bits !== undefined ? ` (${source.tls.bits}/${source.tls.bits} bits)` : '';
    out += `\t(using ${traceToken(source.tls.protocol)} with cipher ${traceToken(source.tls.cipher)}${bits})\r\n`;
  }
  if (input.authenticatedSender !== undefined) {
    out += `\t(Authenticated sender: ${traceToken(input.authenticatedSender)})\r\n`;
  }
  out += `\tby ${host} (${mailName}) with ${traceToken(source.protocol, 'SMTP')} id ${input.queueId}`;
  if (input.recipient !== undefined) {
    out += `\r\n\tfor <${recipientToken(input.recipient)}>; ${date}\r\n`;
  } else {
    out += `; ${date}\r\n`;
  }
  return out;
}

/** Printable ASCII without `<`, `>`, `;` or a backslash: a `for` address kept as it is. */
const PLAIN_TOKEN = /^[\x20-\x3a\x3d\x3f-\x5b\x5d-\x7e]*$/;

/** A recipient in the `for` clause: external form, printable, bounded. */
function recipientToken(recipient: Address): string {
  const external = formatAddress(recipient);
  if (external.length <= 512 && PLAIN_TOKEN.test(external)) return external;
  return external
    .replace(/[^\x20-\x7e\u0080-\uffff]/g, '?')
    .replace(/[<>;\\]/g, '?')
    .slice(0, 512);
}
