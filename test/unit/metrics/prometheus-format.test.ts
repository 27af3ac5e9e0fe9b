import { describe, expect, it } from 'vitest';
import { DELAY_BUCKETS } from '../../../src/metrics/delay-histogram.js';
import { formatPrometheus } from '../../../src/metrics/prometheus-format.js';
import type { MetricsSnapshot } from '../../../src/metrics/types.js';

const empty: MetricsSnapshot = {
  time: 0,
  queue: { incoming: 1, active: 2, deferred: 3, hold: 4, corrupt: 0 },
  deliveries: [],
  sessions: [],
  received: {},
  rejects: [],
  saslFailures: {},
  tlsSessions: {},
  oldestMessageAge: undefined,
};

describe('formatPrometheus', () => {
  it('gives HELP and TYPE for every family, even without samples', () => {
    const text = formatPrometheus({ ...empty, queue: undefined });
    for (const [name, type] of [
      ['postern_queue_messages', 'gauge'],
      ['postern_deliveries_total', 'counter'],
      ['postern_delivery_delay_seconds', 'histogram'],
      ['postern_sessions_active', 'gauge'],
      ['postern_messages_received_total', 'counter'],
      ['postern_rejects_total', 'counter'],
      ['postern_smtpd_sasl_failures_total', 'counter'],
      ['postern_smtpd_tls_sessions_total', 'counter'],
      ['postern_queue_oldest_message_age_seconds', 'gauge'],
    ]) {
      expect(text).toMatch(new RegExp(`^# HELP ${name} \\S.*$`, 'm'));
      expect(text).toContain(`# TYPE ${name} ${type}\n`);
    }
    expect(text).not.toMatch(/^postern_queue_messages\{/m);
    expect(text.endsWith('\n')).toBe(true);
  });

  it('writes queue sizes, deliveries, the histogram, sessions and received counts', () => {
    const buckets = DELAY_BUCKETS.map((_, i) => (i < 3 ? 1 : 2));
    const text = formatPrometheus({
      ...empty,
      deliveries: [
        {
          transport: 'smtp',
          status: 'sent',
          count: 3,
          delaySum: 12.5,
          delayBuckets: [...buckets, 3],
        },
      ],
      sessions: [{ service: 'smtpd', listener: '[::1]:25', active: 2 }],
      received: { smtpd: 5, api: 1 },
    });
    const lines = text.split('\n');
    expect(lines).toContain('postern_queue_messages{queue="deferred"} 3');
    expect(lines).toContain('postern_queue_messages{queue="hold"} 4');
    expect(lines).toContain('postern_deliveries_total{transport="smtp",status="sent"} 3');
    expect(lines).toContain(
      'postern_delivery_delay_seconds_bucket{transport="smtp",status="sent",le="0.01"} 1',
    );
    expect(lines).toContain(
      'postern_delivery_delay_seconds_bucket{transport="smtp",status="sent",le="432000"} 2',
    );
    expect(lines).toContain(
      'postern_delivery_delay_seconds_bucket{transport="smtp",status="sent",le="+Inf"} 3',
    );
    expect(lines).toContain(
      'postern_delivery_delay_seconds_sum{transport="smtp",status="sent"} 12.5',
    );
    expect(lines).toContain(
      'postern_delivery_delay_seconds_count{transport="smtp",status="sent"} 3',
    );
    expect(lines).toContain('postern_sessions_active{service="smtpd",listener="[::1]:25"} 2');
    expect(lines).toContain('postern_messages_received_total{receiver="smtpd"} 5');
    expect(lines).toContain('postern_messages_received_total{receiver="api"} 1');
    // Every sample line is `name{labels} number`.
    for (const l of lines.filter((l) => l && !l.startsWith('#')))
      expect(l).toMatch(/^postern_[a-z_]+(\{[^}]*\})? -?[0-9.e+]+$/);
  });

  it('writes each node of a shared queue (a restarted node once) and the round trips', () => {
    const node = (name: string, age: number, messages: number, alive = true) => ({
      node: name,
      heartbeatAge: age,
      alive,
      startedAt: 0,
      leasedMessages: messages,
      leasedRecipients: messages * 2,
    });
    const text = formatPrometheus({
      ...empty,
      nodes: [node('node-a', 1.5, 3), node('node-b', 45, 2, false), node('node-b', 0.5, 4)],
      storeRoundTrips: 1234,
    });
    const lines = text.split('\n');
    expect(lines).toContain('postern_queue_node_heartbeat_age_seconds{node="node-a"} 1.5');
    expect(lines).toContain('postern_queue_node_heartbeat_age_seconds{node="node-b"} 0.5');
    expect(lines).toContain('postern_queue_node_leased_messages{node="node-b"} 6');
    expect(lines).toContain('postern_queue_node_leased_recipients{node="node-a"} 6');
    expect(lines).toContain('# TYPE postern_queue_store_round_trips_total counter');
    expect(lines).toContain('postern_queue_store_round_trips_total 1234');
    // Without a shared store, neither family appears.
    expect(formatPrometheus(empty)).not.toMatch(/postern_queue_node_|round_trips/);
  });

  it('escapes backslash, quote and newline in label values', () => {
    const text = formatPrometheus({
      ...empty,
      deliveries: [
        {
          transport: 'we"ird\\name\nx',
          status: 'bounced',
          count: 1,
          delaySum: 0,
          delayBuckets: [],
        },
      ],
    });
    expect(text).toContain(
      'postern_deliveries_total{transport="we\\"ird\\\\name\\nx",status="bounced"} 1',
    );
  });
});
