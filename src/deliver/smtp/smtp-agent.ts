/**
 * SmtpDeliveryAgent: delivers to the world over SMTP — Postern's smtp(8).
 *
 * Registered as the `smtp` and `relay` transports by default. The nexthop comes from the
 * Rewriter: the recipient domain (MX look-up), `relayhost`, or a transport(5) entry
 * (`[host]:port`, a list). Everything is in SmtpClient; this class fixes the protocol.
 *
 * @example
 * const agent = new SmtpDeliveryAgent({ params: resolveParameters({ relayhost: '[smtp.example.com]:587' }) });
 *
 * @module
 */

import { SmtpClient, type SmtpClientOptions } from './smtp-client.js';

/**
 * Delivers over SMTP to the MX hosts of a domain or to a relayhost, with STARTTLS, AUTH
 * and connection caching. Postfix counterpart: smtp(8).
 *
 * @example
 * ```ts
 * const smtp = new SmtpDeliveryAgent({ params: resolveParameters({ relayhost: '[smtp.example.com]:587' }) });
 * const agents = new AgentRegistry().register('smtp', smtp);
 * ```
 */
export class SmtpDeliveryAgent extends SmtpClient {
  constructor(options: SmtpClientOptions) {
    super(options, 'smtp');
  }
}
