/**
 * The queue manager's parameters: the active window (`qmgrMessageActiveLimit`,
 * `qmgrMessageRecipientLimit`), retries (`queueRunDelay`, the backoff times,
 * `delayWarningTime`), and the per-destination concurrency and recipient limits with
 * their feedback; a `transports` entry may set its own destination limits.
 *
 * Postfix counterpart: qmgr(8)'s parameters in postconf(5).
 *
 * @module
 */

import type { CoreParameters } from '../../config/core-parameters.js';
import { defineParameters, type ValuesOf } from '../../config/parameter-declaration.js';
import { param } from '../../config/parameter-kinds.js';
import type { QUEUE_PARAMETERS } from '../queue-parameters.js';

/**
 * The queue manager's parameters.
 *
 * @example
 * ```ts
 * QMGR_PARAMETERS.maximalBackoffTime.defaultText; // '"4000s"'
 * ```
 */
export const QMGR_PARAMETERS = defineParameters({
  qmgrMessageActiveLimit: param.integer({
    postfix: 'qmgr_message_active_limit',
    doc: "The most messages in the queue manager's active window.",
    default: 20000,
    min: 1,
  }),
  qmgrMessageRecipientLimit: param.integer({
    postfix: 'qmgr_message_recipient_limit',
    doc: 'The most recipients held in the active window.',
    default: 20000,
    min: 1,
  }),
  queueRunDelay: param.time({
    postfix: 'queue_run_delay',
    doc: 'How often the deferred queue is scanned for mail that is due.',
    default: '300s',
  }),
  minimalBackoffTime: param.time({
    postfix: 'minimal_backoff_time',
    doc: 'The shortest time a deferred message waits before its next attempt.',
    default: '300s',
    check: (minimal, p) =>
      minimal > (p.maximalBackoffTime as number)
        ? 'minimalBackoffTime is greater than maximalBackoffTime; make the minimum the smaller one'
        : undefined,
  }),
  maximalBackoffTime: param.time({
    postfix: 'maximal_backoff_time',
    doc: 'The longest time a deferred message waits before its next attempt.',
    default: '4000s',
  }),
  delayWarningTime: param.time({
    postfix: 'delay_warning_time',
    doc: 'How long mail is delayed before its sender is told; 0 = never.',
    default: '0h',
  }),
  defaultDestinationConcurrencyLimit: param.integer({
    postfix: 'default_destination_concurrency_limit',
    doc: 'The most deliveries in flight to one destination of a transport.',
    default: 20,
    min: 1,
  }),
  localDestinationConcurrencyLimit: param.integer({
    postfix: 'local_destination_concurrency_limit',
    doc: 'The most deliveries in flight to one local recipient.',
    default: 2,
    min: 1,
  }),
  defaultDestinationRecipientLimit: param.integer({
    postfix: 'default_destination_recipient_limit',
    doc: 'The most recipients in one delivery request.',
    default: 50,
    min: 1,
  }),
  localDestinationRecipientLimit: param.integer({
    postfix: 'local_destination_recipient_limit',
    doc: 'The most recipients in one local delivery request.',
    default: 1,
    min: 1,
  }),
  initialDestinationConcurrency: param.integer({
    postfix: 'initial_destination_concurrency',
    doc: "A destination's first concurrency window.",
    default: 5,
    min: 1,
  }),
  defaultDestinationConcurrencyPositiveFeedback: param.integer({
    postfix: 'default_destination_concurrency_positive_feedback',
    doc: "How much a destination's window grows per delivery without a connection or handshake failure.",
    default: 1,
  }),
  defaultDestinationConcurrencyNegativeFeedback: param.integer({
    postfix: 'default_destination_concurrency_negative_feedback',
    doc: "How much a destination's window shrinks per connection or handshake failure.",
    default: 1,
  }),
  defaultDestinationConcurrencyFailedCohortLimit: param.integer({
    postfix: 'default_destination_concurrency_failed_cohort_limit',
    doc: 'Failed pseudo-cohorts after which a destination is dead (its mail deferred without connection attempts).',
    default: 1,
    min: 1,
  }),
  defaultDestinationRateDelay: param.time({
    postfix: 'default_destination_rate_delay',
    doc: 'The pause between two deliveries to one destination.',
    default: '0s',
  }),
  deferTransports: param.list({
    postfix: 'defer_transports',
    doc: 'Transports whose mail stays queued (until they leave this list).',
    default: [],
  }),
});

/**
 * What the queue manager reads: its own parameters, the queue lifetimes and the shared
 * ones it needs.
 *
 * @example
 * ```ts
 * const lifetime: QmgrParameters['maximalQueueLifetime'] = resolveParameters().maximalQueueLifetime;
 * ```
 */
export interface QmgrParameters
  extends ValuesOf<typeof QMGR_PARAMETERS>,
    ValuesOf<typeof QUEUE_PARAMETERS>,
    Pick<CoreParameters, 'softBounce'> {}
