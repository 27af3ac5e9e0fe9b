/**
 * Lease bookkeeping for stores that keep leases in memory (MemoryQueueStore,
 * FileQueueStore): lease tokens, the lease check every write makes, and MessageIndex,
 * the in-memory index of message states from which `claim()` picks without scanning
 * anything.
 *
 * Postfix counterpart: qmgr(8)'s in-memory active queue and its scans of incoming
 * and deferred (qmgr_active.c, qmgr_scan.c): take one from incoming and one from
 * deferred in turn, incoming oldest first, deferred only once its time has come.
 *
 * A lease is lost when its token is no longer the current one (another owner took
 * over after expiry, or the message was released) or when it has expired by the
 * store's clock. Recovery is lease expiry: an `active` message whose lease has expired
 * is claimable again.
 *
 * It also holds the record rules both stores share: how a new record is stored, how
 * an outcome changes a stored recipient (a final state is never undone), and the
 * listing row of a message.
 *
 * Does not do: any I/O. The stores persist state; this module only decides.
 *
 * @module
 */

import { randomUUID } from 'node:crypto';
import { LeaseLostError, QueueStoreError } from '../errors.js';
import type { QueueId, RecipientId } from '../types.js';
import type { MessageSummary } from './summary.js';
import type {
  ClaimOptions,
  Lease,
  MessageRecord,
  NewMessageRecord,
  QueueCounts,
  QueueEntry,
  QueueSelection,
  QueueState,
  RecipientOutcome,
  StoredRecipient,
} from './types.js';

/** A new random lease token (122 random bits). */
export function newLeaseToken(): string {
  return randomUUID();
}

/** A new lease for `queueId` owned by `owner`, valid for `leaseMs` from `now`. */
export function makeLease(queueId: QueueId, owner: string, now: number, leaseMs: number): Lease {
  return { queueId, owner, token: newLeaseToken(), expiresAt: now + leaseMs };
}

/**
 * Throws LeaseLostError unless `given` is the current lease and has not expired at
 * `now`. `current` is the lease the store holds for the message (undefined when none).
 */
export function assertLease(current: Lease | undefined, given: Lease, now: number): void {
  if (!current || current.token !== given.token || current.queueId !== given.queueId) {
    throw new LeaseLostError(given.queueId);
  }
  if (current.expiresAt <= now) {
    throw new LeaseLostError(
      given.queueId,
      'the lease on this message expired; it may be claimed again',
    );
  }
}

/** One message as the index knows it. Stores hang their own data off `data`. */
export interface IndexedMessage<T> {
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
  /** Facts for the inspection views; undefined until the store has read the record. */
  summary: MessageSummary | undefined;
  data: T;
}

interface HeapSlot {
  readonly dueAt: number;
  readonly queueId: QueueId;
  readonly generation: number;
}

function slotBefore(a: HeapSlot, b: HeapSlot): boolean {
  return a.dueAt < b.dueAt || (a.dueAt === b.dueAt && a.queueId < b.queueId);
}

/** A binary min-heap of deferred messages by due time, with lazy deletion. */
class DueHeap {
  readonly #slots: HeapSlot[] = [];

  get size(): number {
    return this.#slots.length;
  }

  push(slot: HeapSlot): void {
    const s = this.#slots;
    s.push(slot);
    let i = s.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!slotBefore(s[i]!, s[p]!)) break;
      [s[i], s[p]] = [s[p]!, s[i]!];
      i = p;
    }
  }

  peek(): HeapSlot | undefined {
    return this.#slots[0];
  }

  pop(): HeapSlot | undefined {
    const s = this.#slots;
    const top = s[0];
    const last = s.pop();
    if (s.length > 0 && last) {
      s[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < s.length && slotBefore(s[l]!, s[m]!)) m = l;
        if (r < s.length && slotBefore(s[r]!, s[m]!)) m = r;
        if (m === i) break;
        [s[i], s[m]] = [s[m]!, s[i]!];
        i = m;
      }
    }
    return top;
  }
}

const STATES: readonly QueueState[] = ['incoming', 'active', 'deferred', 'hold', 'corrupt'];

/**
 * The in-memory index of every message a store holds: state, due time, lease.
 * `incoming` is kept in arrival order, `deferred` in a heap by due time, `active` in a
 * map scanned only when a lease may have expired, so `claim()` costs O(claimed · log n).
 */
export class MessageIndex<T> {
  readonly #all = new Map<QueueId, IndexedMessage<T>>();
  /** Incoming in arrival order; slots go stale like the heap's and are skipped. */
  #incoming: HeapSlot[] = [];
  #incomingHead = 0;
  readonly #active = new Set<QueueId>();
  readonly #deferred = new DueHeap();
  readonly #counts: QueueCounts = { incoming: 0, active: 0, deferred: 0, hold: 0, corrupt: 0 };
  /** No live lease expires before this (a lower bound; renewals only raise expiries). */
  #earliestExpiry = Number.POSITIVE_INFINITY;
  #generation = 0;

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
      summary: undefined,
      data,
    };
    this.#all.set(queueId, entry);
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
    if (entry.state === 'incoming') {
      this.#incoming.push({ dueAt: 0, queueId: entry.queueId, generation: entry.generation });
    } else if (entry.state === 'active') this.#active.add(entry.queueId);
    else if (entry.state === 'deferred') {
      this.#deferred.push({ dueAt, queueId: entry.queueId, generation: entry.generation });
    }
  }

  #leave(entry: IndexedMessage<T>): void {
    if (entry.state === 'active') this.#active.delete(entry.queueId);
    // incoming, deferred: the queue or heap slot goes stale (generation changes) and is
    // dropped lazily.
  }

  /** The oldest live incoming message, dropping stale slots. */
  #peekIncoming(): IndexedMessage<T> | undefined {
    while (this.#incomingHead < this.#incoming.length) {
      const slot = this.#incoming[this.#incomingHead]!;
      const entry = this.#all.get(slot.queueId);
      if (entry?.state === 'incoming' && entry.generation === slot.generation) return entry;
      this.#incomingHead++;
    }
    this.#incoming = [];
    this.#incomingHead = 0;
    return undefined;
  }

  #shiftIncoming(): void {
    this.#incomingHead++;
    if (this.#incomingHead > 1024 && this.#incomingHead * 2 > this.#incoming.length) {
      this.#incoming = this.#incoming.slice(this.#incomingHead);
      this.#incomingHead = 0;
    }
  }

  #live(slot: HeapSlot): IndexedMessage<T> | undefined {
    const entry = this.#all.get(slot.queueId);
    if (entry?.state !== 'deferred' || entry.generation !== slot.generation) return undefined;
    return entry;
  }

  /** The first live slot of the deferred heap, dropping stale ones. */
  #peekDeferred(): IndexedMessage<T> | undefined {
    for (;;) {
      const slot = this.#deferred.peek();
      if (!slot) return undefined;
      const entry = this.#live(slot);
      if (entry) return entry;
      this.#deferred.pop();
    }
  }

  counts(): QueueCounts {
    return { ...this.#counts };
  }

  /** Earliest due time in `deferred`. */
  nextDueTime(): number | undefined {
    return this.#peekDeferred()?.dueAt;
  }

  /** Messages in the given states (all when omitted), in queue ID order. */
  list(states?: readonly QueueState[]): IndexedMessage<T>[] {
    const want = new Set(states ?? STATES);
    const out: IndexedMessage<T>[] = [];
    for (const entry of this.#all.values()) if (want.has(entry.state)) out.push(entry);
    out.sort((a, b) => (a.queueId < b.queueId ? -1 : a.queueId > b.queueId ? 1 : 0));
    return out;
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
    const out: IndexedMessage<T>[] = [];
    for (const id of this.#active) {
      const entry = this.#all.get(id);
      if (entry) out.push(entry);
    }
    return out;
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
      for (const id of this.#active) {
        const entry = this.#all.get(id);
        const lease = entry?.lease;
        if (!entry || !lease) continue;
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
      const incoming = this.#peekIncoming();
      const deferred = this.#peekDeferred();
      const deferredDue =
        deferred && (options.ignoreDueTime === true || deferred.dueAt <= now)
          ? deferred
          : undefined;
      let entry: IndexedMessage<T> | undefined;
      if (incoming && (takeIncoming || !deferredDue)) {
        this.#shiftIncoming();
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
}

/** The record a store keeps for a new message: every recipient `pending`. */
export function storedRecord(record: NewMessageRecord): MessageRecord {
  const { hold: _hold, recipients, ...rest } = record;
  return {
    ...rest,
    formatVersion: 1,
    recipients: recipients.map((r): StoredRecipient => ({ ...r, state: 'pending' })),
  };
}

/**
 * Throws QueueStoreError if an outcome names a recipient the record does not have
 * (a caller bug; nothing is recorded then).
 */
export function checkOutcomes(record: MessageRecord, outcomes: readonly RecipientOutcome[]): void {
  const ids = new Set<RecipientId>(record.recipients.map((r) => r.id));
  for (const { recipientId } of outcomes) {
    if (!ids.has(recipientId)) {
      throw new QueueStoreError(
        `no recipient with id ${recipientId}; outcomes were not recorded`,
        record.queueId,
      );
    }
  }
}

/**
 * The record with outcomes applied: `sent` and `bounced` are final, `deferred` keeps
 * the recipient pending; each sets `last`. A recipient already final keeps its state
 * and reason; a `bounced` outcome with `dsnSent` for a bounced recipient only marks its
 * notice as committed.
 */
export function applyOutcomes(
  record: MessageRecord,
  outcomes: readonly RecipientOutcome[],
): MessageRecord {
  if (outcomes.length === 0) return record;
  const recipients = [...record.recipients];
  const position = new Map<RecipientId, number>();
  for (const [i, r] of recipients.entries()) position.set(r.id, i);
  for (const { recipientId, outcome } of outcomes) {
    const i = position.get(recipientId);
    const r = i === undefined ? undefined : recipients[i];
    if (i === undefined || !r) continue;
    if (r.state !== 'pending') {
      // A final recipient only takes the mark that its non-delivery notice was committed.
      if (r.state === 'bounced' && outcome.status === 'bounced' && outcome.dsnSent && r.last) {
        recipients[i] = { ...r, last: { ...r.last, dsnSent: true } };
      }
      continue;
    }
    const state = outcome.status === 'deferred' ? 'pending' : outcome.status;
    recipients[i] = { ...r, state, last: outcome };
  }
  return { ...record, recipients };
}

/** The listing row of a message. */
export function queueEntry(record: MessageRecord, state: QueueState, dueAt: number): QueueEntry {
  return {
    queueId: record.queueId,
    state,
    sender: record.sender,
    size: record.size,
    arrivalTime: record.arrivalTime,
    ...(state === 'deferred' ? { dueAt } : {}),
    recipients: record.recipients.map((r) => ({
      address: r.address,
      state: r.state,
      ...(r.last ? { reason: r.last.text } : {}),
    })),
  };
}
