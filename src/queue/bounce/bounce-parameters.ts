/**
 * Bounce's parameters: how much of a message a notice returns, who sends the notices,
 * and which problems reach the postmaster (`notifyClasses` and its recipients).
 *
 * Postfix counterpart: bounce(8)'s parameters in postconf(5).
 *
 * @module
 */

import type { CoreParameters } from '../../config/core-parameters.js';
import { defineParameters, type ValuesOf } from '../../config/parameter-declaration.js';
import { param } from '../../config/parameter-kinds.js';
import type { QUEUE_PARAMETERS } from '../queue-parameters.js';

/**
 * Bounce's parameters.
 *
 * @example
 * ```ts
 * BOUNCE_PARAMETERS.notifyClasses.defaultText; // '["resource", "software", "2bounce"]'
 * ```
 */
export const BOUNCE_PARAMETERS = defineParameters({
  bounceSizeLimit: param.integer({
    postfix: 'bounce_size_limit',
    doc: 'The most bytes of the original message a bounce returns.',
    default: 50000,
  }),
  doubleBounceSender: param.string({
    postfix: 'double_bounce_sender',
    doc: "The sender of the postmaster's notices, and the address whose bounces are dropped instead of bounced again.",
    default: 'double-bounce',
  }),
  '2bounceNoticeRecipient': param.string({
    postfix: '2bounce_notice_recipient',
    doc: 'Who gets bounces that could not be delivered (class `2bounce`).',
    default: 'postmaster',
  }),
  bounceNoticeRecipient: param.string({
    postfix: 'bounce_notice_recipient',
    doc: 'Who gets copies of non-delivery notices (class `bounce`).',
    default: 'postmaster',
  }),
  delayNoticeRecipient: param.string({
    postfix: 'delay_notice_recipient',
    doc: 'Who gets copies of delay notices (class `delay`).',
    default: 'postmaster',
  }),
  errorNoticeRecipient: param.string({
    postfix: 'error_notice_recipient',
    doc: "Who gets the postmaster's error notices (classes `policy`, `protocol`, `resource`, `software`).",
    default: 'postmaster',
  }),
  notifyClasses: param.list({
    postfix: 'notify_classes',
    doc: "Problems reported to the postmaster — `bounce` (a copy of each non-delivery notice, headers only), `2bounce` (undeliverable notices), `delay` (a copy of each delay notice); `policy`, `protocol`, `resource`, `software` (a transcript of the SMTP session to `errorNoticeRecipient`). Postfix's default is `resource, software`, which drops undeliverable notices; Postern adds `2bounce` so a failed notice reaches the postmaster unless the operator says otherwise.",
    default: ['resource', 'software', '2bounce'],
  }),
});

/**
 * What Bounce reads: its own parameters, the queue lifetimes and the shared ones it
 * needs.
 *
 * @example
 * ```ts
 * const bounce = new Bounce({ submission, store, params: resolveParameters() satisfies BounceParameters });
 * ```
 */
export interface BounceParameters
  extends ValuesOf<typeof BOUNCE_PARAMETERS>,
    ValuesOf<typeof QUEUE_PARAMETERS>,
    Pick<CoreParameters, 'myhostname' | 'myorigin' | 'mydestination'> {}
