/**
 * Clocks: the system clock, and ManualClock for tests, which runs timers only when
 * advanced so a test can walk a queue through five days in milliseconds.
 *
 * @module
 */

import type { Clock, TimerHandle } from './types.js';

/**
 * Wall-clock time and unref'd Node timers.
 *
 * @example
 * ```ts
 * const handle = systemClock.setTimeout(() => console.log(systemClock.now()), 1000);
 * handle.cancel();
 * ```
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

/**
 * A pause of `ms` on `clock`: `done` resolves when it is over; `cancel()` drops the timer
 * (a ManualClock then holds no stale one) and leaves `done` pending.
 *
 * @example
 * ```ts
 * const pause = delay(clock, 20);
 * await Promise.race([work, pause.done]);
 * pause.cancel();
 * ```
 */
export function delay(clock: Clock, ms: number): { readonly done: Promise<void>; cancel(): void } {
  let handle: TimerHandle | undefined;
  const done = new Promise<void>((resolve) => {
    handle = clock.setTimeout(resolve, ms);
  });
  return { done, cancel: () => handle?.cancel() };
}

interface PendingTimer {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that moves only when told. Timers due at or before the new time run in due
 * order when `advance()` is called.
 *
 * @example
 * const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
 * clock.setTimeout(() => console.log('later'), 300_000);
 * await clock.advance(300_000); // prints "later"
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: PendingTimer[] = [];

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: PendingTimer = {
      at: this.#now + Math.max(0, ms),
      seq: this.#seq++,
      fn,
      cancelled: false,
    };
    this.#timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  /** Moves time forward, running due timers in order and letting promises settle between them. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      this.#timers = this.#timers.filter((t) => !t.cancelled);
      this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#timers[0];
      if (!next || next.at > target) break;
      this.#timers.shift();
      this.#now = Math.max(this.#now, next.at);
      next.fn();
      await new Promise((r) => setImmediate(r));
    }
    this.#now = target;
    await new Promise((r) => setImmediate(r));
  }

  /** Number of timers not yet run or cancelled. */
  get pendingTimers(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }
}
