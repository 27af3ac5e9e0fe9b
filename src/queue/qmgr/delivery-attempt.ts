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
  /** One result per recipient of the request, in the request's order. */
  readonly results: readonly RecipientResult[];
  readonly destination: DestinationStatus | undefined;
  /** The agent threw this (logged by the caller). */
  readonly error?: unknown;
}

/** Above this many recipients a report finds its recipient through a map, not a scan. */
const SCAN_LIMIT = 16;

export async function attemptDelivery(
  agent: DeliveryAgent | undefined,
  request: DeliveryRequest,
): Promise<AttemptResult> {
  const { recipients } = request;
  if (!agent) {
    const reply = new SmtpReply(451, '4.3.5', 'mail transport unavailable');
    const deferred: RecipientResult = { status: 'deferred', reply, relay: 'none' };
    return { results: recipients.map(() => deferred), destination: undefined };
  }
  const results: (RecipientResult | undefined)[] = new Array(recipients.length).fill(undefined);
  // A job has few recipients as a rule: a scan finds one without a map per attempt.
  const position =
    recipients.length > SCAN_LIMIT ? new Map(recipients.map((r, i) => [r.id, i])) : undefined;
  let destination: DestinationStatus | undefined;
  let settled = false;
  let reported = 0;

  const reporter = {
    recipient(id: RecipientId, result: RecipientResult): void {
      // Reports after the call settled, for unknown ids, or repeated, are ignored.
      if (settled) return;
      const i = position ? (position.get(id) ?? -1) : recipients.findIndex((r) => r.id === id);
      if (i < 0 || results[i] !== undefined) return;
      results[i] = result;
      reported++;
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
  if (reported < results.length) {
    // When in doubt, defer: even a permanent-looking thrown reply only defers.
    const reply =
      error instanceof SmtpError && !error.reply.positive
        ? error.reply.toTransient()
        : new SmtpReply(
            451,
            '4.3.0',
            error ? 'delivery agent failed; will retry' : 'no outcome reported; will retry',
          );
    for (let i = 0; i < results.length; i++) results[i] ??= { status: 'deferred', reply };
  }
  const done = results as RecipientResult[];
  return error === undefined
    ? { results: done, destination }
    : { results: done, destination, error };
}
