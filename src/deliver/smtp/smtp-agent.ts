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

export class SmtpDeliveryAgent extends SmtpClient {
  constructor(options: SmtpClientOptions) {
    super(options, 'smtp');
  }
}
