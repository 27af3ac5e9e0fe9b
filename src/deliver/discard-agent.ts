/**
 * DiscardDeliveryAgent: claims delivery of every recipient and throws the mail away.
 *
 * Postfix counterpart: discard(8). The nexthop is the logged reason (`discard:spam
 * trap`), with an optional leading `D.S.N`; every recipient is reported sent with
 * `250 2.0.0 <reason>` (default "discarded"), so only success notices (NOTIFY=SUCCESS)
 * follow, as in Postfix.
 *
 * Does not: read the content.
 *
 * @module
 */

import { SmtpReply } from '../smtp-reply.js';
import { splitNexthopDsn } from './error-agent.js';
import type { DeliveryAgent, DeliveryReporter, DeliveryRequest } from './types.js';

/**
 * Reports every recipient delivered and drops the message; the nexthop may carry the
 * reason text. Postfix counterpart: discard(8).
 *
 * @example
 * ```ts
 * const mta = new Mta({ agents: { discard: new DiscardDeliveryAgent() }, transportMaps: { 'example.test': 'discard:' } });
 * ```
 */
export class DiscardDeliveryAgent implements DeliveryAgent {
  async deliver(request: DeliveryRequest, reporter: DeliveryReporter): Promise<void> {
    const { enhanced, text } = splitNexthopDsn(request.nexthop, '2.0.0');
    // A success is always 2.x.x; the constructor forces the class to match 250.
    const reply = new SmtpReply(250, enhanced, text || 'discarded');
    for (const r of request.recipients) {
      reporter.recipient(r.id, { status: 'sent', reply, relay: 'none' });
    }
  }
}
