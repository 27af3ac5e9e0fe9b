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
import type { RecipientResult } from '../types.js';
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
  /** The result for the nexthop seen last: most mail is discarded for the same reason. */
  #last: { readonly nexthop: string; readonly result: RecipientResult } | undefined;

  async deliver(request: DeliveryRequest, reporter: DeliveryReporter): Promise<void> {
    const result = this.#resultFor(request.nexthop);
    for (const r of request.recipients) reporter.recipient(r.id, result);
  }

  #resultFor(nexthop: string): RecipientResult {
    const last = this.#last;
    if (last?.nexthop === nexthop) return last.result;
    const { enhanced, text } = splitNexthopDsn(nexthop, '2.0.0');
    // A success is always 2.x.x; the constructor forces the class to match 250.
    const reply = new SmtpReply(250, enhanced, text || 'discarded');
    const result: RecipientResult = { status: 'sent', reply, relay: 'none' };
    this.#last = { nexthop, result };
    return result;
  }
}
