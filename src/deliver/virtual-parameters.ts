/**
 * virtual(8)'s parameters: where virtual mailboxes lie, how large they may grow, and
 * whose uid and gid they are written with.
 *
 * Postfix counterpart: virtual(8)'s parameters in postconf(5).
 *
 * @module
 */

import type { CoreParameters } from '../config/core-parameters.js';
import { defineParameters, type ValuesOf } from '../config/parameter-declaration.js';
import { param } from '../config/parameter-kinds.js';
import type { RewriterParameters } from '../rewrite/rewrite-parameters.js';
import type { LocalParameters } from './local-parameters.js';

/**
 * virtual(8)'s parameters.
 *
 * @example
 * ```ts
 * VIRTUAL_PARAMETERS.virtualMailboxLimit.defaultText; // '51200000'
 * ```
 */
export const VIRTUAL_PARAMETERS = defineParameters({
  virtualMailboxBase: param.string({
    postfix: 'virtual_mailbox_base',
    doc: 'Every virtual(8) mailbox lies below it; empty = virtual delivery defers until it is set.',
    default: '',
  }),
  virtualMailboxLimit: param.integer({
    postfix: 'virtual_mailbox_limit',
    doc: 'The largest mailbox virtual(8) writes to, in bytes; 0 = no limit.',
    default: 51_200_000,
  }),
  virtualMinimumUid: param.integer({
    postfix: 'virtual_minimum_uid',
    doc: 'The smallest uid virtual(8) delivers as (from `virtualUidMaps`).',
    default: 100,
  }),
  virtualUidMaps: param.table({
    postfix: 'virtual_uid_maps',
    doc: "The numeric uid of each virtual recipient's mailbox (used when running as root).",
    default: undefined,
  }),
  virtualGidMaps: param.table({
    postfix: 'virtual_gid_maps',
    doc: "The numeric gid of each virtual recipient's mailbox (used when running as root).",
    default: undefined,
  }),
});

/**
 * What virtual(8) reads: its own parameters, mailbox locking (as local(8)) and the
 * shared ones it needs.
 *
 * @example
 * ```ts
 * const agent = new VirtualDeliveryAgent({ params: resolveParameters() satisfies VirtualParameters });
 * ```
 */
export interface VirtualParameters
  extends ValuesOf<typeof VIRTUAL_PARAMETERS>,
    Pick<CoreParameters, 'myhostname' | 'recipientDelimiter'>,
    Pick<LocalParameters, 'deliverLockAttempts' | 'deliverLockDelay' | 'staleLockTime'>,
    Pick<RewriterParameters, 'virtualMailboxMaps'> {}
