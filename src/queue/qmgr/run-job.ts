/**
 * Running one delivery job: a delivery request for a group of a message's recipients,
 * handed to the transport's agent, every recipient's outcome logged and recorded; and
 * the deferral without an attempt of a job whose destination is dead.
 *
 * Postfix counterpart: qmgr_deliver.c (the request to a delivery agent and its
 * per-recipient status) and qmgr_defer.c (deferring the recipients of a dead
 * destination with the reason it died, logged with `relay=none` under `retry`).
 *
 * With a store several nodes share (PostgresQueueStore), a job first waits for one of
 * its destination's cluster-wide slots, so N nodes together stay within the
 * destination's concurrency limit instead of N times it. The wait is a short poll: a
 * full destination answers at once, and slots free as deliveries end.
 *
 * Does not do: decide when a job runs (the Scheduler) or finish its message (the
 * queue manager does when the message's last job is done).
 *
 * @module
 */

import { delay } from '../../clock.js';
import type { AgentRegistry } from '../../deliver/agent-registry.js';
import type { DestinationStatus } from '../../deliver/types.js';
import type { ComponentLogger, Logger } from '../../log.js';
import type { SmtpReply } from '../../smtp-reply.js';
import type { Clock } from '../../types.js';
import { errorMessage } from '../../util/error-message.js';
import type { DestinationSlot, QueueStore, RecipientOutcome, StoredOutcome } from '../types.js';
import { type ActiveMessage, abortOf, type Job } from './active-message.js';
import { attemptDelivery } from './delivery-attempt.js';
import { QueuedDeliveryRequest } from './delivery-request.js';
import type { QmgrParameters } from './qmgr-parameters.js';
import { logDelivery, storedOutcome } from './stored-outcome.js';

/** What running a job needs from the queue manager. */
export interface JobContext {
  readonly store: QueueStore;
  readonly agents: AgentRegistry;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly log: ComponentLogger;
  readonly params: QmgrParameters;
  /** The concurrency limit of a transport (for the cluster-wide slots). */
  concurrencyLimit(transport: string): number;
  /** The manager is stopping: stop waiting for a slot. */
  stopping(): boolean;
  /** Records outcomes in the store and in the message's recipient list. */
  record(message: ActiveMessage, outcomes: readonly RecipientOutcome[]): Promise<void>;
}

/**
 * Delivers one job and records its outcomes. Resolves with what the attempt said about
 * the destination (for the Scheduler's feedback). Never throws: a failure to record
 * aborts the message's other deliveries, and its recipients stay pending.
 */
export async function runJob(ctx: JobContext, job: Job): Promise<DestinationStatus | undefined> {
  const { message } = job;
  const { record } = message.claimed;
  let destination: DestinationStatus | undefined;
  let slot: DestinationSlot | undefined;
  try {
    if (ctx.store.acquireDestinationSlot) slot = await clusterSlot(ctx, job, message);
    const request = new QueuedDeliveryRequest(ctx.store, job);
    const attempt = await attemptDelivery(ctx.agents.get(job.transport), request);
    destination = attempt.destination;
    if (attempt.error !== undefined) {
      ctx.log.warning(
        record.queueId,
        `transport ${job.transport} failed: ${String((attempt.error as Error)?.message ?? attempt.error)}`,
      );
    }
    const outcomes = job.recipients.map((rcpt, i): RecipientOutcome => {
      const outcome = storedOutcome(attempt.results[i]!, ctx.params.softBounce, ctx.clock.now());
      if (outcome.status === 'sent') {
        if (message.sentNow) message.sentNow.push(rcpt.id);
        else message.sentNow = [rcpt.id];
      }
      logDelivery(ctx.logger, job.transport, record, rcpt, outcome);
      return { recipientId: rcpt.id, outcome };
    });
    await ctx.record(message, outcomes);
  } catch (err) {
    ctx.log.error(record.queueId, `recording outcomes failed: ${errorMessage(err)}`);
    abortOf(message).abort(err);
  } finally {
    if (slot) await slot.release().catch(() => undefined);
  }
  return destination;
}

/** Waits for one of the destination's cluster-wide slots, when the store has them. */
async function clusterSlot(
  ctx: JobContext,
  job: Job,
  message: ActiveMessage,
): Promise<DestinationSlot | undefined> {
  const store = ctx.store;
  if (!store.acquireDestinationSlot) return undefined;
  const limit = ctx.concurrencyLimit(job.transport);
  const key = `${job.transport}:${job.nexthop}`;
  for (let wait = 10; ; wait = Math.min(wait * 2, 500)) {
    const slot = await store.acquireDestinationSlot(key, limit);
    if (slot) return slot;
    if (message.abort?.signal.aborted || ctx.stopping())
      throw new Error('stopped while waiting for a destination slot');
    await delay(ctx.clock, wait).done;
  }
}

/** Defers a job of a dead destination without an attempt (Postfix's `retry` path). */
export async function deferDeadJob(ctx: JobContext, job: Job, reply: SmtpReply): Promise<void> {
  const { message } = job;
  const { record } = message.claimed;
  try {
    const transient = reply.positive ? reply : reply.toTransient();
    const outcome: StoredOutcome = {
      status: 'deferred',
      code: transient.code,
      enhanced: transient.enhanced,
      text: `delivery temporarily suspended: ${transient.text}`,
      relay: 'none',
      time: ctx.clock.now(),
    };
    const outcomes = job.recipients.map((r) => ({ recipientId: r.id, outcome }));
    for (const r of job.recipients) logDelivery(ctx.logger, 'retry', record, r, outcome);
    await ctx.record(message, outcomes);
  } catch (err) {
    ctx.log.error(record.queueId, `recording outcomes failed: ${errorMessage(err)}`);
  }
}
