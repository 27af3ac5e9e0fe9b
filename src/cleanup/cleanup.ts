/**
 * Cleanup: the one way into the queue. Implements the Submission port: every receiver
 * (smtpd, qmqpd, pickup), Bounce, forwarding and the public `submit()` open a
 * transaction here, stream the content, give the envelope and commit.
 *
 * Postfix counterpart: cleanup(8). Each `open()` is one cleanup session: it takes a
 * queue ID from the QueueIdGenerator, creates the message in the QueueStore, and
 * returns a CleanupTransaction (cleanup-transaction.ts) that rewrites the envelope to
 * canonical form, prepends Received, repairs missing headers for local clients, drops
 * `messageDropHeaders`, counts hops and size, and commits the record — straight into
 * `hold` for the HOLD action.
 *
 * Logging (component `cleanup`, Postfix's lines): `ID: message-id=<...>`, `ID: hold:
 * ...`, `ID: discard: ...`, `ID: reject: ...`. The `from=<...>, size=N, nrcpt=N (queue
 * active)` line belongs to the QueueManager.
 *
 * Does not: header_checks / body_checks, canonical and virtual alias maps, Milters,
 * `in_flow_delay`. Mail Postern makes itself (`source.internal`) gets no Received
 * header and no header repair.
 *
 * @module
 */

import { systemClock } from '../clock.js';
import type { Parameters } from '../config/parameters.js';
import { SmtpError } from '../errors.js';
import { type ComponentLogger, type Logger, silentLogger } from '../log.js';
import type { QueueIdGenerator } from '../queue/queue-id.js';
import type { MessageWriter, QueueStore } from '../queue/types.js';
import type { Rewriter } from '../rewrite/rewriter.js';
import { SmtpReply } from '../smtp-reply.js';
import type { Clock, SubmissionPort, SubmissionSource, SubmissionTransaction } from '../types.js';
import { type CleanupContext, CleanupTransaction } from './cleanup-transaction.js';
import { LocalHeaderRewriteClients } from './missing-headers.js';

/** What Cleanup needs. */
export interface CleanupOptions {
  readonly params: Parameters;
  readonly store: QueueStore;
  /** Canonical rewriting of envelope addresses (trivial-rewrite). */
  readonly rewriter: Pick<Rewriter, 'rewrite'>;
  readonly queueIds: QueueIdGenerator;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Logs under component `cleanup`. @default silentLogger */
  readonly logger?: Logger;
}

export class Cleanup implements SubmissionPort {
  readonly #store: QueueStore;
  readonly #queueIds: QueueIdGenerator;
  readonly #clock: Clock;
  readonly #log: ComponentLogger;
  readonly #ctx: CleanupContext;

  /** @throws ConfigError when `localHeaderRewriteClients` has an entry it cannot use. */
  constructor(options: CleanupOptions) {
    this.#store = options.store;
    this.#queueIds = options.queueIds;
    this.#clock = options.clock ?? systemClock;
    this.#log = (options.logger ?? silentLogger).for('cleanup');
    this.#ctx = {
      params: options.params,
      rewriter: options.rewriter,
      clock: this.#clock,
      log: this.#log,
      headerClients: new LocalHeaderRewriteClients(options.params),
      dropHeaders: new Set(options.params.messageDropHeaders.map((h) => h.trim().toLowerCase())),
    };
  }

  /**
   * Opens a transaction with a new queue ID.
   *
   * @throws SmtpError `451 4.3.0 Error: queue file write error` when the store cannot
   *   create the message (the reason is logged).
   */
  async open(source: SubmissionSource): Promise<SubmissionTransaction> {
    const queueId = this.#queueIds.next();
    const arrivalTime = this.#clock.now();
    let writer: MessageWriter;
    try {
      writer = await this.#store.create(queueId);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.#log.warning(queueId, `cannot create queue file: ${reason}`);
      throw new SmtpError(new SmtpReply(451, '4.3.0', 'Error: queue file write error'), reason, {
        cause: err,
      });
    }
    return new CleanupTransaction(this.#ctx, source, queueId, writer, arrivalTime);
  }
}
