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

import { randomBytes } from 'node:crypto';
import { formatAddress } from '../../address/address.js';
import { delay, systemClock } from '../../clock.js';
import type { Parameters } from '../../config/parameters.js';
import type { AgentRegistry } from '../../deliver/agent-registry.js';
import type { DeliveryRequest, DestinationStatus } from '../../deliver/types.js';
import { type ComponentLogger, type Logger, silentLogger } from '../../log.js';
import { parseTransportSpec } from '../../rewrite/transport-spec.js';
import type { ResolveResult } from '../../rewrite/types.js';
import { SmtpReply } from '../../smtp-reply.js';
import type { Clock, QueueId, Recipient, TimerHandle } from '../../types.js';
import { errorMessage } from '../../util/error-message.js';
import { applyOutcomes } from '../lease.js';
import { deferredFor } from '../summary.js';
import type {
  ClaimedMessage,
  DestinationSlot,
  MessageRecord,
  QueueSelection,
  QueueStore,
  RecipientOutcome,
  StoredOutcome,
} from '../types.js';
import { type ActiveMessage, abortOf, type Job } from './active-message.js';
import { attemptDelivery } from './delivery-attempt.js';
import { type FinishContext, finishMessage, type Notifier } from './finish.js';
import { LeaseRenewer } from './lease-renewer.js';
import { type DestinationView, Scheduler } from './scheduler.js';
import { logDelivery, routingFailure, storedOutcome } from './stored-outcome.js';
import {
  type TransportLimits,
  type TransportSettings,
  transportSettings,
} from './transport-settings.js';

export type { Notifier } from './finish.js';
export type { TransportLimits } from './transport-settings.js';

/**
 * Resolves recipients to routes (the Rewriter implements it).
 *
 * @example
 * ```ts
 * const resolver: RouteResolver = new Rewriter({ params });
 * const route = await resolver.resolve('bob@example.net'); // { transport: 'smtp', nexthop: 'example.net', ... }
 * ```
 */
export interface RouteResolver {
  /** The transport, nexthop and class for a recipient (`sender`: sender-dependent maps). */
  resolve(address: string, sender?: string): Promise<ResolveResult>;
}

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
  readonly params: Parameters;
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

type Route = { transport: string; nexthop: string } | { bounce: StoredOutcome };

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
  readonly #resolver: RouteResolver;
  readonly #agents: AgentRegistry;
  readonly #params: Parameters;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #log: ComponentLogger;
  readonly #owner: string;
  readonly #leaseMs: number;
  readonly #settings = new Map<string, TransportSettings>();
  readonly #transports: Readonly<Record<string, TransportLimits>>;
  readonly #finishContext: FinishContext;
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
  readonly #finishing = new Set<Promise<void>>();
  #idleWaiters: (() => void)[] = [];

  constructor(options: QueueManagerOptions) {
    this.#store = options.store;
    this.#resolver = options.resolver;
    this.#agents = options.agents;
    this.#params = options.params;
    this.#transports = options.transports ?? {};
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#log = this.#logger.for('qmgr');
    this.#owner = options.owner ?? `qmgr-${randomBytes(6).toString('hex')}`;
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
      start: (job) => this.#track(this.#runJob(job)),
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
      for (const m of this.#active.values()) m.abort?.abort(new Error('queue manager stopping'));
    }, graceMs);
    while (this.#scheduler.running > 0 || this.#finishing.size > 0) {
      const tick = delay(this.#clock, 20);
      await Promise.race([...this.#finishing, tick.done]);
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
    return this.#active.size === 0 && !this.#claiming && this.#finishing.size === 0;
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
      firstPass:
        claimed.from === 'incoming' &&
        !record.recipients.some((r) => r.last?.status === 'deferred'),
      weight: record.recipients.length,
    };
    this.#active.set(record.queueId, message);
    this.#activeRecipients += message.weight;
    this.#log.info(
      record.queueId,
      `from=<${formatAddress(record.sender)}>, size=${record.size}, nrcpt=${record.recipients.length} (queue active)`,
    );
    this.#renewer.start();
    const done = this.#route(message).catch((err) => {
      this.#log.error(record.queueId, `routing failed: ${errorMessage(err)}`);
    });
    this.#track(done);
  }

  #track(p: Promise<void>): void {
    this.#finishing.add(p);
    void p.finally(() => {
      this.#finishing.delete(p);
      this.#checkIdle();
    });
  }

  // ---- routing ----

  /** Resolves each pending recipient and queues delivery jobs. */
  async #route(message: ActiveMessage): Promise<void> {
    const { record } = message.claimed;
    const pending = message.recipients.filter((r) => r.state === 'pending');
    const groups = new Map<
      string,
      { transport: string; nexthop: string; recipients: Recipient[] }
    >();
    const immediate: RecipientOutcome[] = [];
    const now = this.#clock.now();

    for (const rcpt of pending) {
      let route: Route;
      try {
        route = await this.#routeOf(record, rcpt);
      } catch (err) {
        const outcome = routingFailure(err, now);
        immediate.push({ recipientId: rcpt.id, outcome });
        logDelivery(this.#logger, 'qmgr', record, rcpt, outcome);
        continue;
      }
      if ('bounce' in route) {
        immediate.push({ recipientId: rcpt.id, outcome: route.bounce });
        logDelivery(this.#logger, 'error', record, rcpt, route.bounce);
        continue;
      }
      if (!message.flush && this.#params.deferTransports.includes(route.transport)) {
        const outcome: StoredOutcome = {
          status: 'deferred',
          code: 450,
          enhanced: '4.3.2',
          text: 'deferred transport',
          relay: 'none',
          time: now,
        };
        immediate.push({ recipientId: rcpt.id, outcome });
        logDelivery(this.#logger, route.transport, record, rcpt, outcome);
        continue;
      }
      const key = `${route.transport}\u0000${route.nexthop}`;
      let g = groups.get(key);
      if (!g) {
        g = { transport: route.transport, nexthop: route.nexthop, recipients: [] };
        groups.set(key, g);
      }
      g.recipients.push(rcpt);
    }

    if (immediate.length > 0) await this.#record(message, immediate);

    const jobs: Job[] = [];
    for (const g of groups.values()) {
      const limit = this.#settingsFor(g.transport).recipientLimit;
      for (let i = 0; i < g.recipients.length; i += limit) {
        const recipients =
          g.recipients.length <= limit ? g.recipients : g.recipients.slice(i, i + limit);
        // With a recipient limit of 1 the queue is per recipient, as in qmgr.
        const destination =
          limit === 1
            ? `${g.transport}\u0000${g.nexthop}\u0000${recipients[0]!.address}`
            : `${g.transport}\u0000${g.nexthop}`;
        if (i === 0) message.destinations.push(destination);
        jobs.push({
          messageId: record.queueId,
          destination,
          transport: g.transport,
          nexthop: g.nexthop,
          message,
          recipients,
        });
      }
    }
    message.jobsLeft = jobs.length;
    if (jobs.length === 0) {
      await this.#finish(message);
      return;
    }
    for (const job of jobs) this.#scheduler.add(job);
    this.#scheduler.dispatch();
  }

  /** The route of one recipient (a FILTER overrides the resolver). */
  async #routeOf(record: MessageRecord, rcpt: Recipient): Promise<Route> {
    if (record.filter) {
      const spec = parseTransportSpec(record.filter);
      if (spec.transport) return { transport: spec.transport, nexthop: spec.nexthop ?? '' };
    }
    const resolved = await this.#resolver.resolve(rcpt.address, record.sender);
    if (resolved.error) {
      const e = resolved.error;
      return {
        bounce: storedOutcome(
          { status: 'bounced', reply: new SmtpReply(e.code, e.enhanced, e.text), relay: 'none' },
          this.#params.softBounce,
          this.#clock.now(),
        ),
      };
    }
    return { transport: resolved.transport, nexthop: resolved.nexthop };
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

  async #runJob(job: Job): Promise<void> {
    const { message } = job;
    const { record } = message.claimed;
    let destination: DestinationStatus | undefined;
    let slot: DestinationSlot | undefined;
    try {
      const { signal } = abortOf(message);
      slot = await this.#clusterSlot(job, signal);
      const request: DeliveryRequest = {
        queueId: record.queueId,
        transport: job.transport,
        nexthop: job.nexthop,
        sender: record.sender,
        recipients: job.recipients,
        size: record.size,
        bodyType: record.bodyType,
        smtputf8: record.smtputf8,
        eightBit: record.eightBit,
        ...(record.envid !== undefined ? { envid: record.envid } : {}),
        ...(record.ret !== undefined ? { ret: record.ret } : {}),
        arrivalTime: record.arrivalTime,
        source: record.source,
        openContent: () => this.#store.openContent(record.queueId),
        signal,
      };
      const attempt = await attemptDelivery(this.#agents.get(job.transport), request);
      destination = attempt.destination;
      if (attempt.error !== undefined) {
        this.#log.warning(
          record.queueId,
          `transport ${job.transport} failed: ${String((attempt.error as Error)?.message ?? attempt.error)}`,
        );
      }
      const outcomes: RecipientOutcome[] = [];
      for (const rcpt of job.recipients) {
        const outcome = storedOutcome(
          attempt.results.get(rcpt.id)!,
          this.#params.softBounce,
          this.#clock.now(),
        );
        outcomes.push({ recipientId: rcpt.id, outcome });
        if (outcome.status === 'sent') {
          message.sentNow ??= [];
          message.sentNow.push(rcpt.id);
        }
        logDelivery(this.#logger, job.transport, record, rcpt, outcome);
      }
      await this.#record(message, outcomes);
    } catch (err) {
      this.#log.error(record.queueId, `recording outcomes failed: ${errorMessage(err)}`);
      abortOf(message).abort(err);
    } finally {
      await slot?.release().catch(() => undefined);
      this.#scheduler.completed(job, destination);
      await this.#jobDone(message);
    }
  }

  /**
   * With a store shared by several nodes (PostgresQueueStore), waits for one of the
   * destination's cluster-wide slots, so that N nodes together stay within the
   * destination's concurrency limit instead of N times it. The wait is a short poll:
   * a full destination answers at once, and slots free as deliveries end.
   */
  async #clusterSlot(job: Job, signal: AbortSignal): Promise<DestinationSlot | undefined> {
    const store = this.#store;
    if (!store.acquireDestinationSlot) return undefined;
    const limit = this.#settingsFor(job.transport).concurrencyLimit;
    const key = `${job.transport}:${job.nexthop}`;
    for (let wait = 10; ; wait = Math.min(wait * 2, 500)) {
      const slot = await store.acquireDestinationSlot(key, limit);
      if (slot) return slot;
      if (signal.aborted || this.#stopping)
        throw new Error('stopped while waiting for a destination slot');
      await delay(this.#clock, wait).done;
    }
  }

  /** Defers a job of a dead destination without an attempt (Postfix's `retry` path). */
  async #deferDead(job: Job, reply: SmtpReply): Promise<void> {
    const { message } = job;
    const { record } = message.claimed;
    try {
      const transient = reply.positive ? reply : reply.toTransient();
      const outcome: StoredOutcome = {
        status: 'deferred',
        code: transient.code,
        enhanced: transient.enhanced,
        text: `delivery temporarily suspended: ${transient.text}`,
        relay: 'none',
        time: this.#clock.now(),
      };
      const outcomes = job.recipients.map((r) => ({ recipientId: r.id, outcome }));
      for (const r of job.recipients) logDelivery(this.#logger, 'retry', record, r, outcome);
      await this.#record(message, outcomes);
    } catch (err) {
      this.#log.error(record.queueId, `recording outcomes failed: ${errorMessage(err)}`);
    } finally {
      await this.#jobDone(message);
    }
  }

  async #jobDone(message: ActiveMessage): Promise<void> {
    message.jobsLeft--;
    if (message.jobsLeft === 0) await this.#finish(message);
  }

  async #record(message: ActiveMessage, outcomes: readonly RecipientOutcome[]): Promise<void> {
    if (outcomes.length === 0) return;
    await this.#store.recordOutcomes(message.lease, outcomes);
    // The in-memory copy follows the store's rules (a final state is never undone).
    const { record } = message.claimed;
    message.recipients = applyOutcomes(
      { ...record, recipients: message.recipients },
      outcomes,
    ).recipients;
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
