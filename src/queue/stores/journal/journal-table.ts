/**
 * JournalTable: where the journal keeps what it knows of each live message — its
 * frame's place (segment, offset, record and content lengths) and its state and due
 * time — as columns of typed arrays indexed by a small integer slot, found by queue ID
 * through an open-addressing hash table over the slots (queue-id-hash.ts), and kept in
 * journal (append) order by a doubly linked list through them.
 *
 * Memory: 48 bytes of typed arrays per slot, outside the JavaScript heap (so they add
 * nothing to the garbage collector's work or to how far the heap grows between
 * collections), plus one pointer per slot to the queue ID string, which is shared with
 * the store's index. An object per message and a Map slot cost about 124 bytes of
 * heap instead; for 200 000 queued messages the heap the journal adds falls from about
 * 24 MB to under 2 MB. Columns grow by doubling and go back to their first size when
 * the journal empties; freed slots are reused (a free list), so the table never holds
 * more slots than the most messages live at once. What only a few messages have — a
 * hand-off frame, update frames, frames queued but not written — lives in a side map
 * for those messages alone.
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
import type { MessageRecord } from '../../types.js';
import { QueueIdHash } from '../queue-id-hash.js';
import type { JournalStateChange } from './journal-format.js';

/** What only some messages have; dropped once it holds nothing. */
export interface EntryExtra {
  /** The message frame kept in memory for the hand-off. */
  frame: Buffer | undefined;
  /** With the frame: the record it holds, as committed, so the claim need not parse it. */
  record: MessageRecord | undefined;
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

/** No slot: the end of a list, an empty bucket. */
const NIL = -1;

/** Live messages by slot; see the module header. */
export class JournalTable {
  readonly #extra = new Map<number, EntryExtra>();
  /** The queue ID in each slot (undefined while free). */
  #ids: (QueueId | undefined)[] = [];
  #segment!: Float64Array;
  #frameOffset!: Float64Array;
  #due!: Float64Array;
  #recordLength!: Uint32Array;
  #contentLength!: Uint32Array;
  /** Journal order, a doubly linked list through the slots; `#next` also chains the free slots. */
  #next!: Int32Array;
  #prev!: Int32Array;
  #head = NIL;
  #tail = NIL;
  #freeHead = NIL;
  /** Slots ever handed out (the next new one). */
  #top = 0;
  #size = 0;
  /** Slots by queue ID. */
  readonly #hash = new QueueIdHash(INITIAL_SLOTS, (slot) => this.#ids[slot]);

  constructor() {
    this.#columns(INITIAL_SLOTS, false);
  }

  /** Live messages. */
  get size(): number {
    return this.#size;
  }

  /** The slot of a live message. */
  slot(queueId: QueueId): number | undefined {
    const slot = this.#hash.slot(queueId);
    return slot < 0 ? undefined : slot;
  }

  /** Whether `slot` is still the live slot of `queueId` (a holder may have kept it across an await). */
  holds(queueId: QueueId, slot: number): boolean {
    return this.#ids[slot] === queueId;
  }

  /**
   * Live messages in journal order, as [queue ID, slot]. The message just yielded may
   * be deleted; do not add or delete others while iterating.
   */
  *slots(): IterableIterator<[QueueId, number]> {
    for (let slot = this.#head; slot !== NIL; ) {
      const next = this.#next[slot]!;
      yield [this.#ids[slot]!, slot];
      slot = next;
    }
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
    let bucket = this.#hash.find(queueId);
    if (this.#hash.at(bucket) >= 0) throw new Error(`${queueId}: already in the journal table`);
    let slot: number;
    if (this.#freeHead !== NIL) {
      slot = this.#freeHead;
      this.#freeHead = this.#next[slot]!;
    } else {
      if (this.#top === this.#segment.length) {
        this.#grow();
        bucket = this.#hash.find(queueId);
      }
      slot = this.#top++;
    }
    this.#ids[slot] = queueId;
    this.#segment[slot] = segment;
    this.#frameOffset[slot] = frameOffset;
    this.#recordLength[slot] = recordLength;
    this.#contentLength[slot] = contentLength;
    this.#due[slot] = due;
    this.#next[slot] = NIL;
    this.#prev[slot] = this.#tail;
    if (this.#tail === NIL) this.#head = slot;
    else this.#next[this.#tail] = slot;
    this.#tail = slot;
    this.#hash.put(bucket, slot);
    this.#size++;
    return slot;
  }

  /** Forgets a live message (and whatever extra it had); returns the slot it had. */
  delete(queueId: QueueId): number | undefined {
    const bucket = this.#hash.find(queueId);
    const slot = this.#hash.at(bucket);
    if (slot < 0) return undefined;
    this.#hash.remove(bucket);
    const prev = this.#prev[slot]!;
    const next = this.#next[slot]!;
    if (prev === NIL) this.#head = next;
    else this.#next[prev] = next;
    if (next === NIL) this.#tail = prev;
    else this.#prev[next] = prev;
    this.#ids[slot] = undefined;
    this.#extra.delete(slot);
    this.#next[slot] = this.#freeHead;
    this.#freeHead = slot;
    if (--this.#size === 0) this.#reset();
    return slot;
  }

  #grow(): void {
    const n = this.#segment.length * 2;
    this.#columns(n, true);
    // Every slot is live when the table grows (the free list is empty).
    this.#hash.rebuild(n, this.#ids.keys());
  }

  /** Empty again: the columns go back to their first size, so a drained queue gives its memory back. */
  #reset(): void {
    this.#top = 0;
    this.#head = NIL;
    this.#tail = NIL;
    this.#freeHead = NIL;
    this.#ids = [];
    if (this.#segment.length === INITIAL_SLOTS) return;
    this.#columns(INITIAL_SLOTS, false);
    this.#hash.rebuild(INITIAL_SLOTS, []);
  }

  /** Makes every column `n` slots long, with what the old ones held if `keep`. */
  #columns(n: number, keep: boolean): void {
    const sized = <A extends Float64Array | Uint32Array | Int32Array>(
      old: A | undefined,
      make: (n: number) => A,
    ): A => {
      const a = make(n);
      if (keep && old) a.set(old);
      return a;
    };
    this.#segment = sized(this.#segment, (k) => new Float64Array(k));
    this.#frameOffset = sized(this.#frameOffset, (k) => new Float64Array(k));
    this.#due = sized(this.#due, (k) => new Float64Array(k));
    this.#recordLength = sized(this.#recordLength, (k) => new Uint32Array(k));
    this.#contentLength = sized(this.#contentLength, (k) => new Uint32Array(k));
    this.#next = sized(this.#next, (k) => new Int32Array(k));
    this.#prev = sized(this.#prev, (k) => new Int32Array(k));
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
      x = { frame: undefined, record: undefined, updates: undefined, pending: 0 };
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
