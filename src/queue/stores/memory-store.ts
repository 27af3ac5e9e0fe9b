/**
 * MemoryQueueStore: a QueueStore held entirely in memory, for tests and for
 * `postern/testing`. It can be crashed: `crash()` returns a new store over the same
 * "durable" state, as a process restarted after a crash would see it, so a test can
 * check at-least-once delivery without a disk.
 *
 * Postfix counterpart: none (Postfix's queue is always on disk); it models the
 * durability rules of the file store: a commit, a `bounced` or `deferred` outcome and
 * a release are durable at once, a `sent` mark is lazy (held by this instance until the
 * message is released, another outcome of it is made durable, or the store closes) and
 * every lease lives only in the instance.
 *
 * Does not do: bound memory (content is kept whole, as Buffer chunks), share a queue
 * between processes. Lease expiry is judged by the `clock` option, which must be the
 * clock the QueueManager uses.
 *
 * @module
 */

import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { systemClock } from '../../clock.js';
import { QueueStoreError } from '../../errors.js';
import { type Logger, silentLogger } from '../../log.js';
import { isQueueId } from '../../queue-id.js';
import type { Clock, QueueId } from '../../types.js';
import { applyOutcomes, checkOutcomes, queueEntry, storedRecord } from '../lease.js';
import { summarizeInto } from '../summary.js';
import type {
  ClaimedMessage,
  ClaimOptions,
  Lease,
  MessageRecord,
  MessageWriter,
  NewMessageRecord,
  QueueCounts,
  QueueEntry,
  QueueSelection,
  QueueState,
  QueueStore,
  QueueSummary,
  RecipientOutcome,
  ReleaseTarget,
} from '../types.js';
import { AvailableListeners } from './available-listeners.js';
import { type IndexedMessage, MessageIndex } from './message-index.js';

/**
 * Options of MemoryQueueStore.
 *
 * @example
 * ```ts
 * const store = new MemoryQueueStore({ clock: new ManualClock(0) } satisfies MemoryQueueStoreOptions);
 * ```
 */
export interface MemoryQueueStoreOptions {
  /**
   * Judges lease expiry in `renew`, `recordOutcomes`, `release` and `remove`; pass the
   * QueueManager's clock (a ManualClock in tests).
   * @default systemClock
   */
  readonly clock?: Clock;
  /** @default silentLogger */
  readonly logger?: Logger;
}

/** What survives a crash. */
interface DurableMessage {
  state: QueueState;
  dueAt: number;
  record: MessageRecord;
  readonly content: readonly Buffer[];
}

/** The state shared by a store and the stores that `crash()` makes from it. */
class DurableState {
  readonly messages = new Map<QueueId, DurableMessage>();
}

/** Set by `crash()` while it constructs the next instance over the same state. */
let adopting: DurableState | undefined;

/** What one store instance keeps per message beyond the durable state. */
interface LiveData {
  /** `sent` outcomes not yet made durable (lost by `crash()`). */
  lazySent: RecipientOutcome[];
}

/**
 * A queue in memory: for tests and for embedders that accept losing queued mail on a
 * crash. It keeps the same contract as the durable stores.
 *
 * @example
 * ```ts
 * const store = new MemoryQueueStore();
 * const mta = new Mta({ queueStore: store });
 * ```
 */
export class MemoryQueueStore implements QueueStore {
  readonly #durable: DurableState;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #index = new MessageIndex<LiveData>();
  readonly #available: AvailableListeners;
  #state: 'new' | 'open' | 'closed' | 'crashed' = 'new';

  constructor(options: MemoryQueueStoreOptions = {}) {
    this.#durable = adopting ?? new DurableState();
    adopting = undefined;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#available = new AvailableListeners(queueMicrotask, this.#logger.for('queue'));
  }

  /**
   * Simulates a process crash: this instance stops working (every call rejects) and
   * the returned store sees the same durable state — committed messages, durable
   * outcomes, releases — but none of this instance's leases or lazy `sent` marks.
   * Call `open()` on it as on any store; it releases every message left `active`.
   */
  crash(): MemoryQueueStore {
    this.#state = 'crashed';
    adopting = this.#durable;
    try {
      return new MemoryQueueStore({ clock: this.#clock, logger: this.#logger });
    } finally {
      adopting = undefined;
    }
  }

  async open(): Promise<void> {
    if (this.#state === 'open') return;
    if (this.#state !== 'new')
      throw new QueueStoreError('this MemoryQueueStore was closed or crashed; make a new one');
    for (const [queueId, message] of this.#durable.messages) {
      // Exclusive to this instance: every old lease is released.
      if (message.state === 'active') message.state = 'incoming';
      const entry = this.#index.add(queueId, message.state, { lazySent: [] }, message.dueAt);
      summarizeInto(entry, message.record);
    }
    this.#state = 'open';
    if (this.#index.counts().incoming > 0) this.#available.notify();
  }

  async close(): Promise<void> {
    if (this.#state !== 'open') {
      this.#state = this.#state === 'crashed' ? 'crashed' : 'closed';
      return;
    }
    for (const entry of this.#index.active()) this.#flushLazy(entry);
    for (const entry of this.#index.active()) {
      // Leases lapse; the message stays active until the next open releases it.
      entry.lease = undefined;
    }
    this.#state = 'closed';
  }

  #assertOpen(): void {
    if (this.#state === 'open') return;
    if (this.#state === 'new')
      throw new QueueStoreError('the queue store is not open; call open() first');
    throw new QueueStoreError(`the queue store is ${this.#state}; open a new one`);
  }

  async create(queueId: QueueId): Promise<MessageWriter> {
    this.#assertOpen();
    if (!isQueueId(queueId))
      throw new QueueStoreError(`invalid queue ID "${queueId.slice(0, 60)}"`);
    if (this.#durable.messages.has(queueId))
      throw new QueueStoreError('a message with this queue ID exists', queueId);
    const chunks: Buffer[] = [];
    let done = false;
    const content = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(Buffer.from(chunk));
        callback();
      },
    });
    const commit = async (record: NewMessageRecord): Promise<void> => {
      if (done) throw new QueueStoreError('the message was already committed or aborted', queueId);
      if (record.queueId !== queueId) {
        throw new QueueStoreError(
          `the record names queue ID ${record.queueId}, the writer ${queueId}`,
          queueId,
        );
      }
      if (!content.writableEnded) content.end();
      await finished(content);
      this.#assertOpen();
      if (this.#durable.messages.has(queueId))
        throw new QueueStoreError('a message with this queue ID exists', queueId);
      done = true;
      const state: QueueState = record.hold ? 'hold' : 'incoming';
      this.#durable.messages.set(queueId, {
        state,
        dueAt: 0,
        record: storedRecord(record),
        content: chunks,
      });
      const added = this.#index.add(queueId, state, { lazySent: [] });
      summarizeInto(added, this.#durable.messages.get(queueId)!.record);
      if (state === 'incoming') this.#available.notify();
    };
    const abort = async (): Promise<void> => {
      if (done) return;
      done = true;
      chunks.length = 0;
      content.destroy();
    };
    // The content so far, copied so that an abort afterwards does not take it away.
    const openWritten = async (): Promise<Readable> => {
      if (content.writableEnded) await finished(content);
      return Readable.from([Buffer.concat(chunks)]);
    };
    return { queueId, content, commit, abort, openWritten };
  }

  async claim(options: ClaimOptions): Promise<ClaimedMessage[]> {
    this.#assertOpen();
    const out: ClaimedMessage[] = [];
    for (const entry of this.#index.claim(options)) {
      this.#flushLazy(entry);
      const message = this.#durable.messages.get(entry.queueId)!;
      message.state = 'active';
      out.push({ lease: entry.lease!, record: message.record, from: entry.from });
    }
    return out;
  }

  async renew(lease: Lease, expiresAt: number): Promise<Lease> {
    this.#assertOpen();
    return this.#index.renewLease(lease, expiresAt, this.#clock.now());
  }

  openContent(queueId: QueueId): Readable {
    const message = this.#state === 'open' ? this.#durable.messages.get(queueId) : undefined;
    if (!message) {
      const err = new QueueStoreError(
        this.#state === 'open' ? 'no such message in the queue' : 'the queue store is not open',
        isQueueId(queueId) ? queueId : undefined,
      );
      return new Readable({
        read() {
          this.destroy(err);
        },
      });
    }
    return Readable.from(message.content, { objectMode: false });
  }

  async recordOutcomes(lease: Lease, outcomes: readonly RecipientOutcome[]): Promise<void> {
    this.#assertOpen();
    const entry = this.#index.checkLease(lease, this.#clock.now());
    const message = this.#durable.messages.get(entry.queueId)!;
    checkOutcomes(message.record, outcomes);
    const durable = outcomes.filter((o) => o.outcome.status !== 'sent');
    const lazy = outcomes.filter((o) => o.outcome.status === 'sent');
    entry.data.lazySent.push(...lazy);
    // A durable write carries the lazy marks made before it, as one append would.
    if (durable.length > 0) this.#flushLazy(entry, durable);
  }

  async release(lease: Lease, target: ReleaseTarget): Promise<void> {
    this.#assertOpen();
    const entry = this.#index.checkLease(lease, this.#clock.now());
    this.#flushLazy(entry);
    const message = this.#durable.messages.get(entry.queueId)!;
    let record = message.record;
    if (target.state === 'deferred' && target.warnTime !== undefined)
      record = { ...record, warnTime: target.warnTime };
    if (target.state === 'hold') {
      const { holdReason: _old, ...rest } = record;
      record = target.reason === undefined ? rest : { ...rest, holdReason: target.reason };
    }
    if (target.state === 'corrupt') {
      this.#logger.warning('qmgr', entry.queueId, `moved to corrupt queue: ${target.reason}`);
    }
    const dueAt = target.state === 'deferred' ? target.dueAt : 0;
    message.record = record;
    message.state = target.state;
    message.dueAt = dueAt;
    this.#index.move(entry, target.state, dueAt);
    summarizeInto(entry, record);
    if (target.state === 'deferred') this.#available.notify();
  }

  async remove(lease: Lease): Promise<void> {
    this.#assertOpen();
    const entry = this.#index.checkLease(lease, this.#clock.now());
    this.#durable.messages.delete(entry.queueId);
    this.#index.delete(entry);
  }

  async counts(): Promise<QueueCounts> {
    this.#assertOpen();
    return this.#index.counts();
  }

  async list(
    options: { states?: readonly QueueState[]; limit?: number } = {},
  ): Promise<QueueEntry[]> {
    this.#assertOpen();
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    const out: QueueEntry[] = [];
    for (const entry of this.#index.list(options.states)) {
      if (out.length >= limit) break;
      const message = this.#durable.messages.get(entry.queueId);
      if (!message) continue;
      const record = applyOutcomes(message.record, entry.data.lazySent);
      out.push(queueEntry(record, entry.state, entry.dueAt));
    }
    return out;
  }

  async nextDueTime(): Promise<number | undefined> {
    this.#assertOpen();
    return this.#index.nextDueTime();
  }

  async forEachSummary(
    visit: (summary: QueueSummary) => void,
    options: { states?: readonly QueueState[] } = {},
  ): Promise<void> {
    this.#assertOpen();
    this.#index.eachSummary(options.states, visit);
  }

  async summaries(options: { states?: readonly QueueState[] } = {}): Promise<QueueSummary[]> {
    this.#assertOpen();
    return this.#index.summaries(options.states);
  }

  async hold(selection: QueueSelection, reason?: string): Promise<QueueId[]> {
    return this.#operate(selection, ['incoming', 'active', 'deferred'], (entry, message) => {
      const { holdReason: _old, ...rest } = message.record;
      message.record = reason === undefined ? rest : { ...rest, holdReason: reason };
      this.#moveTo(entry, message, 'hold', 0);
    });
  }

  async unhold(selection: QueueSelection): Promise<QueueId[]> {
    const now = this.#clock.now();
    const moved = await this.#operate(selection, ['hold'], (entry, message) => {
      const { holdReason: _old, ...rest } = message.record;
      message.record = rest;
      this.#moveTo(entry, message, 'deferred', now);
    });
    if (moved.length > 0) this.#available.notify();
    return moved;
  }

  async delete(selection: QueueSelection): Promise<QueueId[]> {
    return this.#operate(
      selection,
      ['incoming', 'active', 'deferred', 'hold', 'corrupt'],
      (entry) => {
        this.#durable.messages.delete(entry.queueId);
        this.#index.delete(entry);
      },
    );
  }

  async requeue(selection: QueueSelection): Promise<QueueId[]> {
    const moved = await this.#operate(selection, ['active', 'deferred'], (entry, message) => {
      this.#moveTo(entry, message, 'incoming', 0);
    });
    if (moved.length > 0) this.#available.notify();
    return moved;
  }

  async expedite(selection: QueueSelection): Promise<QueueId[]> {
    const now = this.#clock.now();
    const moved = await this.#operate(selection, ['deferred'], (entry, message) => {
      this.#moveTo(entry, message, 'deferred', now);
    });
    if (moved.length > 0) this.#available.notify();
    return moved;
  }

  /**
   * Runs a queue operation on the selected messages in `states`. An active message's
   * lease is revoked first (its lazy marks are kept), so its holder loses every write.
   */
  async #operate(
    selection: QueueSelection,
    states: readonly QueueState[],
    fn: (entry: IndexedMessage<LiveData>, message: DurableMessage) => void,
  ): Promise<QueueId[]> {
    this.#assertOpen();
    const done: QueueId[] = [];
    for (const entry of this.#index.select(selection)) {
      const message = this.#durable.messages.get(entry.queueId);
      if (!message || !states.includes(entry.state)) continue;
      this.#flushLazy(entry);
      fn(entry, message);
      done.push(entry.queueId);
    }
    return done;
  }

  #moveTo(
    entry: IndexedMessage<LiveData>,
    message: DurableMessage,
    state: QueueState,
    dueAt: number,
  ): void {
    message.state = state;
    message.dueAt = dueAt;
    this.#index.move(entry, state, dueAt);
    summarizeInto(entry, message.record);
  }

  onAvailable(listener: () => void): () => void {
    return this.#available.add(listener);
  }

  /** Makes the lazy `sent` marks (and `extra` outcomes after them) durable. */
  #flushLazy(entry: IndexedMessage<LiveData>, extra: readonly RecipientOutcome[] = []): void {
    const message = this.#durable.messages.get(entry.queueId);
    if (!message) return;
    const outcomes = [...entry.data.lazySent, ...extra];
    entry.data.lazySent = [];
    message.record = applyOutcomes(message.record, outcomes);
  }
}
