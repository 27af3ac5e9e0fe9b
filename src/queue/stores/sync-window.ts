/**
 * SyncWindow: when a journalling queue store tells its onAvailable listeners (the queue
 * manager's claim pass and the deliveries it starts): while the journal waits on an
 * fdatasync, or after `maxWaitMs` if none starts.
 *
 * Why: with one process doing both, delivery work and the SMTP sessions share one
 * thread. Run on the turn after a commit, the claim pass and the delivery it starts
 * come just after the client's 250, while that client's next command (QUIT, then a new
 * connection's greeting) is on its way, and that command waits for them. The journal's
 * fdatasync of the next batch is a wait of its own, in the thread pool, during which the
 * event loop has nothing to do: work run then is off every client's path. Under load a
 * batch's fdatasync starts as soon as the previous one ends, so delivery waits no
 * longer than before; with one client it moves from after the 250 to the next
 * message's fdatasync; with no further commit it runs `maxWaitMs` later.
 *
 * Postfix counterpart: none as such — qmgr(8) is a process of its own, woken by
 * cleanup(8) through the `qmgr` FIFO, and runs on another core alongside smtpd(8).
 *
 * Does not do: decide whether there is work (the store does, AvailableListeners
 * coalesces), nor make anything durable earlier or later: a 250 still waits for its
 * own fdatasync.
 *
 * @module
 */

/** Longest wait for an fdatasync before the listeners run anyway, in ms. */
export const SYNC_WINDOW_MAX_WAIT_MS = 5;

/** See the module header. */
export class SyncWindow {
  readonly #maxWaitMs: number;
  #call: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(maxWaitMs = SYNC_WINDOW_MAX_WAIT_MS) {
    this.#maxWaitMs = maxWaitMs;
  }

  /**
   * An AvailableListeners schedule: runs `call` once, in the next fdatasync's window or
   * after the longest wait. A call scheduled while another waits replaces it.
   */
  readonly schedule = (call: () => void): void => {
    clearTimeout(this.#timer);
    this.#call = call;
    this.#timer = setTimeout(this.#run, this.#maxWaitMs);
  };

  /** An fdatasync was handed to the thread pool: the waiting call runs on the next turn. */
  syncStarted(): void {
    if (this.#call === undefined || this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    // Not now: this is inside the committer's batch; the next turn, after I/O that is
    // ready (a completed fdatasync's 250s first).
    setImmediate(this.#run);
  }

  /** Drops a waiting call (the store is closing): its listeners are not called. */
  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#call = undefined;
  }

  readonly #run = (): void => {
    const call = this.#call;
    if (call === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#call = undefined;
    call();
  };
}
