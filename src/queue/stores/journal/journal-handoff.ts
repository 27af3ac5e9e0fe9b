/**
 * JournalHandoff: the message frames the journal keeps in memory after their commit,
 * so the queue manager's claim and the delivery agent's read of a just-accepted
 * message touch no file — within a byte budget (handoff-budget.ts), and for a short
 * while only.
 *
 * A frame is kept if the store asks for it (FileQueueStore does while a queue manager
 * listens for new mail) and the budget has room when its message is committed, and
 * given back when the message is delivered (removed), released, moved out of the
 * journal — or `HANDOFF_MS` after its commit, whichever comes first. Mail the queue manager
 * takes at once (the hand-off's purpose) is delivered within that time; mail that
 * waits — its active window is full, or nothing delivers, as while a large queue
 * builds up — is read from its segment when its turn comes, like any queued message,
 * instead of pinning the budget's memory for as long as it waits.
 *
 * Postfix counterpart: none — qmgr(8) and the delivery agents always read the queue
 * file. The PostgreSQL store's hand-off gives up a message the queue manager has not
 * taken in the same spirit (postgres-store-handoff.ts).
 *
 * Does not do: decide what is held per message (the journal's table holds the frame),
 * or any I/O. Its timer never keeps the process alive (the Clock's timers are unref'd).
 *
 * @module
 */

import type { Clock, QueueId, TimerHandle } from '../../../types.js';
import type { MessageRecord } from '../../types.js';
import type { HandoffBudget } from './handoff-budget.js';
import type { JournalTable } from './journal-table.js';

/** Longest a frame is kept in memory after its commit. */
export const HANDOFF_MS = 1000;

/**
 * Records kept as objects, for the messages committed last: what the queue manager is
 * about to claim. Bounded apart from the byte budget, so a large budget of small
 * frames does not mean as many record objects on the heap.
 */
export const RECORDS_KEPT = 128;

/** The hand-off frames of one journal; see the module header. */
export class JournalHandoff {
  readonly budget: HandoffBudget;
  readonly #table: JournalTable;
  readonly #clock: Clock;
  /** Frames kept, in commit order: who, in which slot, since when (a queue with a head). */
  #ids: QueueId[] = [];
  #slots: number[] = [];
  #since: number[] = [];
  #head = 0;
  #timer: TimerHandle | undefined;
  /** The messages whose records are kept (a ring of RECORDS_KEPT: who, in which slot). */
  readonly #recordIds: (QueueId | undefined)[] = new Array(RECORDS_KEPT).fill(undefined);
  readonly #recordSlots: number[] = new Array(RECORDS_KEPT).fill(0);
  #recordAt = 0;

  constructor(budget: HandoffBudget, table: JournalTable, clock: Clock) {
    this.budget = budget;
    this.#table = table;
    this.#clock = clock;
  }

  /**
   * Keeps the frame of the message just committed in `slot` if the budget allows, with
   * the record it was encoded from (read-only from now on) until RECORDS_KEPT later
   * messages are kept or the record is taken.
   */
  keep(queueId: QueueId, slot: number, frame: Buffer, record: MessageRecord): void {
    if (!this.budget.take(frame.length)) return;
    const x = this.#table.moreOf(slot);
    x.frame = frame;
    x.record = record;
    this.#ringRecord(queueId, slot);
    this.#ids.push(queueId);
    this.#slots.push(slot);
    this.#since.push(this.#clock.now());
    this.#timer ??= this.#clock.setTimeout(() => this.#expire(), HANDOFF_MS);
  }

  /** The oldest record kept makes room for the one of `queueId` in `slot`. */
  #ringRecord(queueId: QueueId, slot: number): void {
    const at = this.#recordAt;
    this.#recordAt = at + 1 === RECORDS_KEPT ? 0 : at + 1;
    const oldId = this.#recordIds[at];
    const oldSlot = this.#recordSlots[at]!;
    // A slot given up since may hold another message now: leave that one alone.
    if (oldId !== undefined && this.#table.holds(oldId, oldSlot)) {
      const x = this.#table.extra(oldSlot);
      if (x) x.record = undefined;
    }
    this.#recordIds[at] = queueId;
    this.#recordSlots[at] = slot;
  }

  /**
   * Takes the record kept for the message in `slot`: the one it was committed with, as
   * long as no update frame was written or queued for it since. Given once.
   */
  takeRecord(slot: number): MessageRecord | undefined {
    const x = this.#table.extra(slot);
    const record = x?.record;
    if (!record) return undefined;
    x.record = undefined;
    return x.updates === undefined && x.pending === 0 ? record : undefined;
  }

  /** Gives back the frame of the message in `slot`, if it holds one. */
  drop(slot: number): void {
    const x = this.#table.extra(slot);
    if (!x?.frame) return;
    this.budget.give(x.frame.length);
    x.frame = undefined;
    x.record = undefined;
    this.#table.trim(slot);
  }

  /** Gives back the frames kept longer than HANDOFF_MS, then waits for the next one's turn. */
  #expire(): void {
    this.#timer = undefined;
    const now = this.#clock.now();
    const until = now - HANDOFF_MS;
    while (this.#head < this.#ids.length && this.#since[this.#head]! <= until) {
      const queueId = this.#ids[this.#head]!;
      const slot = this.#slots[this.#head]!;
      this.#head++;
      // A slot given up since may hold another message now: leave that one alone.
      if (this.#table.holds(queueId, slot)) this.drop(slot);
    }
    if (this.#head === this.#ids.length) {
      this.#ids = [];
      this.#slots = [];
      this.#since = [];
      this.#head = 0;
      return;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#ids.length) {
      this.#ids = this.#ids.slice(this.#head);
      this.#slots = this.#slots.slice(this.#head);
      this.#since = this.#since.slice(this.#head);
      this.#head = 0;
    }
    this.#timer = this.#clock.setTimeout(
      () => this.#expire(),
      this.#since[this.#head]! + HANDOFF_MS - now,
    );
  }

  /** Stops the timer (the journal is closing; it drops every frame itself). */
  close(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }
}
