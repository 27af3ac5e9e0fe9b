/**
 * Scheduler: per-destination delivery queues with concurrency windows, feedback, dead
 * destinations, rate delays and round-robin fairness.
 *
 * Postfix counterpart: qmgr(8)'s queue and entry scheduling (qmgr_queue.c,
 * qmgr_transport.c, qmgr_job.c; SCHEDULER_README).
 *
 * - A destination is a transport and nexthop (and the recipient too when the
 *   transport's recipient limit is 1, as qmgr does for local delivery).
 * - Each destination has a concurrency window that starts at
 *   `initialDestinationConcurrency` and never exceeds the transport's
 *   `destinationConcurrencyLimit`. A delivery that completes without a connection or
 *   handshake failure gives positive feedback (+`positiveFeedback` per delivery, only
 *   while the window is below busy + initial, as qmgr does), one that fails gives
 *   negative feedback (−`negativeFeedback`, never below 1) and adds 1/window to the
 *   failed pseudo-cohort count. Once `failedCohortLimit` cohorts have failed the
 *   destination is dead: its queued jobs and any that arrive are handed back at once
 *   (the queue manager defers them through the `retry` path without a connection
 *   attempt) until `deadMs` has passed (Postfix keeps the status for
 *   `minimal_backoff_time`); then it starts again at the initial window. A success
 *   clears the failed cohorts.
 * - `rateDelay` > 0 limits a destination to one delivery at a time with that pause
 *   between them (Postfix `destination_rate_delay`).
 * - Fairness across destinations: destinations that can start a job wait in one FIFO
 *   ring; each turn starts one job and puts the destination at the back, so no
 *   destination waits behind another's backlog.
 * - Fairness across messages (the equivalent of Postfix's preemptive scheduling):
 *   inside a destination, jobs are taken round-robin by message — one job of the
 *   first message, then one of the next, and so on. A message with 10 000 recipients
 *   split into 200 jobs therefore delays a one-recipient message to the same
 *   destination by at most one job per message ahead of it, never by its whole
 *   backlog; Postfix reaches the same bound with job preemption (slot cost 5, loan 3).
 *
 * Costs are O(1) per job started or finished: nothing here walks every destination.
 *
 * Does not do: deliver (the queue manager starts jobs through `start`), per-transport
 * process limits (one process limit covers all transports).
 *
 * @module
 */

import type { DestinationStatus } from '../../deliver/types.js';
import type { SmtpReply } from '../../smtp-reply.js';
import type { Clock, TimerHandle } from '../../types.js';

/** Per-transport scheduling settings (Postfix `<transport>_destination_*`). */
export interface DestinationSettings {
  readonly concurrencyLimit: number;
  readonly initialConcurrency: number;
  readonly positiveFeedback: number;
  readonly negativeFeedback: number;
  readonly failedCohortLimit: number;
  readonly rateDelay: number;
  /** How long a dead destination stays dead, ms. */
  readonly deadMs: number;
}

/** What the scheduler needs of a job. */
export interface SchedulableJob {
  /** Jobs of one message share it (round-robin across messages). */
  readonly messageId: string;
  /** The destination key. */
  readonly destination: string;
  readonly transport: string;
}

/**
 * What a destination is doing, for views and tests.
 *
 * @example
 * ```ts
 * const views: DestinationView[] = manager.destinations();
 * for (const d of views) console.log(d.key, d.running, d.window);
 * ```
 */
export interface DestinationView {
  /** `transport:nexthop`. */
  readonly key: string;
  /** The current concurrency window. */
  readonly window: number;
  /** Deliveries in flight. */
  readonly running: number;
  /** Jobs waiting. */
  readonly queued: number;
  /** The destination is throttled as dead after failed cohorts. */
  readonly dead: boolean;
}

export interface SchedulerOptions<J extends SchedulableJob> {
  readonly clock: Clock;
  /** Most jobs running at once over all destinations. */
  readonly processLimit: number;
  readonly settings: (transport: string) => DestinationSettings;
  /** Starts a job; the caller calls `completed()` when it is done. */
  readonly start: (job: J) => void;
  /** Hands back jobs for a dead destination, to be deferred without an attempt. */
  readonly dead: (jobs: J[], reply: SmtpReply) => void;
}

class Destination<J extends SchedulableJob> {
  window: number;
  running = 0;
  queued = 0;
  success = 0;
  failure = 0;
  failedCohorts = 0;
  notBefore = 0;
  readyTimer: TimerHandle | undefined;
  /** Jobs by message, and the order messages take turns in. */
  readonly jobs = new Map<string, J[]>();
  readonly order = new Ring<string>();

  constructor(
    readonly key: string,
    readonly settings: DestinationSettings,
  ) {
    this.window = Math.min(settings.initialConcurrency, this.limit);
  }

  get limit(): number {
    return this.settings.rateDelay > 0 ? 1 : this.settings.concurrencyLimit;
  }

  push(job: J): void {
    const list = this.jobs.get(job.messageId);
    if (list) list.push(job);
    else {
      // Made with its job: a list grown from empty takes room for 16 at once.
      this.jobs.set(job.messageId, [job]);
      this.order.push(job.messageId);
    }
    this.queued++;
  }

  /** The next job, taking messages in turn. */
  take(): J | undefined {
    for (;;) {
      const id = this.order.shift();
      if (id === undefined) return undefined;
      const list = this.jobs.get(id);
      const job = list?.shift();
      if (!list || !job) {
        this.jobs.delete(id);
        continue;
      }
      if (list.length > 0) this.order.push(id);
      else this.jobs.delete(id);
      this.queued--;
      return job;
    }
  }

  drain(): J[] {
    const out: J[] = [];
    for (const list of this.jobs.values()) out.push(...list);
    this.jobs.clear();
    this.order.clear();
    this.queued = 0;
    return out;
  }
}

/** A FIFO with O(1) push and shift. */
class Ring<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

export class Scheduler<J extends SchedulableJob> {
  readonly #options: SchedulerOptions<J>;
  readonly #destinations = new Map<string, Destination<J>>();
  /** Dead destinations: key → until when, and why (qmgr's status cache). */
  readonly #dead = new Map<string, { until: number; reply: SmtpReply }>();
  readonly #ready = new Ring<Destination<J>>();
  readonly #inReady = new Set<Destination<J>>();
  #running = 0;
  #stopped = false;

  constructor(options: SchedulerOptions<J>) {
    this.#options = options;
  }

  /** Jobs running now. */
  get running(): number {
    return this.#running;
  }

  /** Queues a job and starts what the limits allow. */
  add(job: J): void {
    if (this.#stopped) return;
    const dead = this.#deadStatus(job.destination);
    if (dead) {
      this.#options.dead([job], dead.reply);
      return;
    }
    let dest = this.#destinations.get(job.destination);
    if (!dest) {
      dest = new Destination<J>(job.destination, this.#options.settings(job.transport));
      this.#destinations.set(job.destination, dest);
    }
    dest.push(job);
    this.#makeReady(dest);
  }

  /** Starts jobs round-robin across ready destinations while limits allow. */
  dispatch(): void {
    while (!this.#stopped && this.#running < this.#options.processLimit) {
      const dest = this.#ready.shift();
      if (!dest) break;
      this.#inReady.delete(dest);
      if (!this.#canStart(dest)) continue;
      const job = dest.take();
      if (!job) continue;
      dest.running++;
      this.#running++;
      if (dest.settings.rateDelay > 0) dest.notBefore = Number.POSITIVE_INFINITY; // set properly on completion
      this.#makeReady(dest);
      this.#options.start(job);
    }
  }

  /**
   * A job finished. `status` is what the agent reported about the destination
   * (undefined: nothing, which counts as no connection failure).
   */
  completed(job: J, status: DestinationStatus | undefined): void {
    this.#running--;
    const dest = this.#destinations.get(job.destination);
    if (!dest) return;
    dest.running--;
    const s = dest.settings;
    if (s.rateDelay > 0) dest.notBefore = this.#options.clock.now() + s.rateDelay;
    if (status === undefined || status.ok) this.#positive(dest);
    else this.#negative(dest, status.reply);
    this.#forgetIfIdle(dest);
    if (this.#destinations.has(dest.key)) this.#makeReady(dest);
    this.dispatch();
  }

  /** Forgets dead destinations (Postfix's `F` trigger, part of a flush). */
  flushDead(): void {
    this.#dead.clear();
  }

  /** Takes every queued job of one message out (the message is finishing early). */
  removeMessage(messageId: string, destinations: Iterable<string>): J[] {
    const out: J[] = [];
    for (const key of destinations) {
      const dest = this.#destinations.get(key);
      const list = dest?.jobs.get(messageId);
      if (!dest || !list) continue;
      dest.jobs.delete(messageId);
      dest.queued -= list.length;
      out.push(...list);
      this.#forgetIfIdle(dest);
    }
    return out;
  }

  /** Stops starting jobs and drops every queued one. */
  stop(): void {
    this.#stopped = true;
    for (const dest of this.#destinations.values()) {
      dest.drain();
      dest.readyTimer?.cancel();
    }
    this.#ready.clear();
    this.#inReady.clear();
  }

  /** Destinations with queued or running jobs. */
  destinations(): DestinationView[] {
    const now = this.#options.clock.now();
    return [...this.#destinations.values()].map((d) => ({
      key: d.key,
      window: d.window,
      running: d.running,
      queued: d.queued,
      dead: (this.#dead.get(d.key)?.until ?? 0) > now,
    }));
  }

  /** Whether a destination is dead now. */
  isDead(key: string): boolean {
    return this.#deadStatus(key) !== undefined;
  }

  #deadStatus(key: string): { until: number; reply: SmtpReply } | undefined {
    const d = this.#dead.get(key);
    if (!d) return undefined;
    if (d.until > this.#options.clock.now()) return d;
    this.#dead.delete(key);
    return undefined;
  }

  #canStart(dest: Destination<J>): boolean {
    return (
      dest.queued > 0 &&
      dest.running < Math.min(dest.window, dest.limit) &&
      dest.notBefore <= this.#options.clock.now()
    );
  }

  #makeReady(dest: Destination<J>): void {
    if (this.#inReady.has(dest) || dest.queued === 0) return;
    if (dest.running >= Math.min(dest.window, dest.limit)) return;
    const now = this.#options.clock.now();
    if (dest.notBefore > now) {
      if (dest.notBefore !== Number.POSITIVE_INFINITY && !dest.readyTimer) {
        dest.readyTimer = this.#options.clock.setTimeout(() => {
          dest.readyTimer = undefined;
          this.#makeReady(dest);
          this.dispatch();
        }, dest.notBefore - now);
      }
      return;
    }
    this.#inReady.add(dest);
    this.#ready.push(dest);
  }

  #positive(dest: Destination<J>): void {
    const s = dest.settings;
    // Grow only while the window is what limits us (qmgr: window < busy + init).
    if (dest.window < dest.limit && dest.window < dest.running + 1 + s.initialConcurrency) {
      dest.success += s.positiveFeedback;
      while (dest.success >= 1) {
        dest.window = Math.min(dest.limit, dest.window + 1);
        dest.success -= 1;
        dest.failure = 0;
      }
    }
    dest.failedCohorts = 0;
  }

  #negative(dest: Destination<J>, reply: SmtpReply): void {
    const s = dest.settings;
    dest.failedCohorts += 1 / Math.max(1, dest.window);
    dest.failure -= s.negativeFeedback;
    while (dest.failure < 0) {
      dest.window -= 1;
      dest.failure += 1;
      dest.success = 0;
    }
    if (dest.window < 1) dest.window = 1;
    if (dest.failedCohorts >= s.failedCohortLimit) {
      // Dead: no more connection attempts until deadMs has passed.
      this.#dead.set(dest.key, { until: this.#options.clock.now() + s.deadMs, reply });
      const jobs = dest.drain();
      dest.window = Math.min(s.initialConcurrency, dest.limit);
      dest.failedCohorts = 0;
      dest.failure = 0;
      dest.success = 0;
      if (jobs.length > 0) this.#options.dead(jobs, reply);
    }
  }

  #forgetIfIdle(dest: Destination<J>): void {
    if (dest.queued > 0 || dest.running > 0 || dest.readyTimer) return;
    // Keep a destination with a rate delay until its pause is over.
    const now = this.#options.clock.now();
    if (dest.settings.rateDelay > 0 && dest.notBefore > now) {
      dest.readyTimer = this.#options.clock.setTimeout(() => {
        dest.readyTimer = undefined;
        if (dest.queued > 0) {
          this.#makeReady(dest);
          this.dispatch();
        } else this.#forgetIfIdle(dest);
      }, dest.notBefore - now);
      return;
    }
    this.#destinations.delete(dest.key);
    this.#inReady.delete(dest);
  }
}
