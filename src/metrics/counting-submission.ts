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

import type { SubmissionPort, SubmissionSource, SubmissionTransaction } from '../types.js';

/** Wraps `port` so that `onQueued(source, queueId)` runs after every successful commit. */
export function countingSubmission(
  port: SubmissionPort,
  onQueued: (source: SubmissionSource, queueId: string) => void,
): SubmissionPort {
  return {
    async open(source) {
      const tx = await port.open(source);
      const counted: SubmissionTransaction = {
        get queueId() {
          return tx.queueId;
        },
        get content() {
          return tx.content;
        },
        setSender: (sender, params) => tx.setSender(sender, params),
        addRecipient: (recipient) => tx.addRecipient(recipient),
        apply: (action) => tx.apply(action),
        abort: () => tx.abort(),
        async commit() {
          const result = await tx.commit();
          if (result.queueId !== undefined && result.reply.positive)
            onQueued(source, result.queueId);
          return result;
        },
      };
      return counted;
    },
  };
}
