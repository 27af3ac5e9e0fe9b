/**
 * Bounce: turns recipient outcomes into delivery status notifications and submits them
 * through the Submission port, like any other mail.
 *
 * Postfix counterpart: bounce(8) (the bounce, defer and trace services) and the
 * sender/recipient rules of bounce_notify_service.c:
 * - a notice goes to the original envelope sender, from the null sender `<>`;
 * - when the original sender is null (a notice that itself failed), a failure notice
 *   goes to `2bounceNoticeRecipient` (postmaster) from `doubleBounceSender` (a double
 *   bounce) if `notifyClasses` has `2bounce` or `bounce`, else it is logged and dropped;
 * - postmaster copies per `notifyClasses`: with `bounce`, each non-delivery notice is
 *   copied (headers only) to `bounceNoticeRecipient`; with `delay`, each delay notice
 *   to `delayNoticeRecipient`; both from `doubleBounceSender`. A copy that cannot be
 *   queued is logged, never retried (the sender's notice is already committed);
 * - when the original sender is the double-bounce address, nothing is sent: the notice
 *   is logged and dropped, so notices never loop;
 * - RFC 3461 NOTIFY decides which recipients are reported: failure notices for NOTIFY
 *   unset or containing FAILURE, delay notices for unset or DELAY, success notices only
 *   for SUCCESS; NOTIFY=NEVER gets nothing.
 *
 * The notice is submitted with `{ component: 'bounce', protocol: 'local', internal:
 * true }` (no Received header, no header repair) and streamed — the original is read
 * from the store as the notice is written, never held in memory. On success it logs
 * `ID: sender non-delivery notification: NEWID` (`sender delay notification`, `sender
 * delivery status notification`, `postmaster non-delivery notification`) and resolves
 * with the new queue ID; it resolves with undefined when nothing was owed, and rejects
 * when the notice could not be queued (the caller then keeps the message and tries
 * again: a message is removed only once the DSN it owes is committed).
 *
 * Does not (yet): the bounce/defer logs of Postfix (the reasons live in the store's
 * per-recipient outcomes), `bounce_template_file`, VERP. The `resource`, `software`,
 * `policy` and `protocol` classes concern smtpd transcripts, not this service.
 *
 * @module
 */

import { pipeline } from 'node:stream/promises';
import { splitAddress } from '../../address/address.js';
import { systemClock } from '../../clock.js';
import { SmtpError } from '../../errors.js';
import { type ComponentLogger, type Logger, silentLogger } from '../../log.js';
import type { Address, Clock, DsnNotifyKeyword, QueueId, SubmissionPort } from '../../types.js';
import { errorMessage } from '../../util/error-message.js';
import type { MessageRecord, QueueStore, StoredRecipient } from '../types.js';
import type { BounceParameters } from './bounce-parameters.js';
import { type DsnKind, dsnMessage } from './dsn-message.js';

/**
 * What Bounce needs.
 *
 * @example
 * ```ts
 * const bounce = new Bounce({ submission: cleanup, store, params } satisfies BounceOptions);
 * ```
 */
export interface BounceOptions {
  /** Where notices are submitted (Cleanup). */
  readonly submission: SubmissionPort;
  /** Where the original content is read from (only `openContent` is used). */
  readonly store: Pick<QueueStore, 'openContent'>;
  /** The parameters read (`myhostname`, `bounceSizeLimit`, notice recipients...). */
  readonly params: BounceParameters;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Logs under component `bounce`. @default silentLogger */
  readonly logger?: Logger;
}

/** Whether a recipient with this NOTIFY wants a notice of this kind (RFC 3461 section 4.1). */
export function wantsNotice(
  notify: readonly DsnNotifyKeyword[] | undefined,
  kind: DsnKind,
): boolean {
  if (notify === undefined || notify.length === 0) return kind !== 'success';
  if (notify.includes('NEVER')) return false;
  return notify.includes(kind === 'failure' ? 'FAILURE' : kind === 'delay' ? 'DELAY' : 'SUCCESS');
}

/**
 * Makes RFC 3464 delivery status notices (bounce, delay, success) and submits them
 * through Cleanup. Postfix counterpart: bounce(8).
 *
 * @example
 * ```ts
 * const bounce = new Bounce({ submission: cleanup, store, params });
 * const manager = new QueueManager({ store, resolver: rewriter, agents, bounce, params });
 * ```
 */
export class Bounce {
  readonly #submission: SubmissionPort;
  readonly #store: Pick<QueueStore, 'openContent'>;
  readonly #params: BounceParameters;
  readonly #clock: Clock;
  readonly #log: ComponentLogger;

  constructor(options: BounceOptions) {
    this.#submission = options.submission;
    this.#store = options.store;
    this.#params = options.params;
    this.#clock = options.clock ?? systemClock;
    this.#log = (options.logger ?? silentLogger).for('bounce');
  }

  /**
   * Sends the notice of `kind` about `recipients` of `record`, if one is owed.
   *
   * @returns the notice's queue ID, or undefined when nothing was owed or sent
   * @throws SmtpError (or the store's error) when the notice could not be queued
   */
  async notify(
    record: MessageRecord,
    recipients: readonly StoredRecipient[],
    kind: DsnKind,
  ): Promise<QueueId | undefined> {
    const owed = recipients.filter((r) => wantsNotice(r.notify, kind));
    if (owed.length === 0) return undefined;

    if (this.#isDoubleBounceSender(record.sender)) {
      this.#log.warning(record.queueId, 'undeliverable postmaster notification discarded');
      return undefined;
    }

    const p = this.#params;
    const classes = p.notifyClasses;
    if (record.sender === '') {
      // A notice about a notice: only failures, and only to the postmaster.
      if (kind !== 'failure') return undefined;
      if (!classes.includes('2bounce') && !classes.includes('bounce')) {
        this.#log.info(
          record.queueId,
          'undeliverable notification discarded (notifyClasses has neither 2bounce nor bounce)',
        );
        return undefined;
      }
      return this.#send(record, owed, kind, {
        to: p['2bounceNoticeRecipient'],
        from: p.doubleBounceSender,
        label: 'postmaster non-delivery notification',
      });
    }
    const id = await this.#send(record, owed, kind, {
      to: record.sender,
      from: '',
      label:
        kind === 'failure'
          ? 'sender non-delivery notification'
          : kind === 'delay'
            ? 'sender delay notification'
            : 'sender delivery status notification',
    });
    const copyTo =
      kind === 'failure' && classes.includes('bounce')
        ? p.bounceNoticeRecipient
        : kind === 'delay' && classes.includes('delay')
          ? p.delayNoticeRecipient
          : undefined;
    if (copyTo !== undefined) {
      // The postmaster sees the reasons and the original's headers, never its body.
      await this.#send({ ...record, ret: 'HDRS' }, owed, kind, {
        to: copyTo,
        from: p.doubleBounceSender,
        label: `postmaster ${kind === 'failure' ? 'non-delivery' : 'delay'} notification copy`,
      }).catch(() => undefined);
    }
    return id;
  }

  /** Queues one notice; logs and rethrows when it cannot. */
  async #send(
    record: MessageRecord,
    owed: readonly StoredRecipient[],
    kind: DsnKind,
    envelope: { readonly to: Address; readonly from: Address; readonly label: string },
  ): Promise<QueueId | undefined> {
    const { to, from, label } = envelope;
    const tx = await this.#submission.open({
      component: 'bounce',
      protocol: 'local',
      internal: true,
    });
    try {
      tx.setSender(from, {
        bodyType: record.eightBit ? '8BITMIME' : '7BIT',
        ...(record.smtputf8 ? { smtputf8: true } : {}),
      });
      tx.addRecipient({ address: to });
      const message = dsnMessage({
        kind,
        record,
        recipients: owed,
        to,
        queueId: tx.queueId,
        params: this.#params,
        now: this.#clock.now(),
        openContent: () => this.#store.openContent(record.queueId),
      });
      await pipeline(message, tx.content);
      const result = await tx.commit();
      if (!result.reply.positive) {
        throw new SmtpError(result.reply, `cannot queue ${label}: ${result.reply.toString()}`);
      }
      if (result.queueId === undefined) return undefined;
      this.#log.info(record.queueId, `${label}: ${result.queueId}`, {
        notice: result.queueId,
        kind,
      });
      return result.queueId;
    } catch (err) {
      await tx.abort().catch(() => undefined);
      this.#log.warning(record.queueId, `${label} failed: ${errorMessage(err)}`);
      throw err;
    }
  }

  /** `double-bounce`, bare or at one of our own domains. */
  #isDoubleBounceSender(sender: Address): boolean {
    if (sender === '') return false;
    const configured = this.#params.doubleBounceSender.toLowerCase();
    if (configured.includes('@')) return sender.toLowerCase() === configured;
    const { local, domain } = splitAddress(sender);
    if (local.toLowerCase() !== configured) return false;
    if (domain === '') return true;
    const d = domain.toLowerCase().replace(/\.$/, '');
    const p = this.#params;
    return [p.myorigin, p.myhostname, ...p.mydestination].some((own) => own.toLowerCase() === d);
  }
}
