/**
 * AvailableListeners: a queue store's `onAvailable` listeners, called once per
 * scheduled turn however many events came before it, each listener's failure logged
 * and kept from the others.
 *
 * Postfix counterpart: the trigger that wakes qmgr(8) when mail arrives (the public
 * `qmgr` FIFO); several triggers before qmgr reads them make one scan.
 *
 * Does not do: decide when mail is available (the stores) or claim it (the queue
 * manager).
 *
 * @module
 */

import type { ComponentLogger } from '../../log.js';
import { errorMessage } from '../../util/error-message.js';

/** When a store's listeners run: a schedule that calls `call` later, once. */
export type ListenerSchedule = (call: () => void) => void;

/** Listeners of one store, and when they are called. */
export class AvailableListeners {
  readonly #listeners = new Set<() => void>();
  readonly #schedule: ListenerSchedule;
  readonly #afterCommit: ListenerSchedule;
  readonly #log: ComponentLogger;
  /** A call is scheduled and has not run yet. */
  #pending = false;
  /** ... on `schedule` (not only on `afterCommit`). */
  #soon = false;

  /**
   * `schedule` runs the calls later: queueMicrotask, or setImmediate to let a commit's
   * caller resume first. `afterCommit` (by default the same) is for mail a commit just
   * made available, e.g. a SyncWindow's, which waits for the journal's next fdatasync.
   */
  constructor(schedule: ListenerSchedule, log: ComponentLogger, afterCommit = schedule) {
    this.#schedule = schedule;
    this.#afterCommit = afterCommit;
    this.#log = log;
  }

  /** Whether anyone listens (a store may skip work no one would use). */
  get any(): boolean {
    return this.#listeners.size > 0;
  }

  /** QueueStore.onAvailable: adds `listener`, returns its removal. */
  add(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /**
   * Calls every listener on the next scheduled turn, once however often this runs
   * (sooner than a call waiting on `afterCommit`, which then does nothing).
   */
  notify(): void {
    if (this.#soon || this.#listeners.size === 0) return;
    this.#pending = true;
    this.#soon = true;
    this.#schedule(this.#run);
  }

  /** A commit made mail available: calls every listener when `afterCommit` says. */
  notifyCommitted(): void {
    if (this.#pending || this.#listeners.size === 0) return;
    this.#pending = true;
    this.#afterCommit(this.#run);
  }

  readonly #run = (): void => {
    if (!this.#pending) return; // an earlier schedule ran them already
    this.#pending = false;
    this.#soon = false;
    for (const listener of [...this.#listeners]) {
      try {
        listener();
      } catch (err) {
        this.#log.warning(undefined, `onAvailable listener failed: ${errorMessage(err)}`);
      }
    }
  };
}
