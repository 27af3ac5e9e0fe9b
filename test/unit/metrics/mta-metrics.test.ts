import { describe, expect, it } from 'vitest';
import { resolveMtaConfig } from '../../../src/config/mta-config.js';
import { ConfigError } from '../../../src/errors.js';
import { Logger } from '../../../src/log.js';
import { MtaMetrics, sessionMetrics } from '../../../src/metrics/mta-metrics.js';
import type { MetricsEvent } from '../../../src/metrics/types.js';
import { MemoryQueueStore } from '../../../src/queue/memory-store.js';

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
