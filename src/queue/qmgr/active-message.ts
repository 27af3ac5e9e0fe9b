/**
 * The queue manager's in-memory state of one message in the active window, and of
 * one delivery job (a group of its recipients for one destination).
 *
 * Postfix counterpart: QMGR_MESSAGE and QMGR_ENTRY (qmgr.h).
 *
 * Memory: the active window holds up to `qmgrMessageActiveLimit` (20 000) of these,
 * most waiting in destination queues. So a message carries no timer (one sweep renews
 * every lease, lease-renewer.ts), no AbortController until a delivery asks for its signal,
 * and plain arrays rather than maps and sets for its few recipients and destinations.
 *
 * @module
 */

import type { Recipient, RecipientId } from '../../types.js';
import type { ClaimedMessage, Lease, StoredRecipient } from '../types.js';
import type { SchedulableJob } from './scheduler.js';

export interface ActiveMessage {
  readonly claimed: ClaimedMessage;
  lease: Lease;
  /** Recipient states (a copy of the record's), replaced as outcomes are recorded. */
  recipients: readonly StoredRecipient[];
  /** Jobs not yet finished; the message finishes when it reaches 0 after routing. */
  jobsLeft: number;
  /** Made when a delivery first reads its signal or the message is withdrawn (abortOf). */
  abort: AbortController | undefined;
  /** Destination keys its jobs were queued under, each once. */
  destinations: string[];
  /** Recipients delivered in this pass (for NOTIFY=SUCCESS notices); made on the first. */
  sentNow: RecipientId[] | undefined;
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

/** The message's abort controller, made on first use. */
export function abortOf(message: ActiveMessage): AbortController {
  message.abort ??= new AbortController();
  return message.abort;
}
