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

/** Listeners of one store, and when they are called. */
export class AvailableListeners {
  readonly #listeners = new Set<() => void>();
  readonly #schedule: (call: () => void) => void;
  readonly #log: ComponentLogger;
  #pending = false;

  /** `schedule` runs the calls later: queueMicrotask, or setImmediate to let a commit's
   * caller resume first. */
  constructor(schedule: (call: () => void) => void, log: ComponentLogger) {
    this.#schedule = schedule;
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

  /** Calls every listener on the next scheduled turn, once however often this runs. */
  notify(): void {
    if (this.#pending || this.#listeners.size === 0) return;
    this.#pending = true;
    this.#schedule(() => {
      this.#pending = false;
      for (const listener of [...this.#listeners]) {
        try {
          listener();
        } catch (err) {
          this.#log.warning(undefined, `onAvailable listener failed: ${errorMessage(err)}`);
        }
      }
    });
  }
}
