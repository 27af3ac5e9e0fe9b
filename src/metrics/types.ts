/**
 * Metrics types: the snapshot `mta.metrics.snapshot()` returns and the events published
 * as they happen.
 *
 * Postfix counterpart: none built in — operators derive these numbers from the maillog
 * (pflogsumm, `qshape`, `postqueue -p | tail -1`). Postern counts the same facts from
 * its structured log events and its components, so the numbers agree with the log.
 *
 * @module
 */

import type { QueueCounts, QueueNode } from '../queue/types.js';
import type { QueueId, RecipientStatus } from '../types.js';
import type { RejectCount } from './log-counters.js';

/**
 * Delivery counts and delay distribution for one transport and status.
 *
 * @example
 * ```ts
 * const { deliveries } = await mta.metrics.snapshot();
 * const sent = deliveries.filter((d) => d.status === 'sent').reduce((n, d) => n + d.count, 0);
 * ```
 */
export interface DeliveryMetrics {
  /** Transport name as in the log (`smtp`, `local`, a custom agent's name; `error`, `retry`, `qmgr` for qmgr's own outcomes). */
  readonly transport: string;
  /** The outcome counted here. */
  readonly status: RecipientStatus;
  /** Recipient deliveries with this outcome. */
  readonly count: number;
  /** Sum of the delays (arrival to outcome), in seconds. */
  readonly delaySum: number;
  /** Cumulative counts per upper bound of `DELAY_BUCKETS` (Prometheus `le`), `+Inf` last. */
  readonly delayBuckets: readonly number[];
}

/**
 * Sessions currently open on one listener.
 *
 * @example
 * ```ts
 * const { sessions } = await mta.metrics.snapshot();
 * for (const s of sessions) console.log(`${s.service} ${s.listener}: ${s.active} open`);
 * ```
 */
export interface SessionMetrics {
  /** `smtpd` or `qmqpd`. */
  readonly service: string;
  /** The listener's address (`127.0.0.1:2525`). */
  readonly listener: string;
  /** Sessions open now. */
  readonly active: number;
}

/**
 * Every metric at one moment, from `mta.metrics.snapshot()`.
 *
 * @example
 * ```ts
 * const snap = await mta.metrics.snapshot();
 * console.log(snap.queue?.deferred, snap.received.smtpd);
 * ```
 */
export interface MetricsSnapshot {
  /** When it was taken (the Mta's clock, ms since the epoch). */
  readonly time: number;
  /** Messages per queue state, from the QueueStore; undefined when the store is not open. */
  readonly queue: QueueCounts | undefined;
  /** One entry per transport and status seen since the start. */
  readonly deliveries: readonly DeliveryMetrics[];
  /** One entry per SMTP and QMQP listener. */
  readonly sessions: readonly SessionMetrics[];
  /** Messages queued per receiving component (`smtpd`, `qmqpd`, `pickup`, `api`). */
  readonly received: Readonly<Record<string, number>>;
  /** Rejected commands and messages, per service, stage and reason (log-counters.ts). */
  readonly rejects: readonly RejectCount[];
  /** Failed SASL logins (AUTH), per mechanism. */
  readonly saslFailures: Readonly<Record<string, number>>;
  /** TLS sessions the SMTP server accepted (STARTTLS or wrapper mode), per protocol version. */
  readonly tlsSessions: Readonly<Record<string, number>>;
  /**
   * Seconds since the oldest message still queued (incoming, active, deferred or hold)
   * arrived; 0 when the queue is empty, undefined when the store is not open.
   */
  readonly oldestMessageAge: number | undefined;
  /** For a store several nodes share: each node, its heartbeat and what it holds. */
  readonly nodes?: readonly QueueNode[];
  /** For a database store: statements sent to it by this process (round trips). */
  readonly storeRoundTrips?: number;
}

/**
 * A delivery outcome (one recipient), as counted in `deliveries`.
 *
 * @example
 * ```ts
 * mta.metrics.subscribe((e) => {
 *   if (e.type === 'delivery' && e.status === 'bounced') alert(`${e.queueId} bounced via ${e.relay}`);
 * });
 * ```
 */
export interface DeliveryEvent {
  /** Always `delivery`. */
  readonly type: 'delivery';
  /** The message's queue ID. */
  readonly queueId: QueueId | undefined;
  /** The transport (the log's program name: `smtp`, `local`, a custom agent's name). */
  readonly transport: string;
  /** sent, deferred or bounced. */
  readonly status: RecipientStatus;
  /** The log's `relay=` (`mx.example.com[192.0.2.1]:25`, `local`, `none`). */
  readonly relay: string;
  /** Seconds from arrival to this outcome. */
  readonly delay: number;
}

/**
 * A message queued by a receiver, as counted in `received`.
 *
 * @example
 * ```ts
 * mta.metrics.subscribe((e) => {
 *   if (e.type === 'received') console.log(`${e.receiver} queued ${e.queueId}`);
 * });
 * ```
 */
export interface ReceivedEvent {
  /** Always `received`. */
  readonly type: 'received';
  /** The new message's queue ID. */
  readonly queueId: QueueId;
  /** The receiving component: `smtpd`, `qmqpd`, `pickup`, `api`. */
  readonly receiver: string;
}

/**
 * What happened, as published on the `postern:metrics` diagnostics channel (as
 * `{ metrics, event }`) and to `metrics.subscribe()` listeners.
 *
 * @example
 * ```ts
 * import diagnostics from 'node:diagnostics_channel';
 * diagnostics.subscribe('postern:metrics', (m) => console.log(m.event.type));
 * ```
 */
export type MetricsEvent = DeliveryEvent | ReceivedEvent;

/**
 * The `metrics` key of the Mta's config.
 *
 * @example
 * ```ts
 * const mta = new Mta({ metrics: { listen: '127.0.0.1:9464' } }); // GET http://127.0.0.1:9464/metrics
 * ```
 */
export interface MetricsConfig {
  /**
   * Serve Prometheus text format on `http://<listen>/metrics` (`"127.0.0.1:9464"`), and
   * the health check on `/healthz`.
   */
  readonly listen?: string;
}

/**
 * The answer of the health check (`GET /healthz`, `mta.metrics.health()`).
 *
 * @example
 * ```ts
 * const h: HealthStatus = await mta.metrics.health();
 * if (!h.ok) console.error(h.checks);
 * ```
 */
export interface HealthStatus {
  /** Every check passed (HTTP 200; otherwise 503). */
  readonly ok: boolean;
  /** Each check's answer: `ok`, or what is wrong (`mta: stopping`, `queue: cannot connect ...`). */
  readonly checks: Readonly<Record<string, string>>;
}
