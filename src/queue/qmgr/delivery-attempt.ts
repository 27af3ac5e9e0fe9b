/**
 * One delivery attempt: hands a request to its agent and collects one result per
 * recipient, enforcing the DeliveryAgent contract on the agent's behalf.
 *
 * Postfix counterpart: qmgr_deliver.c (send a request, read back per-recipient
 * status). Whatever the agent does — settle without reporting some recipients, throw,
 * report twice, hang until aborted — every recipient ends with exactly one result:
 * unreported ones are deferred, with the thrown SmtpError's reply when there is one.
 * A transport with no registered agent defers (`4.3.5 mail transport unavailable`).
 *
 * @module
 */

import type { DeliveryAgent, DeliveryRequest, DestinationStatus } from '../../deliver/types.js';
import { SmtpError } from '../../errors.js';
import { SmtpReply } from '../../smtp-reply.js';
import type { RecipientId, RecipientResult } from '../../types.js';

/** What an attempt produced. */
export interface AttemptResult {
  readonly results: ReadonlyMap<RecipientId, RecipientResult>;
  readonly destination: DestinationStatus | undefined;
  /** The agent threw this (logged by the caller). */
  readonly error?: unknown;
}

export async function attemptDelivery(
  agent: DeliveryAgent | undefined,
  request: DeliveryRequest,
): Promise<AttemptResult> {
  const results = new Map<RecipientId, RecipientResult>();
  const wanted = new Set(request.recipients.map((r) => r.id));
  let destination: DestinationStatus | undefined;
  let settled = false;

  if (!agent) {
    const reply = new SmtpReply(451, '4.3.5', 'mail transport unavailable');
    for (const id of wanted) results.set(id, { status: 'deferred', reply, relay: 'none' });
    return { results, destination: undefined };
  }

  const reporter = {
    recipient(id: RecipientId, result: RecipientResult): void {
      // Reports after the call settled, for unknown ids, or repeated, are ignored.
      if (settled || !wanted.has(id) || results.has(id)) return;
      results.set(id, result);
    },
    destination(status: DestinationStatus): void {
      if (!settled) destination = status;
    },
  };

  let error: unknown;
  try {
    await agent.deliver(request, reporter);
  } catch (err) {
    error = err;
  }
  settled = true;
  if (results.size < wanted.size) {
    // When in doubt, defer: even a permanent-looking thrown reply only defers.
    const reply =
      error instanceof SmtpError && !error.reply.positive
        ? error.reply.toTransient()
        : new SmtpReply(
            451,
            '4.3.0',
            error ? 'delivery agent failed; will retry' : 'no outcome reported; will retry',
          );
    for (const id of wanted) {
      if (!results.has(id)) results.set(id, { status: 'deferred', reply });
    }
  }
  return { results, destination, ...(error === undefined ? {} : { error }) };
}
