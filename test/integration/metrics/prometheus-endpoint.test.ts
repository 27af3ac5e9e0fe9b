import diagnostics from 'node:diagnostics_channel';
import net from 'node:net';
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { DeliveryAgent } from '../../../src/deliver/types.js';
import type { MetricsEvent } from '../../../src/metrics/types.js';
import { Mta } from '../../../src/mta/mta.js';
import { SmtpReply } from '../../../src/smtp-reply.js';

/** Delivers to anyone but `later@` (deferred) and `nobody@` (bounced). */
const mailboxes: DeliveryAgent = {
  async deliver(request, reporter) {
    for await (const _ of request.openContent());
    for (const r of request.recipients) {
      const local = r.address.split('@')[0];
      reporter.recipient(
        r.id,
        local === 'later'
          ? {
              status: 'deferred',
              reply: new SmtpReply(451, '4.2.0', 'mailbox busy'),
              relay: 'test',
            }
          : local === 'nobody'
            ? {
                status: 'bounced',
                reply: new SmtpReply(550, '5.1.1', 'no such user'),
                relay: 'test',
              }
            : { status: 'sent', reply: new SmtpReply(250, '2.0.0', 'delivered'), relay: 'test' },
      );
    }
  },
};

let mta: Mta | undefined;
afterEach(async () => {
  await mta?.stop();
  mta = undefined;
});

async function scrape(m: Mta): Promise<{ status: number; type: string | null; body: string }> {
  const { host, port } = m.metrics.endpoint!;
  const res = await fetch(`http://${host}:${port}/metrics`);
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

/** The value of one sample line, e.g. `postern_queue_messages{queue="deferred"}`. */
function sample(body: string, series: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics of a running Mta', () => {
  it('counts deliveries, delays, queue sizes, sessions and received mail on /metrics', async () => {
    const events: MetricsEvent[] = [];
    const fromChannel: unknown[] = [];
    const onChannel = (m: unknown) => fromChannel.push(m);
    diagnostics.subscribe('postern:metrics', onChannel);
    mta = new Mta({
      myhostname: 'mx.example.test',
      localRecipientMaps: '', // every local part is a recipient here
      mydestination: ['example.test'],
      smtpd: [{ listen: '127.0.0.1:0' }],
      queueStore: { type: 'memory' },
      agents: { local: mailboxes },
      metrics: { listen: '127.0.0.1:0' },
    });
    mta.metrics.subscribe((e) => events.push(e));
    await mta.start();
    const { port } = mta.listeners[0]!;

    const before = await scrape(mta);
    expect(before.status).toBe(200);
    expect(before.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(before.body).toContain('# TYPE postern_deliveries_total counter');
    expect(before.body).toContain('# HELP postern_queue_messages Messages in the queue');
    expect(sample(before.body, 'postern_queue_messages{queue="incoming"}')).toBe(0);
    expect(
      sample(before.body, `postern_sessions_active{service="smtpd",listener="127.0.0.1:${port}"}`),
    ).toBe(0);

    const transport = nodemailer.createTransport({ host: '127.0.0.1', port, ignoreTLS: true });
    for (const to of ['alice', 'later', 'nobody'])
      await transport.sendMail({
        from: 'app@example.test',
        to: `${to}@example.test`,
        subject: to,
        text: 'hi',
      });
    transport.close();

    // alice and the bounce notice to app@ sent, later deferred, nobody bounced.
    await vi.waitFor(
      async () => {
        const { body } = await scrape(mta!);
        expect(sample(body, 'postern_deliveries_total{transport="local",status="sent"}')).toBe(2);
        expect(sample(body, 'postern_deliveries_total{transport="local",status="deferred"}')).toBe(
          1,
        );
        expect(sample(body, 'postern_deliveries_total{transport="local",status="bounced"}')).toBe(
          1,
        );
        expect(sample(body, 'postern_queue_messages{queue="deferred"}')).toBe(1);
        expect(sample(body, 'postern_queue_messages{queue="active"}')).toBe(0);
      },
      { timeout: 10_000, interval: 50 },
    );
    const { body } = await scrape(mta);
    expect(sample(body, 'postern_messages_received_total{receiver="smtpd"}')).toBe(3);
    expect(
      sample(body, 'postern_delivery_delay_seconds_count{transport="local",status="sent"}'),
    ).toBe(2);
    // Local delivery right after arrival: well under 10 seconds.
    expect(
      sample(
        body,
        'postern_delivery_delay_seconds_bucket{transport="local",status="sent",le="10"}',
      ),
    ).toBe(2);
    expect(
      sample(
        body,
        'postern_delivery_delay_seconds_bucket{transport="local",status="sent",le="+Inf"}',
      ),
    ).toBe(2);
    expect(
      sample(body, 'postern_delivery_delay_seconds_sum{transport="local",status="sent"}'),
    ).toBeLessThan(10);

    const snapshot = await mta.metrics.snapshot();
    expect(snapshot.received).toEqual({ smtpd: 3 });
    expect(snapshot.queue).toEqual({ incoming: 0, active: 0, deferred: 1, hold: 0, corrupt: 0 });
    expect(events.filter((e) => e.type === 'received')).toHaveLength(3);
    expect(
      events
        .filter((e) => e.type === 'delivery')
        .map((e) => e.type === 'delivery' && e.status)
        .sort(),
    ).toEqual(['bounced', 'deferred', 'sent', 'sent']);
    expect(fromChannel.length).toBe(events.length);
    diagnostics.unsubscribe('postern:metrics', onChannel);

    // An open SMTP session shows as active until it closes.
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((r) => socket.once('data', r));
    const series = `postern_sessions_active{service="smtpd",listener="127.0.0.1:${port}"}`;
    expect(sample((await scrape(mta)).body, series)).toBe(1);
    socket.end('QUIT\r\n');
    await vi.waitFor(async () => expect(sample((await scrape(mta!)).body, series)).toBe(0), {
      timeout: 5000,
      interval: 20,
    });
  });

  it('answers 404 off /metrics and 405 to POST, and closes with the Mta', async () => {
    mta = new Mta({
      myhostname: 'mx.example.test',
      localRecipientMaps: '', // every local part is a recipient here
      smtpd: [],
      queueStore: { type: 'memory' },
      metrics: { listen: '127.0.0.1:0' },
    });
    await mta.start();
    const { host, port } = mta.metrics.endpoint!;
    expect((await fetch(`http://${host}:${port}/`)).status).toBe(404);
    expect((await fetch(`http://${host}:${port}/metrics`, { method: 'POST' })).status).toBe(405);
    await mta.stop();
    expect(mta.metrics.endpoint).toBeUndefined();
    await expect(fetch(`http://${host}:${port}/metrics`)).rejects.toThrow();
  });

  it('serves no endpoint unless configured', async () => {
    mta = new Mta({ myhostname: 'mx.example.test', smtpd: [], queueStore: { type: 'memory' } });
    await mta.start();
    expect(mta.metrics.endpoint).toBeUndefined();
    expect((await mta.metrics.snapshot()).queue).toEqual({
      incoming: 0,
      active: 0,
      deferred: 0,
      hold: 0,
      corrupt: 0,
    });
  });
});
