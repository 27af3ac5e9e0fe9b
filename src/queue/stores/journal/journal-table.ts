/**
 * JournalTable: where the journal keeps what it knows of each live message — its
 * frame's place (segment, offset, record and content lengths) and its state and due
 * time — as columns of typed arrays indexed by a small integer slot, with one map from
 * queue ID to slot in journal (append) order.
 *
 * Memory: 32 bytes of typed arrays per slot (outside the JavaScript heap, so they add
 * nothing to the garbage collector's work or to the heap's growth) plus the map's slot
 * (about 28 bytes; the queue ID string is shared with the store's index), against an
 * object of seven slots per message before. A queue of 200 000 messages costs about
 * 12 MB here instead of 24 MB of heap. Columns grow by doubling; freed slots are
 * reused (a free list), so the table never holds more slots than the most messages
 * live at once. What only a few messages have — a hand-off frame, update frames,
 * frames queued but not written — lives in a side map for those messages alone.
 *
 * Postfix counterpart: none — Postfix finds a queue file by its name; a journalled
 * message is found through this table.
 *
 * Does not do: any I/O, or keep a message's record or content (apart from the
 * hand-off frame the journal attaches).
 *
 * @module
 */

import type { QueueId } from '../../../types.js';
import type { JournalStateChange } from './journal-format.js';

/** What only some messages have; dropped once it holds nothing. */
export interface EntryExtra {
  /** The message frame kept in memory for the hand-off. */
  frame: Buffer | undefined;
  /** Outcome and state frames: flat triples (segment, offset of the JSON, its length). */
  updates: number[] | undefined;
  /** Frames for this message queued but not yet written. */
  pending: number;
}

/** The `due` column for states other than deferred (whose due time is >= 0). */
export const DUE_INCOMING = -1;
export const DUE_HOLD = -2;
export const DUE_CORRUPT = -3;

/** The table's `due` column for a state (a deferred message's is its due time, >= 0). */
export function dueOf(change: JournalStateChange): number {
  if (change.state === 'deferred')
    return Number.isFinite(change.dueAt) ? Math.max(change.dueAt, 0) : 0;
  return change.state === 'incoming'
    ? DUE_INCOMING
    : change.state === 'hold'
      ? DUE_HOLD
      : DUE_CORRUPT;
}

const INITIAL_SLOTS = 1024;

/** Live messages by slot; see the module header. */
export class JournalTable {
  readonly #slots = new Map<QueueId, number>();
  readonly #extra = new Map<number, EntryExtra>();
  #segment = new Float64Array(INITIAL_SLOTS);
  #frameOffset = new Float64Array(INITIAL_SLOTS);
  #due = new Float64Array(INITIAL_SLOTS);
  #recordLength = new Uint32Array(INITIAL_SLOTS);
  #contentLength = new Uint32Array(INITIAL_SLOTS);
  /** Freed slots, a stack over a column of its own. */
  #free = new Uint32Array(INITIAL_SLOTS);
  #freeCount = 0;
  /** Slots ever handed out (the next new one). */
  #top = 0;

  /** Live messages. */
  get size(): number {
    return this.#slots.size;
  }

  /** The slot of a live message. */
  slot(queueId: QueueId): number | undefined {
    return this.#slots.get(queueId);
  }

  /** Whether `slot` is still the live slot of `queueId` (a holder may have kept it across an await). */
  holds(queueId: QueueId, slot: number): boolean {
    return this.#slots.get(queueId) === slot;
  }

  /** Live messages in journal order, as [queue ID, slot]. Do not add or delete while iterating. */
  slots(): IterableIterator<[QueueId, number]> {
    return this.#slots.entries();
  }

  /** Adds a live message (after any it already holds, in journal order); returns its slot. */
  add(
    queueId: QueueId,
    segment: number,
    frameOffset: number,
    recordLength: number,
    contentLength: number,
    due: number,
  ): number {
    if (this.#slots.has(queueId)) throw new Error(`${queueId}: already in the journal table`);
    let slot: number;
    if (this.#freeCount > 0) slot = this.#free[--this.#freeCount]!;
    else {
      if (this.#top === this.#segment.length) this.#grow();
      slot = this.#top++;
    }
    this.#segment[slot] = segment;
    this.#frameOffset[slot] = frameOffset;
    this.#recordLength[slot] = recordLength;
    this.#contentLength[slot] = contentLength;
    this.#due[slot] = due;
    this.#slots.set(queueId, slot);
    return slot;
  }

  /** Forgets a live message (and whatever extra it had); returns the slot it had. */
  delete(queueId: QueueId): number | undefined {
    const slot = this.#slots.get(queueId);
    if (slot === undefined) return undefined;
    this.#slots.delete(queueId);
    this.#extra.delete(slot);
    this.#free[this.#freeCount++] = slot;
    if (this.#slots.size === 0) this.#reset();
    return slot;
  }

  #grow(): void {
    const n = this.#segment.length * 2;
    const grown = <A extends Float64Array | Uint32Array>(a: A, make: (n: number) => A): A => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.#segment = grown(this.#segment, (k) => new Float64Array(k));
    this.#frameOffset = grown(this.#frameOffset, (k) => new Float64Array(k));
    this.#due = grown(this.#due, (k) => new Float64Array(k));
    this.#recordLength = grown(this.#recordLength, (k) => new Uint32Array(k));
    this.#contentLength = grown(this.#contentLength, (k) => new Uint32Array(k));
    this.#free = grown(this.#free, (k) => new Uint32Array(k));
  }

  /** Empty again: the columns go back to their first size, so a drained queue gives its memory back. */
  #reset(): void {
    this.#top = 0;
    this.#freeCount = 0;
    if (this.#segment.length === INITIAL_SLOTS) return;
    this.#segment = new Float64Array(INITIAL_SLOTS);
    this.#frameOffset = new Float64Array(INITIAL_SLOTS);
    this.#due = new Float64Array(INITIAL_SLOTS);
    this.#recordLength = new Uint32Array(INITIAL_SLOTS);
    this.#contentLength = new Uint32Array(INITIAL_SLOTS);
    this.#free = new Uint32Array(INITIAL_SLOTS);
  }

  segment(slot: number): number {
    return this.#segment[slot]!;
  }

  frameOffset(slot: number): number {
    return this.#frameOffset[slot]!;
  }

  recordLength(slot: number): number {
    return this.#recordLength[slot]!;
  }

  contentLength(slot: number): number {
    return this.#contentLength[slot]!;
  }

  due(slot: number): number {
    return this.#due[slot]!;
  }

  setDue(slot: number, due: number): void {
    this.#due[slot] = due;
  }

  /** The slot's extra state, if it has any. */
  extra(slot: number): EntryExtra | undefined {
    return this.#extra.get(slot);
  }

  /** The slot's extra state, made if it has none. */
  moreOf(slot: number): EntryExtra {
    let x = this.#extra.get(slot);
    if (!x) {
      x = { frame: undefined, updates: undefined, pending: 0 };
      this.#extra.set(slot, x);
    }
    return x;
  }

  /** Notes an update frame's JSON at (segment, offset, length) for the message in `slot`. */
  addUpdate(slot: number, segment: number, offset: number, length: number): void {
    const x = this.moreOf(slot);
    if (x.updates) x.updates.push(segment, offset, length);
    else x.updates = [segment, offset, length];
  }

  /** Forgets the update frame at (segment, offset) of the message in `slot`. */
  dropUpdate(slot: number, segment: number, offset: number): void {
    const x = this.#extra.get(slot);
    const u = x?.updates;
    if (!x || !u) return;
    for (let i = 0; i + 2 < u.length; i += 3) {
      if (u[i] === segment && u[i + 1] === offset) {
        u.splice(i, 3);
        break;
      }
    }
    if (u.length === 0) {
      x.updates = undefined;
      this.trim(slot);
    }
  }

  /** Drops the slot's extra state once it holds nothing. */
  trim(slot: number): void {
    const x = this.#extra.get(slot);
    if (x && x.frame === undefined && x.updates === undefined && x.pending === 0)
      this.#extra.delete(slot);
  }
}
