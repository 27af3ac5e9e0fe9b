/**
 * DueHeap: deferred messages by due time, a binary min-heap with lazy deletion, and
 * ArrivalQueue: incoming messages in arrival order, also with lazy deletion.
 *
 * Postfix counterpart: qmgr(8) scans the deferred directory and compares file times;
 * Postern keeps the order in memory so a queue run costs O(due · log n), not a scan.
 *
 * A slot is (entry, generation[, due time]): when the entry moves its generation
 * changes and the slot is recognised as stale when it comes to the front. The slots
 * live in parallel arrays (due times unboxed), not one object each — with 200 000
 * queued messages an object per slot would cost megabytes for nothing.
 *
 * @module
 */

import type { QueueId } from '../../types.js';

/** What a slot points at: an entry with a stable ID and a generation. */
export interface Slotted {
  readonly queueId: QueueId;
  readonly generation: number;
}

/** A min-heap by (due time, queue ID). */
export class DueHeap<E extends Slotted> {
  readonly #due: number[] = [];
  readonly #entries: E[] = [];
  readonly #generations: number[] = [];

  get size(): number {
    return this.#entries.length;
  }

  push(entry: E, dueAt: number): void {
    this.#due.push(dueAt);
    this.#entries.push(entry);
    this.#generations.push(entry.generation);
    let i = this.#entries.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#before(i, p)) break;
      this.#swap(i, p);
      i = p;
    }
  }

  /** The front slot, if its entry has not moved since it was pushed; stale ones are dropped. */
  peekLive(isLive: (entry: E, generation: number) => boolean): E | undefined {
    while (this.#entries.length > 0) {
      const entry = this.#entries[0]!;
      if (isLive(entry, this.#generations[0]!)) return entry;
      this.pop();
    }
    return undefined;
  }

  /** The due time of the front slot. */
  peekDue(): number | undefined {
    return this.#due[0];
  }

  pop(): void {
    const last = this.#entries.length - 1;
    if (last < 0) return;
    this.#swap(0, last);
    this.#due.pop();
    this.#entries.pop();
    this.#generations.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < last && this.#before(l, m)) m = l;
      if (r < last && this.#before(r, m)) m = r;
      if (m === i) break;
      this.#swap(i, m);
      i = m;
    }
  }

  #before(a: number, b: number): boolean {
    const da = this.#due[a]!;
    const db = this.#due[b]!;
    return da < db || (da === db && this.#entries[a]!.queueId < this.#entries[b]!.queueId);
  }

  #swap(a: number, b: number): void {
    const due = this.#due;
    const entries = this.#entries;
    const gens = this.#generations;
    const d = due[a]!;
    due[a] = due[b]!;
    due[b] = d;
    const e = entries[a]!;
    entries[a] = entries[b]!;
    entries[b] = e;
    const g = gens[a]!;
    gens[a] = gens[b]!;
    gens[b] = g;
  }
}

/** A FIFO of entries in the order they arrived. */
export class ArrivalQueue<E extends Slotted> {
  #entries: E[] = [];
  #generations: number[] = [];
  #head = 0;

  push(entry: E): void {
    this.#entries.push(entry);
    this.#generations.push(entry.generation);
  }

  /** The oldest slot whose entry has not moved; stale ones are dropped. */
  peekLive(isLive: (entry: E, generation: number) => boolean): E | undefined {
    while (this.#head < this.#entries.length) {
      if (isLive(this.#entries[this.#head]!, this.#generations[this.#head]!)) {
        return this.#entries[this.#head];
      }
      this.#head++;
    }
    this.#entries = [];
    this.#generations = [];
    this.#head = 0;
    return undefined;
  }

  shift(): void {
    this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#generations = this.#generations.slice(this.#head);
      this.#head = 0;
    }
  }
}
