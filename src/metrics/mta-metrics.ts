/**
 * MtaMetrics: an Mta's counters and gauges — queue sizes per state and the age of the
 * oldest queued message, deliveries by transport and status with their delays, active
 * sessions per listener, messages received per receiver, rejects by reason, failed
 * SASL logins and TLS sessions — as a snapshot, as events, and optionally as a
 * Prometheus endpoint with a health check (`/healthz`).
 *
 * Postfix counterpart: none built in. Postfix operators get these numbers from the
 * maillog (pflogsumm), `qshape` and `postqueue -p`; Postern counts the same facts:
 * deliveries from the structured delivery events of the log (the `to=..., relay=...,
 * delay=..., status=...` lines, whose `fields` carry the data), rejects, SASL failures
 * and TLS sessions from their log lines (log-counters.ts), queue sizes and the oldest
 * arrival from the store, sessions from the receivers.
 *
 * Events go to `subscribe()` listeners and to the `postern:metrics` diagnostics
 * channel as `{ metrics, event }`, so a process with several Mtas can tell them apart.
 *
 * Does not: persist counters (they start at zero with the process, as Prometheus
 * counters do), or count anything logged by another Mta sharing the same Logger
 * (give each Mta its own Logger to keep their numbers apart).
 *
 * @module
 */

import diagnostics from 'node:diagnostics_channel';
import type { Logger } from '../log.js';
import { visitSummaries } from '../queue/summary.js';
import type { QueueCounts, QueueStore } from '../queue/types.js';
import type { BoundListener } from '../service-network.js';
import type {
  LogEvent,
  QueueId,
  RecipientStatus,
  SubmissionPort,
  SubmissionSource,
} from '../types.js';
import { errorMessage } from '../util/error-message.js';
import { countingSubmission } from './counting-submission.js';
import { DelayHistogram } from './delay-histogram.js';
import { LogCounters } from './log-counters.js';
import { PrometheusEndpoint } from './prometheus-endpoint.js';
import { formatPrometheus } from './prometheus-format.js';
import type {
  DeliveryMetrics,
  HealthStatus,
  MetricsEvent,
  MetricsSnapshot,
  SessionMetrics,
} from './types.js';

const channel = diagnostics.channel('postern:metrics');

const STATUSES: ReadonlySet<string> = new Set<RecipientStatus>(['sent', 'deferred', 'bounced']);

/**
 * What MtaMetrics counts from; the Mta passes its own components.
 *
 * @example
 * ```ts
 * const metrics = new MtaMetrics({ logger, store, sessions: () => [], now: Date.now });
 * ```
 */
export interface MtaMetricsOptions {
  /** The Mta's logger: delivery events are counted from it. */
  readonly logger: Logger;
  /** Queue sizes come from its `counts()`. */
  readonly store: QueueStore;
  /** The sessions open now, per listener. */
  readonly sessions: () => readonly SessionMetrics[];
  /** The clock, for the snapshot's time. */
  readonly now: () => number;
  /** Checks beyond the queue store's for `/healthz` (the Mta's state); `ok` or what is wrong. */
  readonly health?: () => Readonly<Record<string, string>>;
}

/** The states whose messages count for the oldest message's age (corrupt mail waits for a human). */
const WAITING = ['incoming', 'active', 'deferred', 'hold'] as const;
/** How long /healthz waits for the queue store to answer. */
const HEALTH_TIMEOUT_MS = 5000;

interface DeliveryCounter {
  readonly transport: string;
  readonly status: RecipientStatus;
  count: number;
  readonly delays: DelayHistogram;
}

/**
 * An Mta's counters and gauges (`mta.metrics`): a snapshot, events, and the Prometheus
 * endpoint when the config has `metrics.listen`.
 *
 * @example
 * ```ts
 * const mta = new Mta({ metrics: { listen: '127.0.0.1:9464' } });
 * mta.metrics.subscribe((e) => {
 *   if (e.type === 'delivery') console.log(e.transport, e.status, e.delay);
 * });
 * await mta.start();
 * const { queue, deliveries } = await mta.metrics.snapshot();
 * ```
 */
export class MtaMetrics {
  readonly #logger: Logger;
  readonly #store: QueueStore;
  readonly #sessions: () => readonly SessionMetrics[];
  readonly #now: () => number;
  readonly #deliveries = new Map<string, DeliveryCounter>();
  readonly #received = new Map<string, number>();
  readonly #listeners = new Set<(event: MetricsEvent) => void>();
  readonly #counters = new LogCounters();
  readonly #health: (() => Readonly<Record<string, string>>) | undefined;
  readonly #removeSink: () => void;
  #endpoint: PrometheusEndpoint | undefined;

  constructor(options: MtaMetricsOptions) {
    this.#logger = options.logger;
    this.#store = options.store;
    this.#sessions = options.sessions;
    this.#now = options.now;
    this.#health = options.health;
    this.#removeSink = options.logger.addSink((e) => this.#onLog(e));
  }

  /** Calls `listener` for every delivery outcome and every message received; returns the unsubscribe function. */
  subscribe(listener: (event: MetricsEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Every metric now. Queue sizes are read from the store, which must be open for them. */
  async snapshot(): Promise<MetricsSnapshot> {
    let queue: QueueCounts | undefined;
    try {
      queue = await this.#store.counts();
    } catch {
      // A closed store (before start, after stop) has no sizes to give.
      queue = undefined;
    }
    const deliveries: DeliveryMetrics[] = [...this.#deliveries.values()].map((d) => ({
      transport: d.transport,
      status: d.status,
      count: d.count,
      delaySum: d.delays.sum,
      delayBuckets: d.delays.cumulative(),
    }));
    const now = this.#now();
    const nodes = await this.#store.nodes?.().catch(() => undefined);
    const roundTrips = this.#store.roundTrips;
    return {
      time: now,
      queue,
      deliveries,
      sessions: this.#sessions(),
      received: Object.fromEntries(this.#received),
      rejects: this.#counters.rejects,
      saslFailures: this.#counters.saslFailures,
      tlsSessions: this.#counters.tlsSessions,
      oldestMessageAge: queue ? await this.#oldestAge(now) : undefined,
      ...(nodes ? { nodes } : {}),
      ...(roundTrips !== undefined ? { storeRoundTrips: roundTrips } : {}),
    };
  }

  /**
   * The health check: the Mta runs and the queue store answers (its counts, within
   * 5 s). `/healthz` answers 200 with `ok`, or 503 with what is wrong.
   */
  async health(): Promise<HealthStatus> {
    const checks: Record<string, string> = { ...(this.#health?.() ?? {}) };
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#store.counts(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${HEALTH_TIMEOUT_MS / 1000} s`)),
            HEALTH_TIMEOUT_MS,
          );
        }),
      ]);
      checks.queue = 'ok';
    } catch (err) {
      checks.queue = errorMessage(err);
    } finally {
      clearTimeout(timer);
    }
    return { ok: Object.values(checks).every((v) => v === 'ok'), checks };
  }

  /** The snapshot in Prometheus text exposition format (version 0.0.4). */
  async prometheus(): Promise<string> {
    return formatPrometheus(await this.snapshot());
  }

  /** Where the Prometheus endpoint listens, once `serve()` has bound it. */
  get endpoint(): BoundListener | undefined {
    return this.#endpoint?.address;
  }

  /** Starts the Prometheus endpoint (`GET /metrics`). */
  async serve(address: BoundListener): Promise<BoundListener> {
    if (this.#endpoint) throw new Error('MtaMetrics.serve(): the endpoint is already listening');
    const endpoint = new PrometheusEndpoint(
      () => this.prometheus(),
      () => this.health(),
    );
    const bound = await endpoint.listen(address);
    this.#endpoint = endpoint;
    const host = bound.host.includes(':') ? `[${bound.host}]` : bound.host;
    this.#logger.info('master', undefined, `metrics on http://${host}:${bound.port}/metrics`);
    return bound;
  }

  /** Wraps a Submission port so that every message it queues is counted under its source component. */
  countReceived(port: SubmissionPort): SubmissionPort {
    return countingSubmission(port, (source, queueId) => this.noteReceived(source, queueId));
  }

  /**
   * Counts one message queued under its source component, for mail queued by another
   * process (an smtpd worker of `postern serve`) rather than through countReceived().
   */
  noteReceived(source: SubmissionSource, queueId: QueueId): void {
    this.#received.set(source.component, (this.#received.get(source.component) ?? 0) + 1);
    this.#emit({ type: 'received', queueId, receiver: source.component });
  }

  /** Stops the endpoint and stops counting. */
  async close(): Promise<void> {
    this.#removeSink();
    const endpoint = this.#endpoint;
    this.#endpoint = undefined;
    await endpoint?.close();
  }

  /** Seconds since the oldest waiting message arrived (0 for an empty queue). */
  async #oldestAge(now: number): Promise<number | undefined> {
    let oldest = Number.POSITIVE_INFINITY;
    try {
      await visitSummaries(
        this.#store,
        (s) => {
          if (s.arrivalTime < oldest) oldest = s.arrivalTime;
        },
        { states: WAITING },
      );
    } catch {
      return undefined;
    }
    return oldest === Number.POSITIVE_INFINITY ? 0 : Math.max(0, (now - oldest) / 1000);
  }

  /** A delivery line is one whose fields carry a status and a delay (queue-manager's #logOutcome). */
  #onLog(event: LogEvent): void {
    this.#counters.observe(event);
    const f = event.fields;
    if (!f || typeof f.status !== 'string' || !STATUSES.has(f.status)) return;
    if (typeof f.delay !== 'number') return;
    const status = f.status as RecipientStatus;
    const key = `${event.component}\u0000${status}`;
    let counter = this.#deliveries.get(key);
    if (!counter) {
      counter = { transport: event.component, status, count: 0, delays: new DelayHistogram() };
      this.#deliveries.set(key, counter);
    }
    counter.count++;
    counter.delays.observe(f.delay);
    this.#emit({
      type: 'delivery',
      queueId: event.queueId,
      transport: event.component,
      status,
      relay: typeof f.relay === 'string' ? f.relay : 'none',
      delay: f.delay,
    });
  }

  #emit(event: MetricsEvent): void {
    if (channel.hasSubscribers) channel.publish({ metrics: this, event });
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // A failing listener must not break mail flow.
      }
    }
  }
}

/** One listener's session gauge, named by its address (`127.0.0.1:2525`, `[::1]:2525`). */
export function sessionMetrics(
  service: string,
  address: { readonly host: string; readonly port: number },
  active: number,
): SessionMetrics {
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return { service, listener: `${host}:${address.port}`, active };
}
