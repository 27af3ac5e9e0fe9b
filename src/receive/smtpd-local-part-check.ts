/**
 * Local parts that no local delivery may be asked to handle, refused at RCPT whatever
 * `localRecipientMaps` says: a recipient in a local domain whose local part would be a
 * path (`../x`, `a/b`, `.`), a command (`"|cmd"`), an include directive, or holds
 * control characters.
 *
 * Postfix counterpart: none as such. Postfix's default local_recipient_maps (the passwd
 * file) never lists such names, and local(8) trusts getpwnam(); Postern's local agent
 * may accept every local part (an empty localRecipientMaps, the embedded default), so
 * smtpd refuses these at once instead of bouncing them later to a sender that may be
 * forged (mailbox-path.ts refuses them again at delivery).
 *
 * Does not: check a leading `-` (allowMinUser, in the Rewriter), or the domain.
 *
 * @module
 */

import { splitAddress } from '../address/address.js';
import type { ResolveResult } from '../rewrite/types.js';
import { printable, SmtpReply } from '../smtp-reply.js';

/**
 * What is wrong with a local part as a local recipient, or undefined.
 *
 * @example
 * ```ts
 * unsafeLocalPart('../x'); // 'the local part starts with "."'
 * unsafeLocalPart('alice+tag'); // undefined
 * ```
 */
export function unsafeLocalPart(local: string): string | undefined {
  if (/[\x00-\x1f\x7f-\x9f]/.test(local)) return 'the local part contains control characters';
  if (/[/\\]/.test(local)) return `the local part contains "${local.includes('/') ? '/' : '\\'}"`;
  if (local.startsWith('.')) return 'the local part starts with "."';
  if (local.startsWith('|')) return 'the local part starts with "|", the form of a command';
  if (/^:include:/i.test(local)) return 'the local part has the form of an :include: file';
  return undefined;
}

/**
 * smtpd's reply for a local recipient whose local part is unsafe (553 5.1.3, RFC 5321's
 * "mailbox name not allowed"), or undefined for any other recipient.
 *
 * @example
 * ```ts
 * unsafeLocalRecipient(await rewriter.resolve('"a/b"@localhost'), '"a/b"@localhost')?.toString();
 * // '553 5.1.3 <"a/b"@localhost>: Recipient address rejected: the local part contains "/"; it cannot name a mailbox'
 * ```
 */
export function unsafeLocalRecipient(
  resolved: ResolveResult,
  shown: string,
): SmtpReply | undefined {
  if (resolved.addressClass !== 'local') return undefined;
  const why = unsafeLocalPart(splitAddress(resolved.recipient).local);
  if (why === undefined) return undefined;
  return new SmtpReply(
    553,
    '5.1.3',
    `<${printable(shown)}>: Recipient address rejected: ${why}; it cannot name a mailbox`,
  );
}
