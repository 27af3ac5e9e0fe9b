/**
 * A ManualClock that tells the test when a timer is set. A test waits for the moment the
 * code under test starts to wait (an error delay, a timeout), checks that nothing has
 * happened yet, and advances past it: no real time passes and nothing is guessed.
 *
 * @module
 */

import { ManualClock } from '../../src/clock.js';
import type { TimerHandle } from '../../src/types.js';

interface Watcher {
  readonly match: (ms: number) => boolean;
  readonly resolve: (ms: number) => void;
}

export class ObservedClock extends ManualClock {
  #watchers: Watcher[] = [];

  override setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = super.setTimeout(fn, ms);
    const hit = this.#watchers.filter((w) => w.match(ms));
    this.#watchers = this.#watchers.filter((w) => !hit.includes(w));
    for (const w of hit) w.resolve(ms);
    return handle;
  }

  /** Resolves with the delay of the next timer set whose delay `match` accepts. */
  timerSet(match: (ms: number) => boolean): Promise<number> {
    return new Promise((resolve) => this.#watchers.push({ match, resolve }));
  }
}
