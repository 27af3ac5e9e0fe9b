/**
 * Cleanup's status bits and the reply each one gives, in order of precedence.
 *
 * Postfix counterpart: cleanup_user.h (CLEANUP_STAT_*) and cleanup_strerror.c: a
 * session collects status bits while it runs and the first bit in table order decides
 * the reply. Content rejected by header or body checks (CLEANUP_STAT_CONT) replies
 * with the text the check gave, which the transaction holds.
 *
 * @module
 */

import { SmtpReply } from '../smtp-reply.js';

/** Temporary failure: a table could not answer, an expansion limit was hit. */
export const DEFER = 1 << 0;
/** The queue file could not be written. */
export const WRITE = 1 << 1;
/** The caller broke the protocol (content misused, no sender). */
export const BAD = 1 << 2;
/** Content rejected by a check (REJECT) or the content filter. */
export const CONT = 1 << 3;
/** No recipients. */
export const RCPT = 1 << 4;
/** Too many Received headers. */
export const HOPS = 1 << 5;
/** Too big. */
export const SIZE = 1 << 6;

const ORDER: readonly { bit: number; reply: () => SmtpReply }[] = [
  {
    bit: DEFER,
    reply: () => new SmtpReply(451, '4.3.0', 'Error: temporary address rewriting failure'),
  },
  { bit: WRITE, reply: () => new SmtpReply(451, '4.3.0', 'Error: queue file write error') },
  { bit: BAD, reply: () => new SmtpReply(451, '4.3.0', 'Error: internal protocol error') },
  { bit: CONT, reply: () => new SmtpReply(550, '5.7.1', 'message content rejected') },
  { bit: RCPT, reply: () => new SmtpReply(550, '5.1.0', 'Error: no recipients specified') },
  { bit: HOPS, reply: () => new SmtpReply(554, '5.4.0', 'Error: too many hops') },
  { bit: SIZE, reply: () => new SmtpReply(552, '5.3.4', 'Error: message file too big') },
];

/**
 * The reply for a status, or undefined when no bit is set. `deferReply` and
 * `contentReply` replace the default texts of DEFER and CONT.
 */
export function statusReply(
  status: number,
  overrides: { readonly defer?: SmtpReply; readonly content?: SmtpReply } = {},
): SmtpReply | undefined {
  const hit = ORDER.find((s) => (status & s.bit) !== 0);
  if (!hit) return undefined;
  if (hit.bit === DEFER && overrides.defer) return overrides.defer;
  if (hit.bit === CONT && overrides.content) return overrides.content;
  return hit.reply();
}
