/**
 * formatPrometheus(): a MetricsSnapshot in the Prometheus text exposition format,
 * version 0.0.4 (`# HELP`, `# TYPE`, one sample per line, metric names `postern_...`).
 *
 * Postfix counterpart: none (postfix_exporter scrapes the maillog and `showq`).
 *
 * STANDARDS: Prometheus text-based exposition format 0.0.4 (label values escape `\`,
 * `"` and newline; histograms have cumulative `_bucket{le}`, `_sum` and `_count`).
 *
 * @module
 */

import { DELAY_BUCKETS } from './delay-histogram.js';
import type { MetricsSnapshot } from './types.js';

/**
 * The content type a scraper expects for this format.
 *
 * @example
 * ```ts
 * res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE }).end(await mta.metrics.prometheus());
 * ```
 */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const QUEUE_STATES = ['incoming', 'active', 'deferred', 'hold', 'corrupt'] as const;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(pairs: Readonly<Record<string, string>>): string {
  const body = Object.entries(pairs)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(',');
  return body ? `{${body}}` : '';
}

/** What the node gauges show of one node name. */
interface NodeTotals {
  readonly age: number;
  readonly messages: number;
  readonly recipients: number;
}

function number(n: number): string {
  return Number.isFinite(n) ? String(n) : n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN';
}

/**
 * Renders every metric of `snapshot`; families without samples still get HELP and TYPE.
 *
 * @example
 * ```ts
 * // Serve the metrics from your own HTTP framework instead of `metrics.listen`:
 * app.get('/metrics', async () => formatPrometheus(await mta.metrics.snapshot()));
 * ```
 */
export function formatPrometheus(snapshot: MetricsSnapshot): string {
  const out: string[] = [];
  const family = (name: string, type: string, help: string): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  };

  family('postern_queue_messages', 'gauge', 'Messages in the queue, per queue state.');
  if (snapshot.queue) {
    for (const state of QUEUE_STATES)
      out.push(`postern_queue_messages${labels({ queue: state })} ${snapshot.queue[state]}`);
  }

  family(
    'postern_deliveries_total',
    'counter',
    'Recipient delivery outcomes, per transport and status (sent, deferred, bounced).',
  );
  for (const d of snapshot.deliveries)
    out.push(
      `postern_deliveries_total${labels({ transport: d.transport, status: d.status })} ${d.count}`,
    );

  family(
    'postern_delivery_delay_seconds',
    'histogram',
    'Time from arrival to a delivery outcome, per transport and status.',
  );
  for (const d of snapshot.deliveries) {
    const base = { transport: d.transport, status: d.status };
    DELAY_BUCKETS.forEach((bound, i) => {
      out.push(
        `postern_delivery_delay_seconds_bucket${labels({ ...base, le: String(bound) })} ${d.delayBuckets[i] ?? 0}`,
      );
    });
    out.push(
      `postern_delivery_delay_seconds_bucket${labels({ ...base, le: '+Inf' })} ${d.count}`,
      `postern_delivery_delay_seconds_sum${labels(base)} ${number(d.delaySum)}`,
      `postern_delivery_delay_seconds_count${labels(base)} ${d.count}`,
    );
  }

  family('postern_sessions_active', 'gauge', 'Client sessions open now, per listener.');
  for (const s of snapshot.sessions)
    out.push(
      `postern_sessions_active${labels({ service: s.service, listener: s.listener })} ${s.active}`,
    );

  family(
    'postern_messages_received_total',
    'counter',
    'Messages queued, per receiving component (smtpd, qmqpd, pickup, api).',
  );
  for (const [receiver, count] of Object.entries(snapshot.received))
    out.push(`postern_messages_received_total${labels({ receiver })} ${count}`);

  family(
    'postern_rejects_total',
    'counter',
    'Commands and messages rejected, per service, stage and reason (relay_denied, unknown_recipient, rbl, content, ...).',
  );
  for (const r of snapshot.rejects)
    out.push(
      `postern_rejects_total${labels({ service: r.service, stage: r.stage, reason: r.reason })} ${r.count}`,
    );

  family(
    'postern_smtpd_sasl_failures_total',
    'counter',
    'Failed SASL logins (AUTH) on the SMTP server, per mechanism.',
  );
  for (const [mechanism, count] of Object.entries(snapshot.saslFailures))
    out.push(`postern_smtpd_sasl_failures_total${labels({ mechanism })} ${count}`);

  family(
    'postern_smtpd_tls_sessions_total',
    'counter',
    'TLS sessions the SMTP server accepted (STARTTLS or wrapper mode), per protocol version.',
  );
  for (const [protocol, count] of Object.entries(snapshot.tlsSessions))
    out.push(`postern_smtpd_tls_sessions_total${labels({ protocol })} ${count}`);

  family(
    'postern_queue_oldest_message_age_seconds',
    'gauge',
    'Seconds since the oldest message still queued (incoming, active, deferred, hold) arrived; 0 when the queue is empty.',
  );
  if (snapshot.oldestMessageAge !== undefined)
    out.push(`postern_queue_oldest_message_age_seconds ${number(snapshot.oldestMessageAge)}`);

  if (snapshot.nodes) {
    // Per node name; a node restarted under the same name may have an old, dead entry.
    const byNode = new Map<string, NodeTotals>();
    for (const n of snapshot.nodes) {
      const seen = byNode.get(n.node);
      byNode.set(n.node, {
        age: Math.min(seen?.age ?? Number.POSITIVE_INFINITY, n.heartbeatAge),
        messages: (seen?.messages ?? 0) + n.leasedMessages,
        recipients: (seen?.recipients ?? 0) + n.leasedRecipients,
      });
    }
    const gauges: [string, string, (v: NodeTotals) => number][] = [
      [
        'postern_queue_node_heartbeat_age_seconds',
        'Seconds since the last heartbeat of each node sharing the queue.',
        (v) => v.age,
      ],
      [
        'postern_queue_node_leased_messages',
        'Messages each node sharing the queue holds under a lease.',
        (v) => v.messages,
      ],
      [
        'postern_queue_node_leased_recipients',
        'Pending recipients of the messages each node holds under a lease.',
        (v) => v.recipients,
      ],
    ];
    for (const [name, help, pick] of gauges) {
      family(name, 'gauge', help);
      for (const [node, v] of byNode) out.push(`${name}${labels({ node })} ${number(pick(v))}`);
    }
  }
  if (snapshot.storeRoundTrips !== undefined) {
    family(
      'postern_queue_store_round_trips_total',
      'counter',
      'Statements this process sent to the queue database (network round trips).',
    );
    out.push(`postern_queue_store_round_trips_total ${snapshot.storeRoundTrips}`);
  }

  return `${out.join('\n')}\n`;
}
