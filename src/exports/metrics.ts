/**
 * `postern/metrics`: an Mta's counters and gauges (`mta.metrics` is an MtaMetrics),
 * their snapshot and event types, and the Prometheus text format, for an application
 * that serves or forwards them itself. This file only re-exports.
 *
 * Postfix counterpart: none built in; Postfix operators read the same facts from the
 * maillog (pflogsumm), qshape(1) and postqueue(1).
 *
 * Does not: open a port. `"metrics": { "listen": "127.0.0.1:9464" }` in the Mta config
 * serves `/metrics` and `/healthz`; this subpath is for doing it another way.
 *
 * @example
 * ```ts
 * import { formatPrometheus, PROMETHEUS_CONTENT_TYPE } from 'postern/metrics';
 *
 * app.get('/metrics', async (_req, res) => {
 *   res.type(PROMETHEUS_CONTENT_TYPE).send(formatPrometheus(await mta.metrics.snapshot()));
 * });
 * ```
 *
 * @module postern/metrics
 */

export { DELAY_BUCKETS } from '../metrics/delay-histogram.js';
export type { RejectCount } from '../metrics/log-counters.js';
export type { MtaMetricsOptions } from '../metrics/mta-metrics.js';
export { MtaMetrics } from '../metrics/mta-metrics.js';
export { formatPrometheus, PROMETHEUS_CONTENT_TYPE } from '../metrics/prometheus-format.js';
export type {
  DeliveryEvent,
  DeliveryMetrics,
  HealthStatus,
  MetricsEvent,
  MetricsSnapshot,
  ReceivedEvent,
  SessionMetrics,
} from '../metrics/types.js';
