/**
 * HandoffBudget: the byte budget for content kept in memory after a commit, so a
 * just-accepted small message can go from Cleanup to the QueueManager without being
 * read back from disk.
 *
 * A commit asks for its content's bytes; if the budget has room the content stays in
 * memory until the message is delivered, released or moved (then the bytes are given
 * back), otherwise it is read from the journal like any other queued message. Memory
 * held this way is therefore never more than the limit, whatever the load.
 *
 * Postfix counterpart: none — qmgr(8) and the delivery agents always read the queue
 * file; Postern skips that read for mail still in memory, and after a crash reads it
 * from disk as Postfix does.
 *
 * @module
 */

import { QueueStoreError } from '../../../errors.js';

/** Default budget: 8 MiB (about 2,000 messages of 4 KB in flight). */
export const DEFAULT_HANDOFF_BYTES = 8 * 1024 * 1024;

/**
 * A byte budget: `take` grants bytes while they fit, `give` returns them.
 *
 * @example
 * ```ts
 * const budget = new HandoffBudget(8 * 1024 * 1024);
 * if (budget.take(content.length)) keep(content); // later: budget.give(content.length)
 * ```
 */
export class HandoffBudget {
  /** Most bytes held at once. */
  readonly limit: number;
  #used = 0;
  /** Requests granted and refused so far. */
  granted = 0;
  refused = 0;

  constructor(limit: number = DEFAULT_HANDOFF_BYTES) {
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new QueueStoreError(
        `the hand-off budget must be a whole number of bytes >= 0, not ${String(limit)}`,
      );
    }
    this.limit = limit;
  }

  /** Bytes held now. */
  get used(): number {
    return this.#used;
  }

  /** Grants `bytes` if they fit in what is left. */
  take(bytes: number): boolean {
    if (this.#used + bytes > this.limit) {
      this.refused++;
      return false;
    }
    this.#used += bytes;
    this.granted++;
    return true;
  }

  /** Gives back bytes granted earlier. */
  give(bytes: number): void {
    if (bytes > this.#used)
      throw new Error(`hand-off budget: giving back ${bytes} of ${this.#used} bytes held`);
    this.#used -= bytes;
  }
}
