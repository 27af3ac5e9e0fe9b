/**
 * Retry timing as qmgr(8) computes it.
 *
 * Postfix bases the next attempt on the message's age, not on a count of attempts:
 * the delay is the time since arrival, clamped to [minimal_backoff_time,
 * maximal_backoff_time], which roughly doubles the interval each time. A message whose
 * age reaches maximal_queue_lifetime (bounce_queue_lifetime for the null sender) is
 * returned to its sender; a lifetime of 0 means one attempt only.
 *
 * @module
 */

import type { QmgrParameters } from './qmgr-parameters.js';

/** The limits that drive retries. */
export type BackoffParameters = Pick<
  QmgrParameters,
  'minimalBackoffTime' | 'maximalBackoffTime' | 'maximalQueueLifetime' | 'bounceQueueLifetime'
>;

/** When the next attempt is due, ms since the epoch. */
export function nextAttemptTime(p: BackoffParameters, arrivalTime: number, now: number): number {
  const age = Math.max(0, now - arrivalTime);
  const delay = Math.min(p.maximalBackoffTime, Math.max(p.minimalBackoffTime, age));
  return now + delay;
}

/** Whether a message with deferred recipients has outlived its queue lifetime. */
export function isExpired(
  p: BackoffParameters,
  arrivalTime: number,
  sender: string,
  now: number,
): boolean {
  const lifetime = sender === '' ? p.bounceQueueLifetime : p.maximalQueueLifetime;
  return now - arrivalTime >= lifetime;
}
