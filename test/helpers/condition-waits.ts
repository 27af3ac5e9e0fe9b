/**
 * Waits on conditions that the test's own events make true: each `until()` checks its
 * condition at once and again at every `wake()` (a delivery, a closed connection),
 * and gives up after its deadline.
 *
 * @module
 */

/** Pending `until()` calls, checked again at each `wake()`. */
export class ConditionWaits {
  readonly #checks = new Set<() => void>();

  /** Resolves true once `done()` holds, or false after `ms`. */
  until(done: () => boolean, ms: number): Promise<boolean> {
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (done()) finish(true);
      };
      const timer = setTimeout(() => finish(false), ms);
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        this.#checks.delete(check);
        resolve(ok);
      };
      this.#checks.add(check);
    });
  }

  /** Something happened: checks every pending condition. */
  wake(): void {
    for (const check of [...this.#checks]) check();
  }
}
