/**
 * MessageIndex: the in-memory index of every message a store holds (state, due time,
 * lease, summary facts), from which `claim()` picks without scanning anything. Used
 * by MemoryQueueStore and FileQueueStore.
 *
 * Postfix counterpart: qmgr(8)'s in-memory active queue and its scans of incoming
 * and deferred (qmgr_active.c, qmgr_scan.c): take one from incoming and one from
 * deferred in turn, incoming oldest first, deferred only once its time has come.
 *
 * Memory: one entry object per message (facts inline, see summary.ts), found through
 * a QueueIdMap (a slot and 8 bytes of buckets outside the heap, not a Map entry), plus
 * a queue or heap slot in parallel arrays (due-heap.ts); stores attach their own
 * per-message data only while they need it.
 *
 * Does not do: any I/O.
 *
 * @module
 */

import type { QueueId } from '../../types.js';
import { assertLease, makeLease } from '../lease.js';
import { isSummarized, type MessageFacts, summaryRow, UNKNOWN_FACTS } from '../summary.js';
import type {
  ClaimOptions,
  Lease,
  QueueCounts,
  QueueSelection,
  QueueState,
  QueueSummary,
} from '../types.js';
import { ArrivalQueue, DueHeap } from './due-heap.js';
import { QueueIdMap } from './queue-id-hash.js';

/** One message as the index knows it. Stores hang their own data off `data`. */
export interface IndexedMessage<T> extends MessageFacts {
  readonly queueId: QueueId;
  state: QueueState;
  /** For `deferred`: when the next attempt is due (ms); 0 otherwise. */
  dueAt: number;
  /** The live lease while `active`; undefined while a release or removal is under way. */
  lease: Lease | undefined;
  /** The state it was last claimed from. */
  from: 'incoming' | 'deferred';
  /** Renewed on every move (unique in the index) so stale queue and heap slots are recognised. */
  generation: number;
  data: T;
}

const STATES: readonly QueueState[] = ['incoming', 'active', 'deferred', 'hold', 'corrupt'];

/**
 * The in-memory index of every message a store holds: state, due time, lease.
 * `incoming` is kept in arrival order, `deferred` in a heap by due time, `active` in a
 * set scanned only when a lease may have expired, so `claim()` costs O(claimed · log n).
 */
export class MessageIndex<T> {
  readonly #all = new QueueIdMap<IndexedMessage<T>>();
  readonly #incoming = new ArrivalQueue<IndexedMessage<T>>();
  readonly #active = new Set<IndexedMessage<T>>();
  readonly #deferred = new DueHeap<IndexedMessage<T>>();
  readonly #counts: QueueCounts = { incoming: 0, active: 0, deferred: 0, hold: 0, corrupt: 0 };
  /** No live lease expires before this (a lower bound; renewals only raise expiries). */
  #earliestExpiry = Number.POSITIVE_INFINITY;
  #generation = 0;
  readonly #isIncoming = (e: IndexedMessage<T>, generation: number): boolean =>
    e.state === 'incoming' && e.generation === generation;
  readonly #isDeferred = (e: IndexedMessage<T>, generation: number): boolean =>
    e.state === 'deferred' && e.generation === generation;

  get(queueId: QueueId): IndexedMessage<T> | undefined {
    return this.#all.get(queueId);
  }

  has(queueId: QueueId): boolean {
    return this.#all.has(queueId);
  }

  get size(): number {
    return this.#all.size;
  }

  /** Adds a message in `state`. Incoming messages are claimed in the order added. */
  add(queueId: QueueId, state: QueueState, data: T, dueAt = 0): IndexedMessage<T> {
    if (this.#all.has(queueId)) throw new Error(`${queueId}: already indexed`);
    const entry: IndexedMessage<T> = {
      queueId,
      state,
      dueAt: 0,
      lease: undefined,
      from: 'incoming',
      generation: ++this.#generation,
      arrivalTime: UNKNOWN_FACTS.arrivalTime,
      size: UNKNOWN_FACTS.size,
      sender: UNKNOWN_FACTS.sender,
      domains: UNKNOWN_FACTS.domains,
      pending: UNKNOWN_FACTS.pending,
      data,
    };
    this.#all.add(entry);
    this.#counts[state]++;
    this.#enter(entry, dueAt);
    return entry;
  }

  /** Moves a message to `state` (dropping any lease). */
  move(entry: IndexedMessage<T>, state: QueueState, dueAt = 0): void {
    this.#leave(entry);
    this.#counts[entry.state]--;
    entry.state = state;
    this.#counts[state]++;
    entry.lease = undefined;
    entry.generation = ++this.#generation;
    this.#enter(entry, dueAt);
  }

  /** Forgets a message. */
  delete(entry: IndexedMessage<T>): void {
    if (this.#all.get(entry.queueId) !== entry) return;
    this.#leave(entry);
    this.#counts[entry.state]--;
    entry.generation = ++this.#generation;
    entry.lease = undefined;
    this.#all.delete(entry.queueId);
  }

  #enter(entry: IndexedMessage<T>, dueAt: number): void {
    entry.dueAt = entry.state === 'deferred' ? dueAt : 0;
    if (entry.state === 'incoming') this.#incoming.push(entry);
    else if (entry.state === 'active') this.#active.add(entry);
    else if (entry.state === 'deferred') this.#deferred.push(entry, dueAt);
  }

  #leave(entry: IndexedMessage<T>): void {
    if (entry.state === 'active') this.#active.delete(entry);
    // incoming, deferred: the queue or heap slot goes stale (generation changes) and is
    // dropped lazily.
  }

  counts(): QueueCounts {
    return { ...this.#counts };
  }

  /** Earliest due time in `deferred`. */
  nextDueTime(): number | undefined {
    return this.#deferred.peekLive(this.#isDeferred)?.dueAt;
  }

  /** Messages in the given states (all when omitted), in queue ID order. */
  list(states?: readonly QueueState[]): IndexedMessage<T>[] {
    const want = new Set(states ?? STATES);
    const out: IndexedMessage<T>[] = [];
    for (const entry of this.#all.values()) if (want.has(entry.state)) out.push(entry);
    out.sort((a, b) => (a.queueId < b.queueId ? -1 : a.queueId > b.queueId ? 1 : 0));
    return out;
  }

  /** Calls `fn` for each message in the given states (all when omitted), in no order. */
  each(states: readonly QueueState[] | undefined, fn: (entry: IndexedMessage<T>) => void): void {
    for (const entry of this.#all.values()) {
      if (states === undefined || states.includes(entry.state)) fn(entry);
    }
  }

  /** Summary rows of the summarised messages in the given states, in queue ID order. */
  summaries(states: readonly QueueState[] | undefined): QueueSummary[] {
    const out: QueueSummary[] = [];
    for (const e of this.list(states))
      if (isSummarized(e)) out.push(summaryRow(e.queueId, e.state, e));
    return out;
  }

  /**
   * Visits each summarised message in the given states; the entry itself is the
   * summary (no row per message for a view of a big queue), valid during the call.
   */
  eachSummary(states: readonly QueueState[] | undefined, visit: (s: QueueSummary) => void): void {
    this.each(states, (entry) => {
      if (isSummarized(entry)) visit(entry);
    });
  }

  /**
   * The messages a queue operation names (unknown IDs are skipped), or all of them for
   * `'ALL'`, in queue ID order.
   */
  select(selection: QueueSelection): IndexedMessage<T>[] {
    if (selection === 'ALL') return this.list();
    const out: IndexedMessage<T>[] = [];
    for (const id of new Set(selection)) {
      const entry = this.#all.get(id);
      if (entry) out.push(entry);
    }
    return out;
  }

  /** Active messages, for stores that release every lease at open or close. */
  active(): IndexedMessage<T>[] {
    return [...this.#active];
  }

  /**
   * Picks up to `limit` claimable messages and gives each a new lease (state `active`).
   * Messages whose lease has expired come first (they have waited longest), then
   * incoming and due deferred messages in turn. Synchronous, so two concurrent claims
   * can never pick the same message.
   */
  claim(options: ClaimOptions): IndexedMessage<T>[] {
    const { now, limit, owner, leaseMs } = options;
    const picked: IndexedMessage<T>[] = [];
    if (!(limit > 0)) return picked;

    if (this.#earliestExpiry <= now) {
      let earliest = Number.POSITIVE_INFINITY;
      for (const entry of this.#active) {
        const lease = entry.lease;
        if (!lease) continue;
        if (lease.expiresAt <= now && picked.length < limit) {
          entry.lease = makeLease(entry.queueId, owner, now, leaseMs);
          entry.generation = ++this.#generation;
          picked.push(entry);
        }
        earliest = Math.min(earliest, entry.lease?.expiresAt ?? earliest);
      }
      this.#earliestExpiry = earliest;
    }

    let takeIncoming = true;
    while (picked.length < limit) {
      const incoming = this.#incoming.peekLive(this.#isIncoming);
      const deferred = this.#deferred.peekLive(this.#isDeferred);
      const deferredDue =
        deferred && (options.ignoreDueTime === true || deferred.dueAt <= now)
          ? deferred
          : undefined;
      let entry: IndexedMessage<T> | undefined;
      if (incoming && (takeIncoming || !deferredDue)) {
        this.#incoming.shift();
        entry = incoming;
      } else if (deferredDue) {
        this.#deferred.pop();
        entry = deferredDue;
      } else {
        break;
      }
      takeIncoming = !takeIncoming;
      const from = entry.state === 'deferred' ? 'deferred' : 'incoming';
      this.move(entry, 'active');
      entry.from = from;
      entry.lease = makeLease(entry.queueId, owner, now, leaseMs);
      picked.push(entry);
    }
    for (const entry of picked) {
      this.#earliestExpiry = Math.min(this.#earliestExpiry, entry.lease!.expiresAt);
    }
    return picked;
  }

  /** Replaces the live lease of an active message (renewal). */
  setLease(entry: IndexedMessage<T>, lease: Lease): void {
    entry.lease = lease;
    this.#earliestExpiry = Math.min(this.#earliestExpiry, lease.expiresAt);
  }

  /**
   * The message a lease is for, if that lease is current and unexpired at `now`;
   * throws LeaseLostError otherwise.
   */
  checkLease(lease: Lease, now: number): IndexedMessage<T> {
    const entry = this.#all.get(lease.queueId);
    assertLease(entry?.state === 'active' ? entry.lease : undefined, lease, now);
    return entry!;
  }

  /** Extends a current lease to `expiresAt` (QueueStore.renew); throws as checkLease does. */
  renewLease(lease: Lease, expiresAt: number, now: number): Lease {
    const entry = this.checkLease(lease, now);
    const renewed: Lease = { ...entry.lease!, expiresAt };
    this.setLease(entry, renewed);
    return renewed;
  }
}
