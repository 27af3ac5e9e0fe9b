/**
 * QueueManager: decides when and where each queued message goes.
 *
 * Postfix counterpart: qmgr(8). Claims due mail from the QueueStore into a bounded
 * active window (`qmgrMessageActiveLimit`), resolves every pending recipient to a
 * transport and nexthop through the Rewriter, groups recipients into delivery requests
 * of at most the transport's recipient limit, runs them with per-destination
 * concurrency limits and round-robin across destinations, records each outcome, then
 * removes the message (every recipient final, every DSN owed committed) or moves it to
 * deferred with Postfix's age-based backoff. Mail left deferred past its queue lifetime
 * is returned to the sender.
 *
 * Not here (yet): concurrency feedback and dead destinations, preemptive scheduling,
 * delay warnings and success notices, queue operations.
 *
 * Durability: outcomes are recorded (bounce/defer reasons durably) before a message
 * is released or removed; a crash at any point leaves the message claimable again
 * once its lease lapses, and only recipients in flight may be delivered twice.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { systemClock } from '../clock.js';
import type { Parameters } from '../config/parameters.js';
import type { AgentRegistry } from '../deliver/agent-registry.js';
import type { DeliveryRequest } from '../deliver/types.js';
import { TableError } from '../errors.js';
import { type ComponentLogger, formatDelay, type Logger, silentLogger } from '../log.js';
import { formatAddress } from '../rewrite/address.js';
import { parseTransportSpec } from '../rewrite/transport-spec.js';
import type { ResolveResult } from '../rewrite/types.js';
import { SmtpReply } from '../smtp-reply.js';
import type { Clock, QueueId, Recipient, RecipientResult, TimerHandle } from '../types.js';
import { isExpired, nextAttemptTime } from './backoff.js';
import { attemptDelivery } from './delivery-attempt.js';
import type {
  ClaimedMessage,
  Lease,
  MessageRecord,
  QueueStore,
  RecipientOutcome,
  StoredOutcome,
  StoredRecipient,
} from './types.js';

/** Per-transport overrides (the `transports` map: Postfix's `<transport>_destination_*`). */
export interface TransportLimits {
  readonly destinationConcurrencyLimit?: number;
  readonly destinationRecipientLimit?: number;
}

/** Resolves recipients to routes (the Rewriter implements it). */
export interface RouteResolver {
  resolve(address: string): Promise<ResolveResult>;
}

/** Sends non-delivery notices (Bounce implements it). */
export interface Notifier {
  notify(
    record: MessageRecord,
    recipients: readonly StoredRecipient[],
    kind: 'failure' | 'delay' | 'success',
  ): Promise<QueueId | undefined>;
}

export interface QueueManagerOptions {
  readonly store: QueueStore;
  readonly resolver: RouteResolver;
  readonly agents: AgentRegistry;
  readonly bounce: Notifier;
  readonly params: Parameters;
  readonly transports?: Readonly<Record<string, TransportLimits>>;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Lease owner name; random per instance by default. */
  readonly owner?: string;
  /** Lease length. @default 300000 (renewed every third of it while active) */
  readonly leaseMs?: number;
  /** Most deliveries in flight at once over all transports (Postfix default_process_limit). @default 100 */
  readonly processLimit?: number;
}

interface Job {
  readonly message: ActiveMessage;
  readonly transport: string;
  readonly nexthop: string;
  readonly recipients: Recipient[];
}

interface Destination {
  readonly key: string;
  readonly limit: number;
  readonly jobs: Job[];
  running: number;
}

interface ActiveMessage {
  readonly claimed: ClaimedMessage;
  lease: Lease;
  /** Recipient states, updated as outcomes are recorded. */
  readonly recipients: Map<number, StoredRecipient>;
  jobsLeft: number;
  readonly abort: AbortController;
  renewTimer?: TimerHandle;
}

const CLAIM_BATCH = 200;

export class QueueManager {
  readonly #store: QueueStore;
  readonly #resolver: RouteResolver;
  readonly #agents: AgentRegistry;
  readonly #bounce: Notifier;
  readonly #params: Parameters;
  readonly #transports: Readonly<Record<string, TransportLimits>>;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #log: ComponentLogger;
  readonly #owner: string;
  readonly #leaseMs: number;
  readonly #processLimit: number;

  readonly #active = new Map<QueueId, ActiveMessage>();
  readonly #destinations = new Map<string, Destination>();
  #ring: Destination[] = [];
  #running = 0;
  #started = false;
  #stopping = false;
  #claiming = false;
  #claimAgain = false;
  #runTimer: TimerHandle | undefined;
  #unsubscribe: (() => void) | undefined;
  readonly #finishing = new Set<Promise<void>>();
  #idleWaiters: (() => void)[] = [];

  constructor(options: QueueManagerOptions) {
    this.#store = options.store;
    this.#resolver = options.resolver;
    this.#agents = options.agents;
    this.#bounce = options.bounce;
    this.#params = options.params;
    this.#transports = options.transports ?? {};
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#log = this.#logger.for('qmgr');
    this.#owner = options.owner ?? `qmgr-${randomBytes(6).toString('hex')}`;
    this.#leaseMs = options.leaseMs ?? 300_000;
    this.#processLimit = options.processLimit ?? 100;
  }

  /** Messages in the active window. */
  get activeCount(): number {
    return this.#active.size;
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
    // Jobs not yet started will never start: take them out of the destinations.
    for (const dest of this.#destinations.values()) dest.jobs.length = 0;
    const deadline = setTimeout(() => {
      for (const m of this.#active.values()) m.abort.abort(new Error('queue manager stopping'));
    }, graceMs);
    deadline.unref();
    while (this.#running > 0 || this.#finishing.size > 0) {
      await Promise.race([...this.#finishing, new Promise((r) => setTimeout(r, 20))]);
    }
    clearTimeout(deadline);
    const now = this.#clock.now();
    await Promise.allSettled(
      [...this.#active.values()].map(async (m) => {
        m.renewTimer?.cancel();
        await this.#store.release(m.lease, { state: 'deferred', dueAt: now });
      }),
    );
    this.#active.clear();
    this.#started = false;
  }

  /** Resolves when nothing is active and the last claim found nothing due (for tests and tools). */
  whenIdle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

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

  async #claimLoop(): Promise<void> {
    this.#claiming = true;
    try {
      do {
        this.#claimAgain = false;
        for (;;) {
          const room = this.#params.qmgrMessageActiveLimit - this.#active.size;
          if (room <= 0 || this.#stopping) break;
          const claimed = await this.#store.claim({
            owner: this.#owner,
            limit: Math.min(room, CLAIM_BATCH),
            now: this.#clock.now(),
            leaseMs: this.#leaseMs,
          });
          for (const c of claimed) this.#activate(c);
          if (claimed.length < Math.min(room, CLAIM_BATCH)) break;
        }
      } while (this.#claimAgain && !this.#stopping);
    } catch (err) {
      this.#log.error(
        undefined,
        `queue scan failed: ${(err as Error).message}; will retry at the next queue run`,
      );
    } finally {
      this.#claiming = false;
      this.#checkIdle();
    }
  }

  #activate(claimed: ClaimedMessage): void {
    const { record, lease } = claimed;
    const message: ActiveMessage = {
      claimed,
      lease,
      recipients: new Map(record.recipients.map((r) => [r.id, r])),
      jobsLeft: 0,
      abort: new AbortController(),
    };
    this.#active.set(record.queueId, message);
    this.#log.info(
      record.queueId,
      `from=<${formatAddress(record.sender)}>, size=${record.size}, nrcpt=${record.recipients.length} (queue active)`,
    );
    this.#renewLater(message);
    const done = this.#route(message).catch((err) => {
      this.#log.error(record.queueId, `routing failed: ${(err as Error).message}`);
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

  #renewLater(message: ActiveMessage): void {
    message.renewTimer = this.#clock.setTimeout(() => {
      if (!this.#active.has(message.claimed.record.queueId)) return;
      this.#store.renew(message.lease, this.#clock.now() + this.#leaseMs).then(
        (lease) => {
          message.lease = lease;
          this.#renewLater(message);
        },
        (err) => {
          this.#log.warning(
            message.claimed.record.queueId,
            `lease lost: ${(err as Error).message}`,
          );
          message.abort.abort(err);
        },
      );
    }, this.#leaseMs / 3);
  }

  /** Resolves each pending recipient and queues delivery jobs. */
  async #route(message: ActiveMessage): Promise<void> {
    const { record } = message.claimed;
    const pending = [...message.recipients.values()].filter((r) => r.state === 'pending');
    const groups = new Map<
      string,
      { transport: string; nexthop: string; recipients: Recipient[] }
    >();
    const immediate: RecipientOutcome[] = [];
    const now = this.#clock.now();

    for (const rcpt of pending) {
      let route: { transport: string; nexthop: string };
      try {
        route = await this.#routeOf(record, rcpt);
      } catch (err) {
        const outcome = this.#errorOutcome(err, now);
        immediate.push({ recipientId: rcpt.id, outcome });
        this.#logOutcome('qmgr', record, rcpt, outcome);
        continue;
      }
      if ('bounce' in route) {
        const outcome = route.bounce as StoredOutcome;
        immediate.push({ recipientId: rcpt.id, outcome });
        this.#logOutcome('error', record, rcpt, outcome);
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
      const limit = this.#recipientLimit(g.transport);
      for (let i = 0; i < g.recipients.length; i += limit) {
        jobs.push({
          message,
          transport: g.transport,
          nexthop: g.nexthop,
          recipients: g.recipients.slice(i, i + limit),
        });
      }
    }
    message.jobsLeft = jobs.length;
    if (jobs.length === 0) {
      await this.#finish(message);
      return;
    }
    for (const job of jobs) this.#enqueue(job);
    this.#dispatch();
  }

  async #routeOf(
    record: MessageRecord,
    rcpt: Recipient,
  ): Promise<
    | { transport: string; nexthop: string }
    | { transport: string; nexthop: string; bounce: StoredOutcome }
  > {
    if (record.filter) {
      const spec = parseTransportSpec(record.filter);
      if (spec.transport) return { transport: spec.transport, nexthop: spec.nexthop ?? '' };
    }
    const resolved = await this.#resolver.resolve(rcpt.address);
    if (resolved.error) {
      const e = resolved.error;
      return {
        transport: 'error',
        nexthop: '',
        bounce: this.#outcome({
          status: 'bounced',
          reply: new SmtpReply(e.code, e.enhanced, e.text),
          relay: 'none',
        }),
      };
    }
    return { transport: resolved.transport, nexthop: resolved.nexthop };
  }

  #errorOutcome(err: unknown, now: number): StoredOutcome {
    const text =
      err instanceof TableError
        ? 'address resolver failure'
        : `internal error: ${(err as Error).message}`;
    return { status: 'deferred', code: 451, enhanced: '4.3.0', text, relay: 'none', time: now };
  }

  #recipientLimit(transport: string): number {
    const t = this.#transports[transport];
    if (t?.destinationRecipientLimit) return t.destinationRecipientLimit;
    return transport === 'local'
      ? this.#params.localDestinationRecipientLimit
      : this.#params.defaultDestinationRecipientLimit;
  }

  #concurrencyLimit(transport: string): number {
    const t = this.#transports[transport];
    if (t?.destinationConcurrencyLimit) return t.destinationConcurrencyLimit;
    return transport === 'local'
      ? this.#params.localDestinationConcurrencyLimit
      : this.#params.defaultDestinationConcurrencyLimit;
  }

  #enqueue(job: Job): void {
    // With a recipient limit of 1 the queue is per recipient, as in qmgr.
    const perRecipient = this.#recipientLimit(job.transport) === 1;
    const key = `${job.transport}\u0000${job.nexthop}${perRecipient ? `\u0000${job.recipients[0]!.address}` : ''}`;
    let dest = this.#destinations.get(key);
    if (!dest) {
      dest = { key, limit: this.#concurrencyLimit(job.transport), jobs: [], running: 0 };
      this.#destinations.set(key, dest);
      this.#ring.push(dest);
    }
    dest.jobs.push(job);
  }

  /** Starts jobs round-robin across destinations while limits allow. */
  #dispatch(): void {
    let progressed = true;
    while (progressed && this.#running < this.#processLimit) {
      progressed = false;
      for (const dest of this.#ring) {
        if (this.#running >= this.#processLimit) break;
        if (dest.running >= dest.limit || dest.jobs.length === 0) continue;
        const job = dest.jobs.shift()!;
        dest.running++;
        this.#running++;
        progressed = true;
        this.#track(this.#runJob(dest, job));
      }
    }
    // Forget destinations with nothing queued or running.
    if (this.#ring.some((d) => d.jobs.length === 0 && d.running === 0)) {
      this.#ring = this.#ring.filter((d) => {
        const keep = d.jobs.length > 0 || d.running > 0;
        if (!keep) this.#destinations.delete(d.key);
        return keep;
      });
    }
  }

  async #runJob(dest: Destination, job: Job): Promise<void> {
    const { message } = job;
    const { record } = message.claimed;
    try {
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
        signal: message.abort.signal,
      };
      const attempt = await attemptDelivery(this.#agents.get(job.transport), request);
      if (attempt.error !== undefined) {
        this.#log.warning(
          record.queueId,
          `transport ${job.transport} failed: ${String((attempt.error as Error)?.message ?? attempt.error)}`,
        );
      }
      const outcomes: RecipientOutcome[] = [];
      for (const rcpt of job.recipients) {
        const result = attempt.results.get(rcpt.id)!;
        const outcome = this.#outcome(result);
        outcomes.push({ recipientId: rcpt.id, outcome });
        this.#logOutcome(job.transport, record, rcpt, outcome);
      }
      await this.#record(message, outcomes);
    } catch (err) {
      this.#log.error(record.queueId, `recording outcomes failed: ${(err as Error).message}`);
      message.abort.abort(err);
    } finally {
      dest.running--;
      this.#running--;
      message.jobsLeft--;
      if (message.jobsLeft === 0) await this.#finish(message);
      this.#dispatch();
    }
  }

  /** A result as stored, with soft_bounce applied. */
  #outcome(result: RecipientResult): StoredOutcome {
    let { status, reply } = result;
    if (status === 'bounced' && this.#params.softBounce) {
      status = 'deferred';
      reply = reply.toTransient();
    }
    return {
      status,
      code: reply.code,
      enhanced: reply.enhanced,
      text: reply.text,
      time: this.#clock.now(),
      ...(result.relay !== undefined ? { relay: result.relay } : {}),
      ...(result.action !== undefined ? { action: result.action } : {}),
      ...(result.remoteMta !== undefined ? { remoteMta: result.remoteMta } : {}),
    };
  }

  async #record(message: ActiveMessage, outcomes: readonly RecipientOutcome[]): Promise<void> {
    if (outcomes.length === 0) return;
    await this.#store.recordOutcomes(message.lease, outcomes);
    for (const { recipientId, outcome } of outcomes) {
      const r = message.recipients.get(recipientId);
      if (!r) continue;
      const state =
        outcome.status === 'sent' ? 'sent' : outcome.status === 'bounced' ? 'bounced' : 'pending';
      message.recipients.set(recipientId, { ...r, state, last: outcome });
    }
  }

  /** The delivery line, logged under the agent's name as Postfix's agents log it. */
  #logOutcome(
    component: string,
    record: MessageRecord,
    rcpt: Recipient,
    outcome: StoredOutcome,
  ): void {
    const orig =
      rcpt.originalAddress !== rcpt.address
        ? `, orig_to=<${formatAddress(rcpt.originalAddress)}>`
        : '';
    const delay = formatDelay(outcome.time - record.arrivalTime);
    const status = outcome.status;
    const text = `to=<${formatAddress(rcpt.address)}>${orig}, relay=${outcome.relay ?? 'none'}, delay=${delay}, dsn=${outcome.enhanced}, status=${status} (${outcome.text})`;
    const fields = {
      to: rcpt.address,
      relay: outcome.relay ?? 'none',
      delay: (outcome.time - record.arrivalTime) / 1000,
      dsn: outcome.enhanced,
      status,
    };
    this.#logger.info(component, record.queueId, text, fields);
  }

  /** All jobs of this pass are done: expire, notify, then remove or defer. */
  async #finish(message: ActiveMessage): Promise<void> {
    const { record } = message.claimed;
    const id = record.queueId;
    try {
      const now = this.#clock.now();
      let pending = [...message.recipients.values()].filter((r) => r.state === 'pending');
      if (pending.length > 0 && isExpired(this.#params, record.arrivalTime, record.sender, now)) {
        const expired: RecipientOutcome[] = pending.map((r) => ({
          recipientId: r.id,
          outcome: {
            status: 'bounced',
            code: r.last?.code ?? 451,
            enhanced: r.last?.enhanced ?? '4.4.7',
            text: r.last?.text ?? 'message expired',
            time: now,
            ...(r.last?.relay ? { relay: r.last.relay } : {}),
          },
        }));
        await this.#record(message, expired);
        this.#log.info(
          id,
          `from=<${formatAddress(record.sender)}>, status=expired, returned to sender`,
        );
        pending = [];
      }

      const owed = [...message.recipients.values()].filter(
        (r) => r.state === 'bounced' && !r.last?.dsnSent,
      );
      if (owed.length > 0) {
        const current: MessageRecord = { ...record, recipients: [...message.recipients.values()] };
        await this.#bounce.notify(current, owed, 'failure');
        await this.#record(
          message,
          owed.map((r) => ({ recipientId: r.id, outcome: { ...r.last!, dsnSent: true } })),
        );
      }

      message.renewTimer?.cancel();
      if (pending.length === 0) {
        await this.#store.remove(message.lease);
        this.#log.info(id, 'removed');
      } else {
        const dueAt = nextAttemptTime(this.#params, record.arrivalTime, now);
        await this.#store.release(message.lease, { state: 'deferred', dueAt });
      }
    } catch (err) {
      // The lease lapses and the message is retried; nothing final is lost.
      this.#log.error(id, `could not finish this delivery pass: ${(err as Error).message}`);
      message.renewTimer?.cancel();
      try {
        await this.#store.release(message.lease, {
          state: 'deferred',
          dueAt: this.#clock.now() + this.#params.minimalBackoffTime,
        });
      } catch {
        // Lease already lost: the new owner has it.
      }
    } finally {
      this.#active.delete(id);
      if (!this.#stopping && this.#active.size < this.#params.qmgrMessageActiveLimit) this.wake();
    }
  }
}
