/**
 * A Submission port that reports each message it queues: the receivers' side of the
 * `received` metric.
 *
 * Postfix counterpart: none; operators count `client=` / `uid=` lines in the maillog.
 * Counting at the port rather than in the log means a message is counted only once it
 * is durable (a positive commit with a queue ID), whatever the receiver logs.
 *
 * Does not: change a transaction in any way — every call is passed through as it is.
 *
 * @module
 */

import type { Writable } from 'node:stream';
import type {
  Address,
  NewRecipient,
  QueueId,
  SenderParams,
  SubmissionAction,
  SubmissionPort,
  SubmissionResult,
  SubmissionSource,
  SubmissionTransaction,
} from '../types.js';

/** Wraps `port` so that `onQueued(source, queueId)` runs after every successful commit. */
export function countingSubmission(
  port: SubmissionPort,
  onQueued: (source: SubmissionSource, queueId: string) => void,
): SubmissionPort {
  return {
    async open(source) {
      return new CountingTransaction(await port.open(source), source, onQueued);
    },
  };
}

/** One transaction passed through, its commit counted (a class: one object per message). */
class CountingTransaction implements SubmissionTransaction {
  readonly #tx: SubmissionTransaction;
  readonly #source: SubmissionSource;
  readonly #onQueued: (source: SubmissionSource, queueId: string) => void;

  constructor(
    tx: SubmissionTransaction,
    source: SubmissionSource,
    onQueued: (source: SubmissionSource, queueId: string) => void,
  ) {
    this.#tx = tx;
    this.#source = source;
    this.#onQueued = onQueued;
  }

  get queueId(): QueueId {
    return this.#tx.queueId;
  }

  get content(): Writable {
    return this.#tx.content;
  }

  setSender(sender: Address, params?: SenderParams): void {
    this.#tx.setSender(sender, params);
  }

  addRecipient(recipient: NewRecipient): void {
    this.#tx.addRecipient(recipient);
  }

  apply(action: SubmissionAction): void {
    this.#tx.apply(action);
  }

  abort(): Promise<void> {
    return this.#tx.abort();
  }

  async commit(): Promise<SubmissionResult> {
    const result = await this.#tx.commit();
    if (result.queueId !== undefined && result.reply.positive)
      this.#onQueued(this.#source, result.queueId);
    return result;
  }
}
