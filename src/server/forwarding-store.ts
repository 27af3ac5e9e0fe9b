/**
 * ForwardingQueueStore: the queue store of an smtpd worker process. It can only start
 * messages (`create()`), whose writers forward content and commit to the primary process
 * and its real store; everything else a store does (claims, listings, queue operations)
 * belongs to the primary, and is refused here with an error that says so.
 *
 * Postfix counterpart: none as such — smtpd(8) never touches the queue itself; it hands
 * records to cleanup(8), which writes the queue file. Here Cleanup runs in the worker and
 * its store hands the bytes to the primary.
 *
 * Does not: re-read a message being written, so DKIM and header-adding content filters
 * are refused with worker processes (serve checks that at start).
 *
 * @module
 */

import type {
  ClaimedMessage,
  Lease,
  MessageWriter,
  QueueCounts,
  QueueEntry,
  QueueStore,
  QueueSummary,
} from '../queue/types.js';
import type { QueueId } from '../types.js';
import { ForwardingWriter } from './forwarding-writer.js';
import type { WorkerChannel } from './worker-channel.js';

/**
 * The write side of the primary's store, as seen from a worker.
 *
 * @example
 * ```ts
 * const store = new ForwardingQueueStore(channel);
 * const cleanup = new Cleanup({ params, store, rewriter, queueIds });
 * ```
 */
export class ForwardingQueueStore implements QueueStore {
  readonly #channel: WorkerChannel;

  constructor(channel: WorkerChannel) {
    this.#channel = channel;
  }

  async open(): Promise<void> {}
  async close(): Promise<void> {}

  async create(queueId: QueueId): Promise<MessageWriter> {
    const closed = this.#channel.closed;
    if (closed) throw closed;
    return new ForwardingWriter(this.#channel, queueId);
  }

  onAvailable(): () => void {
    return () => undefined;
  }

  claim(): Promise<ClaimedMessage[]> {
    return primaryOnly('claim');
  }
  renew(): Promise<Lease> {
    return primaryOnly('renew');
  }
  openContent(): never {
    throw notHere('openContent');
  }
  recordOutcomes(): Promise<void> {
    return primaryOnly('recordOutcomes');
  }
  release(): Promise<void> {
    return primaryOnly('release');
  }
  remove(): Promise<void> {
    return primaryOnly('remove');
  }
  counts(): Promise<QueueCounts> {
    return primaryOnly('counts');
  }
  list(): Promise<QueueEntry[]> {
    return primaryOnly('list');
  }
  nextDueTime(): Promise<number | undefined> {
    return primaryOnly('nextDueTime');
  }
  summaries(): Promise<QueueSummary[]> {
    return primaryOnly('summaries');
  }
  hold(): Promise<QueueId[]> {
    return primaryOnly('hold');
  }
  unhold(): Promise<QueueId[]> {
    return primaryOnly('unhold');
  }
  delete(): Promise<QueueId[]> {
    return primaryOnly('delete');
  }
  requeue(): Promise<QueueId[]> {
    return primaryOnly('requeue');
  }
  expedite(): Promise<QueueId[]> {
    return primaryOnly('expedite');
  }
}

function notHere(what: string): Error {
  return new Error(
    `QueueStore.${what}() is not available in an smtpd worker process: the primary process owns the queue`,
  );
}

function primaryOnly<T>(what: string): Promise<T> {
  return Promise.reject(notHere(what));
}
