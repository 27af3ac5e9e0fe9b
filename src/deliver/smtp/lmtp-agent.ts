/**
 * LmtpDeliveryAgent: delivers to a mailbox server (Dovecot, Cyrus) over LMTP —
 * Postern's lmtp(8).
 *
 * Nexthops: `unix:/run/dovecot/lmtp`, `inet:host:port`, `host` (port 24). No MX
 * look-up. LHLO instead of EHLO, and one reply per accepted recipient after the body,
 * each reported the moment it arrives (RFC 2033 section 4.2). Shares the SMTP client:
 * PIPELINING, TLS (`lmtpTlsSecurityLevel`, default `none`), AUTH (`lmtpSaslAuthEnable`),
 * the connection cache (`lmtpCacheConnection`).
 *
 * @example
 * const agent = new LmtpDeliveryAgent({ params });
 * // transports: { dovecot: { type: 'lmtp' } } and transport_maps → dovecot:unix:/run/dovecot/lmtp
 *
 * @module
 */

import { SmtpClient, type SmtpClientOptions } from './smtp-client.js';

/**
 * Delivers over LMTP (TCP or a UNIX socket) with one reply per recipient. Postfix
 * counterpart: lmtp(8).
 *
 * @example
 * ```ts
 * const mta = new Mta({
 *   agents: { dovecot: new LmtpDeliveryAgent({ params: resolveParameters() }) },
 *   transportMaps: { 'example.com': 'dovecot:unix:/run/dovecot/lmtp' },
 * });
 * ```
 */
export class LmtpDeliveryAgent extends SmtpClient {
  constructor(options: SmtpClientOptions) {
    super(options, 'lmtp');
  }
}
