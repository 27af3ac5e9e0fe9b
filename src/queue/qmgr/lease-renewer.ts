/**
 * LeaseRenewer: keeps the leases of the queue manager's active window alive with one
 * periodic sweep, instead of a timer per message.
 *
 * Postfix counterpart: none — qmgr(8) owns its active queue outright. A Postern store
 * may be shared (PostgresQueueStore), so a claimed message is leased for `leaseMs`
 * and must be renewed while its deliveries run or wait.
 *
 * Every `leaseMs / 3` the sweep renews each lease with less than two thirds of its
 * time left, so a lease is renewed with at least a third of it to spare. A renewal
 * that fails means another owner has the message: the manager is told (`lost`) and
 * aborts that message's deliveries.
 *
 * @module
 */

import type { Clock, TimerHandle } from '../../types.js';
import type { Lease } from '../types.js';
import type { ActiveMessage } from './active-message.js';

/** What the renewer needs from the queue manager. */
export interface LeaseRenewerOptions {
  readonly clock: Clock;
  readonly leaseMs: number;
  /** The messages in the active window now. */
  readonly active: () => Iterable<ActiveMessage>;
  /** Extends a lease in the store. */
  readonly renew: (lease: Lease, expiresAt: number) => Promise<Lease>;
  /** A renewal failed: the message is someone else's now. */
  readonly lost: (message: ActiveMessage, err: unknown) => void;
}

export class LeaseRenewer {
  readonly #options: LeaseRenewerOptions;
  readonly #renewing = new WeakSet<ActiveMessage>();
  #timer: TimerHandle | undefined;

  constructor(options: LeaseRenewerOptions) {
    this.#options = options;
  }

  /** Makes sure a sweep is coming (call when a message enters the active window). */
  start(): void {
    if (this.#timer) return;
    this.#timer = this.#options.clock.setTimeout(() => this.#sweep(), this.#options.leaseMs / 3);
  }

  /** Cancels the coming sweep (the manager is stopping). */
  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  #sweep(): void {
    this.#timer = undefined;
    const { clock, leaseMs, renew, lost } = this.#options;
    const now = clock.now();
    let any = false;
    for (const message of this.#options.active()) {
      any = true;
      if (message.lease.expiresAt - now > (2 * leaseMs) / 3 || this.#renewing.has(message))
        continue;
      this.#renewing.add(message);
      renew(message.lease, now + leaseMs)
        .then(
          (lease) => {
            message.lease = lease;
          },
          (err: unknown) => lost(message, err),
        )
        .finally(() => this.#renewing.delete(message));
    }
    if (any) this.start();
  }
}
