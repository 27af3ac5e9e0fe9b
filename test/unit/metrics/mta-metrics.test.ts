import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { Logger } from '../../../src/log.js';
import { MtaMetrics, sessionMetrics } from '../../../src/metrics/mta-metrics.js';
import type { MetricsEvent } from '../../../src/metrics/types.js';
import { resolveMtaConfig } from '../../../src/mta/mta-config.js';
import { MemoryQueueStore } from '../../../src/queue/stores/memory-store.js';
import { commitMessage } from '../queue/stores/store-conformance.js';

function metricsWith(logger: Logger): MtaMetrics {
  return new MtaMetrics({
    logger,
    store: new MemoryQueueStore(),
    sessions: () => [sessionMetrics('smtpd', { host: '::1', port: 25 }, 3)],
    now: () => 1000,
  });
}

describe('MtaMetrics', () => {
  it('counts delivery events from the log by transport and status, and ignores other lines', async () => {
    const logger = new Logger();
    const metrics = metricsWith(logger);
    const events: MetricsEvent[] = [];
    metrics.subscribe((e) => events.push(e));
    const line = (component: string, status: string, delay: number) =>
      logger.info(component, 'ABC', `to=<u@x>, status=${status}`, {
        status,
        delay,
        relay: 'mx[192.0.2.1]:25',
      });
    line('smtp', 'sent', 1.5);
    line('smtp', 'sent', 0.5);
    line('smtp', 'deferred', 400);
    line('local', 'bounced', 0.01);
    logger.info('qmgr', 'ABC', 'from=<a@b>, size=1, nrcpt=1 (queue active)');
    logger.info('smtpd', undefined, 'odd', { status: 'weird', delay: 1 });

    const snap = await metrics.snapshot();
    expect(snap.time).toBe(1000);
    expect(snap.sessions).toEqual([{ service: 'smtpd', listener: '[::1]:25', active: 3 }]);
    const by = (t: string, s: string) =>
      snap.deliveries.find((d) => d.transport === t && d.status === s);
    expect(by('smtp', 'sent')).toMatchObject({ count: 2, delaySum: 2 });
    expect(by('smtp', 'deferred')?.count).toBe(1);
    expect(by('local', 'bounced')?.count).toBe(1);
    expect(snap.deliveries).toHaveLength(3);
    expect(events[0]).toEqual({
      type: 'delivery',
      queueId: 'ABC',
      transport: 'smtp',
      status: 'sent',
      relay: 'mx[192.0.2.1]:25',
      delay: 1.5,
    });
    expect(events).toHaveLength(4);
  });

  it('has no queue sizes while the store is closed, and stops counting after close()', async () => {
    const logger = new Logger();
    const metrics = metricsWith(logger);
    expect((await metrics.snapshot()).queue).toBeUndefined();
    await metrics.close();
    logger.info('smtp', 'ABC', 'x', { status: 'sent', delay: 1 });
    expect((await metrics.snapshot()).deliveries).toEqual([]);
  });
});

describe('MtaMetrics: rejects, SASL failures, TLS sessions, the oldest message, health', () => {
  it('counts rejects by service, stage and reason, failed logins by mechanism, TLS sessions by protocol', async () => {
    const logger = new Logger();
    const metrics = metricsWith(logger);
    const smtpd = logger.for('smtpd');
    smtpd.info(
      undefined,
      'NOQUEUE: reject: RCPT from unknown[192.0.2.9]: 554 5.7.1 <x@y.example>: Relay access denied; from=<limit@s.example> to=<x@y.example> proto=ESMTP helo=<h>',
      { event: 'reject', stage: 'RCPT' },
    );
    smtpd.info(
      'Q1',
      'reject: RCPT from unknown[192.0.2.9]: 550 5.1.1 <nobody@localhost>: Recipient address rejected: User unknown in local recipient table; from=<a@b> to=<nobody@localhost> proto=ESMTP helo=<h>',
    );
    smtpd.info(
      undefined,
      'NOQUEUE: reject: CONNECT from unknown[192.0.2.9]: 554 5.7.1 Service unavailable; Client host [192.0.2.9] blocked using zen.example; from=<> proto=SMTP',
    );
    logger.info(
      'cleanup',
      'Q2',
      'reject: header Subject: buy now from unknown[192.0.2.9]; from=<a@b> to=<c@d> proto=ESMTP helo=<h>: 5.7.1 message content rejected',
    );
    for (const mech of ['LOGIN', 'LOGIN', 'PLAIN'])
      smtpd.warning(
        undefined,
        `unknown[192.0.2.9]: SASL ${mech} authentication failed: authentication failure, sasl_username=bob`,
        { event: 'sasl_failed', sasl_method: mech },
      );
    smtpd.info(
      undefined,
      'STARTTLS connection established from unknown[192.0.2.9]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384',
    );
    smtpd.info(
      undefined,
      'TLS connection established from unknown[192.0.2.9]: TLSv1.2 with cipher ECDHE-RSA-AES128-GCM-SHA256',
    );
    smtpd.info(undefined, 'connect from unknown[192.0.2.9]');

    const snap = await metrics.snapshot();
    expect(snap.rejects).toEqual(
      expect.arrayContaining([
        { service: 'smtpd', stage: 'RCPT', reason: 'relay_denied', count: 1 },
        { service: 'smtpd', stage: 'RCPT', reason: 'unknown_recipient', count: 1 },
        { service: 'smtpd', stage: 'CONNECT', reason: 'rbl', count: 1 },
        { service: 'cleanup', stage: 'header', reason: 'content', count: 1 },
      ]),
    );
    expect(snap.rejects).toHaveLength(4);
    expect(snap.saslFailures).toEqual({ LOGIN: 2, PLAIN: 1 });
    expect(snap.tlsSessions).toEqual({ 'TLSv1.3': 1, 'TLSv1.2': 1 });
    const text = await metrics.prometheus();
    expect(text).toContain(
      'postern_rejects_total{service="smtpd",stage="RCPT",reason="relay_denied"} 1\n',
    );
    expect(text).toContain('postern_smtpd_sasl_failures_total{mechanism="LOGIN"} 2\n');
    expect(text).toContain('postern_smtpd_tls_sessions_total{protocol="TLSv1.3"} 1\n');
  });

  it('gives the age of the oldest waiting message (0 for an empty queue, none for a closed store)', async () => {
    const store = new MemoryQueueStore();
    const now = 1_700_000_100_000;
    const metrics = new MtaMetrics({
      logger: new Logger(),
      store,
      sessions: () => [],
      now: () => now,
    });
    expect((await metrics.snapshot()).oldestMessageAge).toBeUndefined();
    await store.open();
    expect((await metrics.snapshot()).oldestMessageAge).toBe(0);
    await commitMessage(store, undefined, { arrivalTime: now - 30_000 });
    await commitMessage(store, undefined, { arrivalTime: now - 90_500 });
    const held = await commitMessage(store, undefined, { arrivalTime: now - 5_000 });
    await store.hold([held]);
    expect((await metrics.snapshot()).oldestMessageAge).toBe(90.5);
    expect(await metrics.prometheus()).toContain('postern_queue_oldest_message_age_seconds 90.5\n');
    await store.close();
  });

  it('health(): ok while the Mta runs and the store answers; says what is wrong otherwise', async () => {
    const store = new MemoryQueueStore();
    let state = 'ok';
    const metrics = new MtaMetrics({
      logger: new Logger(),
      store,
      sessions: () => [],
      now: Date.now,
      health: () => ({ mta: state }),
    });
    await store.open();
    expect(await metrics.health()).toEqual({ ok: true, checks: { mta: 'ok', queue: 'ok' } });
    await store.close();
    state = 'stopping';
    const h = await metrics.health();
    expect(h.ok).toBe(false);
    expect(h.checks.mta).toBe('stopping');
    expect(h.checks.queue).toMatch(/closed|not open/);
  });
});

describe('the metrics config key', () => {
  it('takes { listen }', () => {
    expect(resolveMtaConfig({ metrics: { listen: '127.0.0.1:9464' } }).metrics).toEqual({
      host: '127.0.0.1',
      port: 9464,
    });
    expect(resolveMtaConfig({}).metrics).toBeUndefined();
  });

  it.each([
    [{ listen: 'nowhere' }, 'metrics.listen'],
    [{ listen: '127.0.0.1:9464', port: 1 }, 'metrics.port'],
    ['127.0.0.1:9464', 'metrics'],
  ])('names the key in the error for %j', (value, key) => {
    let error: unknown;
    try {
      resolveMtaConfig({ metrics: value });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(/^metrics/);
    expect((error as ConfigError).key).toBe(key);
  });
});
