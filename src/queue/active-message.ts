/**
 * The queue manager's in-memory state of one message in the active window, and of
 * one delivery job (a group of its recipients for one destination).
 *
 * Postfix counterpart: QMGR_MESSAGE and QMGR_ENTRY (qmgr.h).
 *
 * @module
 */

import type { Recipient, RecipientId, TimerHandle } from '../types.js';
import type { SchedulableJob } from './scheduler.js';
import type { ClaimedMessage, Lease, StoredRecipient } from './types.js';

export interface ActiveMessage {
  readonly claimed: ClaimedMessage;
  lease: Lease;
  /** Recipient states, updated as outcomes are recorded. */
  readonly recipients: Map<RecipientId, StoredRecipient>;
  /** Jobs not yet finished; the message finishes when it reaches 0 after routing. */
  jobsLeft: number;
  readonly abort: AbortController;
  renewTimer?: TimerHandle;
  /** Destination keys its jobs were queued under. */
  readonly destinations: Set<string>;
  /** Recipients delivered in this pass (for NOTIFY=SUCCESS notices). */
  readonly sentNow: RecipientId[];
  /** Claimed by a flush: deliver even through `deferTransports`. */
  readonly flush: boolean;
  /** First delivery pass (no earlier deferral): a delay warning time may be set. */
  readonly firstPass: boolean;
  /** Recipients it holds in memory (counted against qmgrMessageRecipientLimit). */
  readonly weight: number;
}

export interface Job extends SchedulableJob {
  readonly message: ActiveMessage;
  readonly nexthop: string;
  readonly recipients: readonly Recipient[];
}
