/**
 * Envelope address checks that every way into the queue applies to a sender or
 * recipient before it takes it: SMTP MAIL FROM, QMQP, `submit()`, and `sendmail` and Pickup
 * (maildrop-checks.ts) for the sender and every recipient.
 *
 * Postfix counterpart: `allow_min_user` (mail_params.h): trivial-rewrite's resolve.c
 * flags an address that starts with `-`, smtpd's extract_addr() turns the flag into
 * `501 5.1.7 Bad sender address syntax` for MAIL FROM (smtpd_check_addr), and the
 * queue manager bounces such a recipient. Postern refuses it at every entry instead, so
 * that no such sender is ever queued, whatever the way in.
 *
 * An address is refused when it:
 * - starts with `-` and `allowMinUser` is off: a program that is given the address on
 *   its command line (a pipe transport's `${sender}`) would take it for an option;
 * - contains control characters (NUL, CR, LF, DEL, C1): they would split a header,
 *   an SMTP command or a log line;
 * - holds half of a UTF-16 surrogate pair (a JavaScript string that is not Unicode);
 * - is longer than `lineLengthLimit` bytes (2048), the longest line the SMTP server reads.
 * The null sender `<>` is always fine.
 *
 * Does not: check the domain (Rewriter.resolve() does, for recipients), or the local
 * part's use as a mailbox name (receive/smtpd-local-part-check.ts).
 *
 * SECURITY: this is the first line; the pipe agent and the local command delivery check
 * again before anything reaches a command's argv (pipe-argv.ts, command-delivery.ts).
 *
 * @module
 */

import { SmtpReply } from '../smtp-reply.js';
import type { Address } from '../types.js';

/**
 * The parameters the checks read (the address layer sits below config/, so it names
 * them here; the resolved MainParameters have both).
 */
export interface EnvelopeAddressParams {
  /** Postfix `allow_min_user`: a leading `-` is allowed. */
  readonly allowMinUser: boolean;
  /** Postfix `line_length_limit`: the longest address accepted, in bytes. */
  readonly lineLengthLimit: number;
}

/**
 * Why an envelope address is refused: the reply for a client and the reason for a log
 * line, an exception or a command's error message.
 *
 * @example
 * ```ts
 * const bad: AddressProblem | undefined = checkSenderAddress('-oQ/tmp@example.org', params);
 * bad?.reply.toString(); // '501 5.1.7 Bad sender address syntax'
 * ```
 */
export interface AddressProblem {
  /** `501 5.1.7 Bad sender address syntax` or `501 5.1.3 Bad recipient address syntax`. */
  readonly reply: SmtpReply;
  /** What is wrong and what to do, e.g. `it starts with "-" (set allowMinUser to allow it)`. */
  readonly reason: string;
}

/** Postfix smtpd's reply for a MAIL FROM address it cannot take. */
export const BAD_SENDER_SYNTAX = new SmtpReply(501, '5.1.7', 'Bad sender address syntax');
/** Postfix's reply for a recipient address trivial-rewrite flags. */
export const BAD_RECIPIENT_SYNTAX = new SmtpReply(501, '5.1.3', 'Bad recipient address syntax');

/** C0 controls, DEL and C1 controls. */
const CONTROL = /[\x00-\x1f\x7f-\x9f]/;
/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function problem(address: Address, params: EnvelopeAddressParams): string | undefined {
  if (CONTROL.test(address)) return 'it contains control characters (CR, LF, NUL or others)';
  if (LONE_SURROGATE.test(address)) return 'it is not valid Unicode (a lone surrogate)';
  const bytes = Buffer.byteLength(address, 'utf8');
  if (bytes > params.lineLengthLimit) {
    return `it is ${bytes} bytes long; the limit is lineLengthLimit (${params.lineLengthLimit})`;
  }
  if (!params.allowMinUser && address.startsWith('-')) {
    return 'it starts with "-", which a command could take for an option (allowMinUser is off)';
  }
  return undefined;
}

/**
 * Checks an envelope sender; undefined when it may be used. The null sender is fine.
 *
 * @example
 * ```ts
 * checkSenderAddress('alice@example.org', params); // undefined
 * checkSenderAddress('-f@example.org', params)?.reason; // 'it starts with "-", ...'
 * ```
 */
export function checkSenderAddress(
  sender: Address,
  params: EnvelopeAddressParams,
): AddressProblem | undefined {
  if (sender === '') return undefined;
  const reason = problem(sender, params);
  return reason === undefined ? undefined : { reply: BAD_SENDER_SYNTAX, reason };
}

/**
 * Checks an envelope recipient; undefined when it may be used.
 *
 * @example
 * ```ts
 * checkRecipientAddress('bob\r\n@example.org', params)?.reply.code; // 501
 * ```
 */
export function checkRecipientAddress(
  recipient: Address,
  params: EnvelopeAddressParams,
): AddressProblem | undefined {
  const reason = recipient === '' ? 'it is empty' : problem(recipient, params);
  return reason === undefined ? undefined : { reply: BAD_RECIPIENT_SYNTAX, reason };
}
