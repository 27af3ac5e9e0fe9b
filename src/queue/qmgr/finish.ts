/**
 * The end of a message's delivery pass: expiry, notices owed, then removal or
 * deferral with backoff.
 *
 * Postfix counterpart: qmgr_active_done() (qmgr_active.c). In order:
 * 1. recipients still pending past `maximalQueueLifetime` (`bounceQueueLifetime` for
 *    the null sender) are returned: logged `status=expired, returned to sender`, their
 *    last deferral reason becoming the failure reason;
 * 2. non-delivery notices owed for bounced recipients are queued (through Bounce) and
 *    only then marked as sent, so a crash re-sends rather than loses them;
 * 3. success notices for recipients delivered in this pass that asked for them
 *    (NOTIFY=SUCCESS), best effort;
 * 4. no recipient pending: the message is removed; otherwise a delay notice is sent
 *    once when its warning time has come (`delayWarningTime`, set on the first
 *    deferral; the stored warnTime then goes to 0), and the message is deferred until
 *    now + its age clamped to [minimalBackoffTime, maximalBackoffTime]. A pass cut
 *    short because the queue manager is stopping is deferred until now instead: the
 *    next claim (after a restart) retries it at once, as qmgr does with what it finds
 *    in `active/`.
 *
 * A lease revoked by a queue operation (hold, delete, requeue) ends the pass quietly:
 * the operation owns the message now.
 *
 * @module
 */

import { formatAddress } from '../../address/address.js';
import { LeaseLostError } from '../../errors.js';
import type { ComponentLogger } from '../../log.js';
import type { Clock, QueueId } from '../../types.js';
import { errorMessage } from '../../util/error-message.js';
import { recipientPosition } from '../lease.js';
import type {
  MessageRecord,
  QueueStore,
  RecipientOutcome,
  ReleaseTarget,
  StoredRecipient,
} from '../types.js';
import type { ActiveMessage } from './active-message.js';
import { isExpired, nextAttemptTime } from './backoff.js';
import type { QmgrParameters } from './qmgr-parameters.js';

/**
 * Sends delivery status notices (Bounce implements it).
 *
 * @example
 * ```ts
 * const notifier: Notifier = { notify: async () => undefined }; // send no notices
 * ```
 */
export interface Notifier {
  /**
   * Sends one notice of `kind` about `recipients`; resolves with its queue ID, or undefined when none is sent.
   */
  notify(
    record: MessageRecord,
    recipients: readonly StoredRecipient[],
    kind: 'failure' | 'delay' | 'success',
  ): Promise<QueueId | undefined>;
}

/** What finishing needs from the queue manager. */
export interface FinishContext {
  readonly store: QueueStore;
  readonly bounce: Notifier;
  readonly params: QmgrParameters;
  readonly clock: Clock;
  readonly log: ComponentLogger;
  /** Records outcomes in the store and in the message's recipient map. */
  record(message: ActiveMessage, outcomes: readonly RecipientOutcome[]): Promise<void>;
  /** The queue manager is stopping: what is left is retried at once by the next claim. */
  stopping(): boolean;
}

/** Finishes one pass of `message`. Never throws. */
export async function finishMessage(ctx: FinishContext, message: ActiveMessage): Promise<void> {
  const { record } = message.claimed;
  const id = record.queueId;
  const { params } = ctx;
  try {
    const now = ctx.clock.now();
    let pending = message.recipients.filter(isPending);

    if (pending.length > 0 && isExpired(params, record.arrivalTime, record.sender, now)) {
      const expired: RecipientOutcome[] = pending.map((r) => ({
        recipientId: r.id,
        outcome: {
          status: 'bounced',
          code: r.last?.code ?? 451,
          enhanced: r.last?.enhanced ?? '4.4.7',
          text: r.last?.text ?? 'message expired',
          time: now,
          ...(r.last?.relay ? { relay: r.last.relay } : {}),
          ...(r.last?.remoteMta ? { remoteMta: r.last.remoteMta } : {}),
        },
      }));
      await ctx.record(message, expired);
      ctx.log.info(
        id,
        `from=<${formatAddress(record.sender)}>, status=expired, returned to sender`,
      );
      pending = [];
    }

    const owed = message.recipients.filter(owesNotice);
    if (owed.length > 0) {
      await ctx.bounce.notify(current(message), owed, 'failure');
      await ctx.record(
        message,
        owed.map((r) => ({ recipientId: r.id, outcome: { ...r.last!, dsnSent: true } })),
      );
    }

    const delivered = successOwed(message);
    if (delivered.length > 0) {
      await ctx.bounce.notify(current(message), delivered, 'success').catch((err: unknown) => {
        ctx.log.warning(id, `success notification failed: ${errorMessage(err)}`);
      });
    }

    if (pending.length === 0) {
      await ctx.store.remove(message.lease);
      ctx.log.info(id, 'removed');
      return;
    }

    if (ctx.stopping()) {
      // The pass was cut short, not failed: retried at once, as Postfix's qmgr takes
      // what it finds in active/ at start-up.
      await ctx.store.release(message.lease, { state: 'deferred', dueAt: now });
      return;
    }
    let warnTime = record.warnTime;
    if (warnTime === 0 && message.firstPass && params.delayWarningTime > 0)
      warnTime = record.arrivalTime + params.delayWarningTime;
    if (warnTime > 0 && now >= warnTime) {
      await ctx.bounce.notify(current(message), pending, 'delay');
      warnTime = 0;
    }
    const target: ReleaseTarget = {
      state: 'deferred',
      dueAt: nextAttemptTime(params, record.arrivalTime, now),
      ...(warnTime !== record.warnTime ? { warnTime } : {}),
    };
    await ctx.store.release(message.lease, target);
  } catch (err) {
    if (err instanceof LeaseLostError) {
      ctx.log.info(id, 'delivery pass ended: the message was taken by a queue operation');
      return;
    }
    // The lease lapses or is released and the message is retried; nothing final is lost.
    ctx.log.error(id, `could not finish this delivery pass: ${errorMessage(err)}`);
    try {
      await ctx.store.release(message.lease, {
        state: 'deferred',
        dueAt: ctx.clock.now() + (ctx.stopping() ? 0 : params.minimalBackoffTime),
      });
    } catch {
      // Lease already lost: the new owner has it.
    }
  }
}

/** The message's record with its recipients as they are now (replaced, never changed in place). */
function current(message: ActiveMessage): MessageRecord {
  return { ...message.claimed.record, recipients: message.recipients };
}

/** Recipients delivered in this pass that asked for a success notice (NOTIFY=SUCCESS). */
function successOwed(message: ActiveMessage): StoredRecipient[] {
  const owed: StoredRecipient[] = [];
  for (const id of message.sentNow ?? []) {
    const r = message.recipients[recipientPosition(message.recipients, id)];
    if (r?.state === 'sent' && r.notify?.includes('SUCCESS')) owed.push(r);
  }
  return owed;
}

// Tests made once, not a closure per pass.
function isPending(r: StoredRecipient): boolean {
  return r.state === 'pending';
}

function owesNotice(r: StoredRecipient): boolean {
  return r.state === 'bounced' && !r.last?.dsnSent;
}
