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

import type { QueueCounts } from '../queue/types.js';
import type { QueueId, RecipientStatus } from '../types.js';

/** Delivery counts and delay distribution for one transport and status. */
export interface DeliveryMetrics {
  /** Transport name as in the log (`smtp`, `local`, a custom agent's name; `error`, `retry`, `qmgr` for qmgr's own outcomes). */
  readonly transport: string;
  readonly status: RecipientStatus;
  /** Recipient deliveries with this outcome. */
  readonly count: number;
  /** Sum of the delays (arrival to outcome), in seconds. */
  readonly delaySum: number;
  /** Cumulative counts per upper bound of `DELAY_BUCKETS` (Prometheus `le`), `+Inf` last. */
  readonly delayBuckets: readonly number[];
}

/** Sessions currently open on one listener. */
export interface SessionMetrics {
  /** `smtpd` or `qmqpd`. */
  readonly service: string;
  /** The listener's address (`127.0.0.1:2525`). */
  readonly listener: string;
  readonly active: number;
}

/** Every metric at one moment. */
export interface MetricsSnapshot {
  /** When it was taken (the Mta's clock, ms since the epoch). */
  readonly time: number;
  /** Messages per queue state, from the QueueStore; undefined when the store is not open. */
  readonly queue: QueueCounts | undefined;
  readonly deliveries: readonly DeliveryMetrics[];
  readonly sessions: readonly SessionMetrics[];
  /** Messages queued per receiving component (`smtpd`, `qmqpd`, `pickup`, `api`). */
  readonly received: Readonly<Record<string, number>>;
}

/** What happened, as published on `postern:metrics` and to `metrics.subscribe()` listeners. */
export type MetricsEvent =
  | {
      readonly type: 'delivery';
      readonly queueId: QueueId | undefined;
      readonly transport: string;
      readonly status: RecipientStatus;
      readonly relay: string;
      /** Seconds from arrival to this outcome. */
      readonly delay: number;
    }
  | { readonly type: 'received'; readonly queueId: QueueId; readonly receiver: string };

/** The `metrics` key of the Mta's config. */
export interface MetricsConfig {
  /** Serve Prometheus text format on `http://<listen>/metrics` (`"127.0.0.1:9464"`). */
  readonly listen?: string;
}
