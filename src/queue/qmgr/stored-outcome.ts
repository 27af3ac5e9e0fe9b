/**
 * Recipient outcomes as the queue manager stores and logs them: a delivery agent's
 * result with `softBounce` applied, the deferral for a routing failure, and the
 * delivery log line.
 *
 * Postfix counterpart: the `soft_bounce` handling of the delivery agents'
 * bounce_append() and the `to=<...>, relay=..., delay=..., dsn=..., status=...` line
 * of log_adhoc.c.
 *
 * @module
 */

import { formatAddress } from '../../address/address.js';
import { TableError } from '../../errors.js';
import { formatDelay, type Logger } from '../../log.js';
import type { Recipient, RecipientResult } from '../../types.js';
import { errorMessage } from '../../util/error-message.js';
import type { Mutable } from '../../util/mutable.js';
import { domainOf } from '../summary.js';
import type { MessageRecord, StoredOutcome } from '../types.js';

/** A result as stored at `now`; with `softBounce` a bounce becomes a deferral (5xx → 4xx). */
export function storedOutcome(
  result: RecipientResult,
  softBounce: boolean,
  now: number,
): StoredOutcome {
  let { status, reply } = result;
  if (status === 'bounced' && softBounce) {
    status = 'deferred';
    reply = reply.toTransient();
  }
  // Optional fields are set, not spread in: no object made per field (same key order).
  const outcome: Mutable<StoredOutcome> = {
    status,
    code: reply.code,
    enhanced: reply.enhanced,
    text: reply.text,
    time: now,
  };
  if (result.relay !== undefined) outcome.relay = result.relay;
  if (result.action !== undefined) outcome.action = result.action;
  if (result.remoteMta !== undefined) outcome.remoteMta = result.remoteMta;
  return outcome;
}

/** The deferral of a recipient whose route could not be found (4.3.0). */
export function routingFailure(err: unknown, now: number): StoredOutcome {
  const text =
    err instanceof TableError ? 'address resolver failure' : `internal error: ${errorMessage(err)}`;
  return { status: 'deferred', code: 451, enhanced: '4.3.0', text, relay: 'none', time: now };
}

/** The delivery line, logged under the agent's name as Postfix's agents log it. */
export function logDelivery(
  logger: Logger,
  component: string,
  record: MessageRecord,
  rcpt: Recipient,
  outcome: StoredOutcome,
): void {
  const orig =
    rcpt.originalAddress !== rcpt.address
      ? `, orig_to=<${formatAddress(rcpt.originalAddress)}>`
      : '';
  const delay = formatDelay(outcome.time - record.arrivalTime);
  const text = `to=<${formatAddress(rcpt.address)}>${orig}, relay=${outcome.relay ?? 'none'}, delay=${delay}, dsn=${outcome.enhanced}, status=${outcome.status} (${outcome.text})`;
  logger.info(component, record.queueId, text, {
    to: rcpt.address,
    domain: domainOf(rcpt.address),
    relay: outcome.relay ?? 'none',
    delay: (outcome.time - record.arrivalTime) / 1000,
    dsn: outcome.enhanced,
    status: outcome.status,
  });
}
