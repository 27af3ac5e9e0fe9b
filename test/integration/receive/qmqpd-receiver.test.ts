import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/clock.js';
import { Logger } from '../../../src/log.js';
import { Mta } from '../../../src/mta/mta.js';
import type { LogEvent } from '../../../src/types.js';
import { watchLog } from '../../helpers/log-watch.js';
import { waitForMaildir } from '../../helpers/maildir.js';
import { qmqpExchange, qmqpRequest, qmqpSend } from '../../helpers/qmqp-client.js';

async function startMta(dir: string, extra: Record<string, unknown>, events: LogEvent[]) {
  const mta = new Mta(
    {
      myhostname: 'mx.example.test',
      smtpd: [],
      qmqpd: [{ listen: '127.0.0.1:0' }],
      qmqpdAuthorizedClients: ['127.0.0.0/8'],
      qmqpdErrorDelay: '0s',
      queueStore: { type: 'memory' },
      mailSpoolDirectory: join(dir, 'mail/'),
      ...extra,
    },
    { logger: new Logger([(e) => events.push(e)]) },
  );
  await mta.start();
  return mta;
}

describe('QmqpReceiver (qmqpd)', () => {
  let dir: string;
  let mta: Mta;
  let port: number;
  const events: LogEvent[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-qmqp-'));
    mta = await startMta(dir, {}, events);
    port = mta.qmqpListeners[0]!.port;
  });
  afterAll(async () => {
    await mta.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('queues a message (LF line ends) and delivers it with a QMQP Received header', async () => {
    const r = await qmqpSend(
      port,
      'Subject: via qmqp\nFrom: a@client.example\n\nline one\nline two\n',
      'a@client.example',
      ['alice@localhost'],
    );
    expect(r.status).toBe('K');
    expect(r.text).toMatch(/^2\.0\.0 Ok: queued as [0-9A-Za-z]+$|^Ok: queued as [0-9A-Za-z]+$/);
    const [msg] = await waitForMaildir(join(dir, 'mail/alice'), (m) => m.length === 1);
    expect(msg).toMatch(
      /Received: from unknown \(unknown \[127\.0\.0\.1\]\)\r\n\tby mx\.example\.test \(Postern\) with QMQP id/,
    );
    expect(msg).toContain('\r\n\r\nline one\r\nline two\r\n');
    expect(msg).toContain('Return-Path: <a@client.example>');
  });

  it('takes several recipients and the null sender', async () => {
    const r = await qmqpSend(port, 'Subject: multi\n\nbody\n', '', [
      'bob@localhost',
      'carol@localhost',
    ]);
    expect(r.status).toBe('K');
    await waitForMaildir(join(dir, 'mail/bob'), (m) => m.length === 1);
    const [c] = await waitForMaildir(join(dir, 'mail/carol'), (m) => m.length === 1);
    expect(c).toContain('Return-Path: <>');
  });

  it.each([
    ['a non-digit length', 'x:'],
    ['a missing colon', '12'],
    ['a message netstring without its comma', '20:5:hello;1:a,1:b,,'],
    ['a truncated request', '30:11:hello world,1:a'],
    [
      'an address with a NUL byte',
      qmqpRequest('Subject: x\n\nx\n', 'a@b', ['bad\u0000user@localhost']).toString('latin1'),
    ],
  ])('answers %s with D and queues nothing', async (_name, request) => {
    const before = (await mta.store.counts()).incoming;
    // The client half-closes, as one that gave up would: the end of input is an error too.
    const r = await qmqpExchange(port, Buffer.from(request, 'latin1'), { end: true });
    expect(r.status).toBe('D');
    expect(r.text).toMatch(/^Error: /);
    expect((await mta.store.counts()).incoming).toBe(before);
  });

  it('refuses an over-size message before reading it', async () => {
    const small = await startMta(dir, { messageSizeLimit: 100 }, []);
    try {
      const r = await qmqpExchange(small.qmqpListeners[0]!.port, '1000000:999999:');
      expect(r).toMatchObject({
        status: 'D',
        text: 'Error: netstring length exceeds storage limit while reading message content',
      });
    } finally {
      await small.stop();
    }
  });

  it('answers D "too many hops" for looping mail', async () => {
    const looping = `${'Received: from x by y; Sun, 1 Jan 2026 00:00:00 +0000\n'.repeat(50)}Subject: loop\n\nx\n`;
    const r = await qmqpSend(port, looping, 'a@client.example', ['alice@localhost']);
    expect(r.status).toBe('D');
    expect(r.text).toMatch(/too many hops/);
  });

  it('refuses clients outside qmqpdAuthorizedClients (none by default)', async () => {
    const closed = await startMta(dir, { qmqpdAuthorizedClients: [] }, []);
    try {
      const r = await qmqpSend(closed.qmqpListeners[0]!.port, 'Subject: x\n\nx\n', 'a@b.example', [
        'alice@localhost',
      ]);
      expect(r).toMatchObject({
        status: 'D',
        text: 'Error: unknown[127.0.0.1] is not authorized to use this service',
      });
    } finally {
      await closed.stop();
    }
  });

  it('turns D into Z under softBounce', async () => {
    const soft = await startMta(dir, { softBounce: true }, []);
    try {
      const r = await qmqpExchange(soft.qmqpListeners[0]!.port, 'x:');
      expect(r.status).toBe('Z');
    } finally {
      await soft.stop();
    }
  });
});

describe('QmqpReceiver on the Mta clock', () => {
  it('drops a silent client after qmqpdTimeout of the injected clock', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'postern-qmqp-clock-'));
    const log = watchLog();
    const clock = new ManualClock(Date.now());
    const mta = new Mta(
      {
        myhostname: 'mx.example.test',
        smtpd: [],
        qmqpd: [{ listen: '127.0.0.1:0' }],
        qmqpdAuthorizedClients: ['127.0.0.0/8'],
        qmqpdTimeout: '300s',
        qmqpdErrorDelay: '0s',
        queueStore: { type: 'memory' },
        mailSpoolDirectory: join(dir, 'mail/'),
      },
      { clock, logger: log.logger },
    );
    await mta.start();
    try {
      const socket = createConnection(mta.qmqpListeners[0]!.port, '127.0.0.1');
      socket.on('error', () => {});
      const closed = once(socket, 'close');
      await log.waitFor(/^connect from /);
      await clock.advance(300_000);
      await closed;
      await log.waitFor(/^timeout after connect from unknown\[127\.0\.0\.1\]$/);
    } finally {
      await mta.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
