/**
 * QueueManager: decides when and where each queued message goes.
 *
 * Postfix counterpart: qmgr(8). Claims due mail from the QueueStore into a bounded
 * active window — at most `qmgrMessageActiveLimit` messages and, checked before each
 * claim, `qmgrMessageRecipientLimit` recipients (a claimed message brings its whole
 * recipient list; qmgr's reading of a huge message's recipients in slices is not
 * done) — resolves every pending recipient to a transport and nexthop through the
 * Rewriter, groups recipients into delivery requests of at most the transport's
 * recipient limit and hands them to the Scheduler (per-destination concurrency with
 * feedback, dead destinations, rate delays, round-robin fairness across destinations
 * and messages). Each outcome is recorded as it comes; when a message's jobs are done
 * finishMessage() removes it, returns it, warns or defers it with Postfix's backoff.
 *
 * Queue operations (Postfix's postsuper/postqueue): `hold`, `release`, `delete`,
 * `requeue` and `flush` (all deferred mail or one destination's), usable from the API
 * and, through the control socket, from `postern queue`. `deferTransports` mail stays
 * queued except when a flush claims it.
 *
 * Durability: outcomes are recorded (bounce/defer reasons durably) before a message
 * is released or removed; a crash at any point leaves the message claimable again
 * once its lease lapses, and only recipients in flight may be delivered twice.
 *
 * @module
 */

import { formatAddress } from '../../address/address.js';
import { builtin } from '../../builtin.js';
import { delay, systemClock } from '../../clock.js';
import type { AgentRegistry } from '../../deliver/agent-registry.js';
import type { DestinationStatus } from '../../deliver/types.js';
import { type ComponentLogger, type Logger, silentLogger } from '../../log.js';
import type { SmtpReply } from '../../smtp-reply.js';
import type { Clock, QueueId, TimerHandle } from '../../types.js';
import { errorMessage } from '../../util/error-message.js';
import { outcomesApplied } from '../lease.js';
import { deferredFor } from '../summary.js';
import type {
  ClaimedMessage,
  QueueSelection,
  QueueStore,
  RecipientOutcome,
  StoredRecipient,
} from '../types.js';
import { type ActiveMessage, abortOf, type Job } from './active-message.js';
import { type FinishContext, finishMessage, type Notifier } from './finish.js';
import { LeaseRenewer } from './lease-renewer.js';
import type { QmgrParameters } from './qmgr-parameters.js';
import { type RouteResolver, type RoutingContext, routeMessage } from './route-message.js';
import { deferDeadJob, type JobContext, runJob } from './run-job.js';
import { type DestinationView, Scheduler } from './scheduler.js';
import {
  type TransportLimits,
  type TransportSettings,
  transportSettings,
} from './transport-settings.js';

export type { Notifier } from './finish.js';
export type { RouteResolver } from './route-message.js';
export type { TransportLimits } from './transport-settings.js';

/**
 * What QueueManager needs.
 *
 * @example
 * ```ts
 * const manager = new QueueManager({
 *   store,
 *   resolver: rewriter,
 *   agents: new AgentRegistry().register('smtp', new SmtpDeliveryAgent({ params })),
 *   bounce,
 *   params,
 * } satisfies QueueManagerOptions);
 * ```
 */
export interface QueueManagerOptions {
  /** The queue it schedules from. */
  readonly store: QueueStore;
  /** Routes each recipient (the Rewriter). */
  readonly resolver: RouteResolver;
  /** Delivery agents by transport name. */
  readonly agents: AgentRegistry;
  /** Sends bounce, delay and success notices (Bounce). */
  readonly bounce: Notifier;
  /** The queue parameters (`maximalQueueLifetime`, backoff times, concurrency...). */
  readonly params: QmgrParameters;
  /** Per-transport overrides of the destination limits. */
  readonly transports?: Readonly<Record<string, TransportLimits>>;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Logs under component `qmgr`. @default silentLogger */
  readonly logger?: Logger;
  /** Lease owner name; random per instance by default. */
  readonly owner?: string;
  /** Lease length. @default 300000 (renewed every third of it while active) */
  readonly leaseMs?: number;
  /** Most deliveries in flight at once over all transports (Postfix default_process_limit). @default 100 */
  readonly processLimit?: number;
}

const CLAIM_BATCH = 200;

/**
 * Schedules deliveries: claims messages from the store, groups recipients by transport
 * and nexthop, runs agents under per-destination concurrency, and records outcomes with
 * backoff and bounces. Postfix counterpart: qmgr(8).
 *
 * @example
 * ```ts
 * const manager = new QueueManager({ store, resolver: rewriter, agents, bounce, params });
 * manager.start();
 * await manager.whenIdle();
 * await manager.stop();
 * ```
 */
export class QueueManager {
  readonly #store: QueueStore;
  readonly #params: QmgrParameters;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #log: ComponentLogger;
  readonly #owner: string;
  readonly #leaseMs: number;
  readonly #settings = new Map<string, TransportSettings>();
  readonly #transports: Readonly<Record<string, TransportLimits>>;
  readonly #finishContext: FinishContext;
  readonly #routing: RoutingContext;
  readonly #jobs: JobContext;
  readonly #scheduler: Scheduler<Job>;
  readonly #renewer: LeaseRenewer;

  readonly #active = new Map<QueueId, ActiveMessage>();
  #activeRecipients = 0;
  #started = false;
  #stopping = false;
  #claiming = false;
  #claimAgain = false;
  /** The last claim pass stopped at the window's limit: a finished message makes room. */
  #windowFull = false;
  /** Messages claimed while set deliver even through deferTransports (a flush). */
  #flushPending = false;
  #runTimer: TimerHandle | undefined;
  #dueTimer: TimerHandle | undefined;
  #dueAt = 0;
  #unsubscribe: (() => void) | undefined;
  /** Routings and jobs in progress (a count: no set entry per promise). */
  #finishing = 0;
  /** Woken when one of them settles (made only while stop() waits). */
  #settled: (() => void) | undefined;
  #idleWaiters: (() => void)[] = [];

  constructor(options: QueueManagerOptions) {
    this.#store = options.store;
    this.#params = options.params;
    this.#transports = options.transports ?? {};
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#log = this.#logger.for('qmgr');
    this.#owner = options.owner ?? `qmgr-${builtin('crypto').randomBytes(6).toString('hex')}`;
    this.#leaseMs = options.leaseMs ?? 300_000;
    // Check every transport's settings now, so a bad value is a start-up error.
    for (const name of Object.keys(this.#transports)) this.#settingsFor(name);
    this.#finishContext = {
      store: this.#store,
      bounce: options.bounce,
      params: this.#params,
      clock: this.#clock,
      log: this.#log,
      record: (m, o) => this.#record(m, o),
      stopping: () => this.#stopping,
    };
    this.#routing = {
      resolver: options.resolver,
      params: this.#params,
      logger: this.#logger,
      now: () => this.#clock.now(),
      recipientLimit: (t) => this.#settingsFor(t).recipientLimit,
    };
    this.#jobs = {
      store: this.#store,
      agents: options.agents,
      clock: this.#clock,
      logger: this.#logger,
      log: this.#log,
      params: this.#params,
      concurrencyLimit: (t) => this.#settingsFor(t).concurrencyLimit,
      stopping: () => this.#stopping,
      record: (m, o) => this.#record(m, o),
    };
    this.#renewer = new LeaseRenewer({
      clock: this.#clock,
      leaseMs: this.#leaseMs,
      active: () => this.#active.values(),
      renew: (lease, expiresAt) => this.#store.renew(lease, expiresAt),
      lost: (message, err) => {
        const id = message.claimed.record.queueId;
        if (this.#active.get(id) !== message) return;
        this.#log.warning(id, `lease lost: ${errorMessage(err)}`);
        abortOf(message).abort(err);
      },
    });
    this.#scheduler = new Scheduler<Job>({
      clock: this.#clock,
      processLimit: options.processLimit ?? 100,
      settings: (t) => this.#settingsFor(t),
      start: (job) => void this.#runJob(job),
      dead: (jobs, reply) => {
        for (const job of jobs) this.#track(this.#deferDead(job, reply));
      },
    });
  }

  /** Messages in the active window. */
  get activeCount(): number {
    return this.#active.size;
  }

  /** Recipients held in the active window. */
  get activeRecipientCount(): number {
    return this.#activeRecipients;
  }

  /** What each destination is doing now (window, running, queued, dead). */
  destinations(): DestinationView[] {
    return this.#scheduler.destinations();
  }

  /** Starts claiming: at once, whenever the store has new mail, and every queueRunDelay. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#unsubscribe = this.#store.onAvailable(() => this.wake());
    this.#scheduleRun();
    this.wake();
  }

  /** Asks for a claim pass now (Postfix's qmgr trigger). */
  wake(): void {
    if (!this.#started || this.#stopping) return;
    if (this.#claiming) {
      this.#claimAgain = true;
      return;
    }
    void this.#claimLoop();
  }

  /**
   * Stops claiming, lets deliveries in flight finish for up to `graceMs`, then aborts
   * the rest; messages not finished are released so they are retried at once by
   * whoever claims next.
   */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.#started || this.#stopping) return;
    this.#stopping = true;
    this.#unsubscribe?.();
    this.#runTimer?.cancel();
    this.#dueTimer?.cancel();
    // Jobs not yet started will never start.
    this.#scheduler.stop();
    this.#renewer.stop();
    const deadline = this.#clock.setTimeout(() => {
      // A delivery that has not read its request's signal yet finds it aborted when it does.
      for (const m of this.#active.values()) abortOf(m).abort(new Error('queue manager stopping'));
    }, graceMs);
    while (this.#scheduler.running > 0 || this.#finishing > 0) {
      const tick = delay(this.#clock, 20);
      const settled = new Promise<void>((resolve) => {
        this.#settled = resolve;
      });
      await Promise.race([settled, tick.done]);
      this.#settled = undefined;
      tick.cancel();
    }
    deadline.cancel();
    const now = this.#clock.now();
    await Promise.allSettled(
      [...this.#active.values()].map(async (m) => {
        await this.#store.release(m.lease, { state: 'deferred', dueAt: now });
      }),
    );
    this.#active.clear();
    this.#activeRecipients = 0;
    this.#started = false;
  }

  /** Resolves when nothing is active and the last claim found nothing due (for tests and tools). */
  whenIdle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  // ---- queue operations (postsuper / postqueue) ----

  /** postsuper -h: puts messages on hold (active ones stop being delivered). */
  async hold(selection: QueueSelection, reason?: string): Promise<QueueId[]> {
    this.#withdraw(selection);
    const ids = await this.#store.hold(selection, reason);
    for (const id of ids) this.#log.info(id, 'placed on hold');
    return ids;
  }

  /** postsuper -H: releases held messages; they are delivered at once. */
  async release(selection: QueueSelection): Promise<QueueId[]> {
    const ids = await this.#store.unhold(selection);
    for (const id of ids) this.#log.info(id, 'released from hold');
    this.wake();
    return ids;
  }

  /** postsuper -d: deletes messages whatever their state. */
  async delete(selection: QueueSelection): Promise<QueueId[]> {
    this.#withdraw(selection);
    const ids = await this.#store.delete(selection);
    for (const id of ids) this.#log.info(id, 'removed');
    return ids;
  }

  /** postsuper -r: requeues messages; their recipients are routed afresh. */
  async requeue(selection: QueueSelection): Promise<QueueId[]> {
    this.#withdraw(selection);
    const ids = await this.#store.requeue(selection);
    for (const id of ids) this.#log.info(id, 'requeued');
    this.wake();
    return ids;
  }

  /**
   * postqueue -f / -i ID / -s SITE: forgets dead destinations and makes deferred mail
   * due now (all of it, the selected messages, or those with a pending recipient at
   * `domain`), delivering even through `deferTransports`.
   */
  async flush(target: QueueSelection | { readonly domain: string } = 'ALL'): Promise<QueueId[]> {
    this.#scheduler.flushDead();
    let selection: QueueSelection;
    if (typeof target === 'object' && 'domain' in target) {
      const want = target.domain.toLowerCase().replace(/^\[|\]$/g, '');
      selection = await deferredFor(this.#store, want);
    } else selection = target;
    // Set first: the store announces the expedited mail before expedite() resolves.
    this.#flushPending = true;
    const ids = await this.#store.expedite(selection);
    this.wake();
    return ids;
  }

  /** Aborts the active deliveries of the selected messages; their queued jobs are dropped. */
  #withdraw(selection: QueueSelection): void {
    const ids = selection === 'ALL' ? [...this.#active.keys()] : selection;
    for (const id of ids) {
      const m = this.#active.get(id);
      if (!m) continue;
      abortOf(m).abort(new Error('queue operation'));
      const dropped = this.#scheduler.removeMessage(id, m.destinations);
      m.jobsLeft -= dropped.length;
      if (m.jobsLeft === 0) this.#track(this.#finish(m));
    }
  }

  // ---- claiming ----

  #isIdle(): boolean {
    return this.#active.size === 0 && !this.#claiming && this.#finishing === 0;
  }

  #checkIdle(): void {
    if (!this.#isIdle()) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  #scheduleRun(): void {
    this.#runTimer = this.#clock.setTimeout(() => {
      if (this.#stopping) return;
      this.#scheduleRun();
      this.wake();
    }, this.#params.queueRunDelay);
  }

  #room(): number {
    const messages = this.#params.qmgrMessageActiveLimit - this.#active.size;
    const recipients = this.#params.qmgrMessageRecipientLimit - this.#activeRecipients;
    return Math.min(messages, recipients, CLAIM_BATCH);
  }

  /**
   * Sleeps until the earliest deferred due time (from the store's index), so a retry
   * is not late by up to a queueRunDelay; the periodic run remains as a safety net.
   */
  async #wakeWhenDue(): Promise<void> {
    if (this.#stopping) return;
    const due = await this.#store.nextDueTime();
    if (due === undefined || (this.#dueTimer && this.#dueAt <= due)) return;
    this.#dueTimer?.cancel();
    this.#dueAt = due;
    this.#dueTimer = this.#clock.setTimeout(
      () => {
        this.#dueTimer = undefined;
        this.wake();
      },
      Math.max(0, due - this.#clock.now()),
    );
  }

  async #claimLoop(): Promise<void> {
    this.#claiming = true;
    try {
      do {
        this.#claimAgain = false;
        const flush = this.#flushPending;
        this.#flushPending = false;
        for (;;) {
          const room = this.#room();
          this.#windowFull = room <= 0;
          if (room <= 0 || this.#stopping) break;
          const claimed = await this.#store.claim({
            owner: this.#owner,
            limit: room,
            now: this.#clock.now(),
            leaseMs: this.#leaseMs,
          });
          for (const c of claimed) this.#activate(c, flush);
          if (claimed.length < room) break;
        }
      } while (this.#claimAgain && !this.#stopping);
      await this.#wakeWhenDue();
    } catch (err) {
      this.#log.error(
        undefined,
        `queue scan failed: ${errorMessage(err)}; will retry at the next queue run`,
      );
    } finally {
      this.#claiming = false;
      this.#checkIdle();
    }
  }

  #activate(claimed: ClaimedMessage, flush: boolean): void {
    const { record, lease } = claimed;
    const message: ActiveMessage = {
      claimed,
      lease,
      // Shared until the first outcome replaces it (never changed in place).
      recipients: record.recipients,
      jobsLeft: 0,
      abort: undefined,
      destinations: [],
      sentNow: undefined,
      flush,
      firstPass: claimed.from === 'incoming' && !record.recipients.some(wasDeferred),
      weight: record.recipients.length,
    };
    this.#active.set(record.queueId, message);
    this.#activeRecipients += message.weight;
    this.#log.info(
      record.queueId,
      `from=<${formatAddress(record.sender)}>, size=${record.size}, nrcpt=${record.recipients.length} (queue active)`,
    );
    this.#renewer.start();
    void this.#route(message);
  }

  /** Work in progress (routing, a job, a finish) begins: stop() and whenIdle() wait for it. */
  #enter(): void {
    this.#finishing++;
  }

  /** Work in progress has ended. */
  #leave(): void {
    this.#finishing--;
    this.#settled?.();
    this.#checkIdle();
  }

  /** Counts `p` as work in progress until it settles. */
  #track(p: Promise<void>): void {
    this.#enter();
    // A rejection still surfaces as before (unhandled): these never reject by design.
    void p.then(
      () => this.#leave(),
      (err: unknown) => {
        this.#leave();
        throw err;
      },
    );
  }

  // ---- routing ----

  /**
   * Resolves each pending recipient and queues delivery jobs; counted as work in
   * progress by itself (no promise made around it to track), a failure logged.
   */
  async #route(message: ActiveMessage): Promise<void> {
    this.#enter();
    try {
      const { jobs, immediate } = await routeMessage(this.#routing, message);
      if (immediate.length > 0) await this.#record(message, immediate);
      message.jobsLeft = jobs.length;
      if (jobs.length === 0) {
        await this.#finish(message);
        return;
      }
      for (const job of jobs) this.#scheduler.add(job);
      this.#scheduler.dispatch();
    } catch (err) {
      this.#log.error(message.claimed.record.queueId, `routing failed: ${errorMessage(err)}`);
    } finally {
      this.#leave();
    }
  }

  /** Scheduling settings of a transport (cached; checked once). */
  #settingsFor(transport: string): TransportSettings {
    let settings = this.#settings.get(transport);
    if (!settings) {
      settings = transportSettings(this.#params, this.#transports, transport);
      this.#settings.set(transport, settings);
    }
    return settings;
  }

  // ---- delivery ----

  /** Runs a job, counted as work in progress by itself, and finishes its message after the last. */
  async #runJob(job: Job): Promise<void> {
    this.#enter();
    let destination: DestinationStatus | undefined;
    try {
      destination = await runJob(this.#jobs, job);
    } finally {
      this.#scheduler.completed(job, destination);
      try {
        if (--job.message.jobsLeft === 0) await this.#finish(job.message);
      } finally {
        this.#leave();
      }
    }
  }

  /** Defers a job of a dead destination without an attempt. */
  async #deferDead(job: Job, reply: SmtpReply): Promise<void> {
    try {
      await deferDeadJob(this.#jobs, job, reply);
    } finally {
      if (--job.message.jobsLeft === 0) await this.#finish(job.message);
    }
  }

  async #record(message: ActiveMessage, outcomes: readonly RecipientOutcome[]): Promise<void> {
    if (outcomes.length === 0) return;
    await this.#store.recordOutcomes(message.lease, outcomes);
    // The in-memory copy follows the store's rules (a final state is never undone).
    message.recipients = outcomesApplied(message.recipients, outcomes);
  }

  /** All jobs of this pass are done. */
  async #finish(message: ActiveMessage): Promise<void> {
    const id = message.claimed.record.queueId;
    try {
      await finishMessage(this.#finishContext, message);
    } finally {
      if (this.#active.get(id) === message) {
        this.#active.delete(id);
        this.#activeRecipients -= message.weight;
      }
      // Room for more only matters if mail was left behind for want of it; new mail
      // wakes the manager through the store (a claim with nothing to find is not free
      // on a shared store).
      if (!this.#stopping && this.#windowFull) this.wake();
    }
  }
}

function wasDeferred(r: StoredRecipient): boolean {
  return r.last?.status === 'deferred';
}
