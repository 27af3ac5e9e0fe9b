/**
 * CleanupState: what one Cleanup transaction has learned about its message so far —
 * its phase, the status bits of every failure, the replies that replace their default
 * texts, and whether writing has stopped.
 *
 * Postfix counterpart: CLEANUP_STATE (cleanup.h) with its `errs` bits and the
 * `reason` a check or a lookup left, and cleanup_state.c. A failure never throws out
 * of the content path: it sets a bit here, stops writing, and the commit replies with
 * the first bit in cleanup_strerror.c's order (cleanup-status.ts).
 *
 * Does not: write anything or decide the commit; the content path
 * (cleanup-content.ts) and the transaction (cleanup-transaction.ts) read it.
 *
 * @module
 */

import { TableError } from '../errors.js';
import type { ComponentLogger } from '../log.js';
import { SmtpReply } from '../smtp-reply.js';
import type { QueueId } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import { CONT, DEFER, statusReply, WRITE } from './cleanup-status.js';
import type { FilterRun } from './filter-run.js';

/** Where the transaction stands: open for input, committing, or over. */
export type CleanupPhase = 'open' | 'committing' | 'committed' | 'failed' | 'aborted';

export class CleanupState {
  readonly queueId: QueueId;
  readonly #log: ComponentLogger;

  phase: CleanupPhase = 'open';
  /** Status bits of cleanup-status.ts. */
  status = 0;
  /** Stop writing to the store (an error is held, the message is discarded, or it is over). */
  stopped = false;
  /** The content filter's pass, once the content started (it is fed until writing stops). */
  filterRun: FilterRun | undefined;
  #deferReply: SmtpReply | undefined;
  #contentReply: SmtpReply | undefined;

  constructor(queueId: QueueId, log: ComponentLogger) {
    this.queueId = queueId;
    this.#log = log;
  }

  /** Stops writing and feeding the content filter. */
  stop(): void {
    this.stopped = true;
    this.filterRun?.feed.close();
  }

  /** A failure with a status bit; the first one is logged as the reject reason. */
  fail(bit: number, reason: string): void {
    if (this.status === 0) this.#log.info(this.queueId, `reject: ${reason}`);
    this.status |= bit;
    this.stop();
  }

  /** A check said REJECT: its reply is the one the client gets. */
  reject(reply: SmtpReply): void {
    this.#contentReply = reply;
    this.status |= CONT;
    this.stop();
  }

  /** A lookup table could not answer: the message is deferred. */
  tableFailed(what: string, err: unknown): void {
    const kind = err instanceof TableError ? err.kind : 'retry';
    const log = kind === 'config' ? this.#log.error : this.#log.warning;
    log.call(
      this.#log,
      this.queueId,
      `${what}: lookup problem -- message not accepted, try again later: ${errorMessage(err)}`,
    );
    this.#deferReply ??= new SmtpReply(
      451,
      '4.3.0',
      'Error: temporary lookup failure, try again later',
    );
    this.status |= DEFER;
    this.stop();
  }

  /** The queue file could not be written; logged once. */
  writeFailed(err: Error): void {
    if (this.phase === 'aborted' || this.phase === 'committed') return;
    if ((this.status & WRITE) === 0) {
      this.#log.warning(this.queueId, `queue file write error: ${errorMessage(err)}`);
    }
    this.status |= WRITE;
    this.stop();
  }

  /** A bug in the content path: the message is deferred as a write error. */
  internalFailure(err: unknown): void {
    this.#log.error(this.queueId, `unexpected error in the content path: ${errorMessage(err)}`);
    this.status |= WRITE;
    this.stop();
  }

  /** The reply the status gives, or undefined when no bit is set. */
  reply(): SmtpReply | undefined {
    if (this.status === 0) return undefined;
    return statusReply(this.status, {
      ...(this.#deferReply ? { defer: this.#deferReply } : {}),
      ...(this.#contentReply ? { content: this.#contentReply } : {}),
    });
  }
}
