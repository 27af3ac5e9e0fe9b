/**
 * `postern/address`: mail addresses and domain names as Postern reads and writes
 * them — the path of `MAIL FROM`/`RCPT TO` with its ESMTP parameters, the split into
 * local part and domain, quoting, IDN (A-labels and U-labels) and xtext. This file only
 * re-exports.
 *
 * Postfix counterpart: tok822/quote_822_local (quoting), smtpd.c's address parsing,
 * midna_domain.c (IDN), valid_hostname.c, xtext.c.
 *
 * For a restriction, a content filter or an agent that looks at addresses the way the
 * rest of Postern does: an address here is the unquoted form (`john doe@example.com`),
 * and formatAddress() quotes it again for the wire.
 *
 * Does not: look anything up in DNS (`postern/dns`) or in a table (`postern/tables`).
 *
 * SECURITY: every input is hostile; a bad address is an SmtpError with the reply a
 * client should get, and the domain functions return `undefined` rather than throw.
 *
 * STANDARDS: RFC 5321 section 4.1.2 (paths), RFC 6531 (UTF-8 addresses), RFC 5890/5891
 * and UTS #46 (IDN), RFC 3461 section 4 (xtext).
 *
 * @example
 * ```ts
 * import { parseMailArgument, splitAddress, toAsciiDomain } from 'postern/address';
 *
 * const { address } = parseMailArgument('<ann@bücher.example> NOTIFY=NEVER', 'recipient');
 * toAsciiDomain(splitAddress(address).domain); // 'xn--bcher-kva.example'
 * ```
 *
 * @module postern/address
 */

export type { MailArgument } from '../address/address.js';
export { formatAddress, parseMailArgument, splitAddress } from '../address/address.js';
export {
  domainInfo,
  isValidDomain,
  toAsciiDomain,
  toUnicodeDomain,
} from '../address/domain.js';
export { decodeXtext, encodeXtext } from '../address/xtext.js';
