/**
 * DelayHistogram: counts delivery delays into fixed buckets, Prometheus-style
 * (cumulative counts per upper bound, plus the sum and the count).
 *
 * Postfix counterpart: the `delay=` field of the delivery log line; pflogsumm reports
 * the same distribution from the log.
 *
 * Does not: keep individual samples or compute quantiles (memory stays constant).
 *
 * @module
 */

/**
 * The delay histogram's upper bounds in seconds (Prometheus `le`): local delivery takes milliseconds, a remote one seconds,
 * and deferred mail minutes to days (`maximalQueueLifetime` is 5 days).
 *
 * @example
 * ```ts
 * const { deliveries } = await mta.metrics.snapshot();
 * const underOneSecond = deliveries[0]?.delayBuckets[DELAY_BUCKETS.indexOf(1)];
 * ```
 */
export const DELAY_BUCKETS: readonly number[] = [
  0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14_400, 86_400, 432_000,
];

/**
 * Counts of observed delays per bucket of DELAY_BUCKETS, with their sum.
 *
 * @example
 * ```ts
 * const h = new DelayHistogram();
 * h.observe(0.3);
 * h.cumulative(); // [0, 0, 0, 1, 1, ...], the last entry is +Inf
 * ```
 */
export class DelayHistogram {
  /** Non-cumulative counts per bucket; the last slot is `+Inf`. */
  readonly #counts = new Array<number>(DELAY_BUCKETS.length + 1).fill(0);
  #sum = 0;
  #count = 0;

  /** Counts one delay; negative or non-finite values count as 0. */
  observe(seconds: number): void {
    const value = Number.isFinite(seconds) && seconds > 0 ? seconds : 0;
    let i = DELAY_BUCKETS.findIndex((bound) => value <= bound);
    if (i < 0) i = DELAY_BUCKETS.length;
    this.#counts[i] = (this.#counts[i] ?? 0) + 1;
    this.#sum += value;
    this.#count++;
  }

  /** How many delays were observed. */
  get count(): number {
    return this.#count;
  }

  /** The sum of the observed delays, in seconds. */
  get sum(): number {
    return this.#sum;
  }

  /** Cumulative counts per bound of DELAY_BUCKETS, then `+Inf` (equal to `count`). */
  cumulative(): number[] {
    let running = 0;
    return this.#counts.map((c) => {
      running += c;
      return running;
    });
  }
}
