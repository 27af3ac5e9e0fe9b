/**
 * A listener runs at most `maxproc` (defaultProcessLimit, 100) sessions at once, as
 * Postfix's master(8) does: a connection beyond it waits, with no greeting, until a
 * session ends (Postfix: the listen backlog), and only when the wait queue is full too
 * it gets `421 4.3.2 All server ports are busy` (QMQP: a Z reply). Real sockets.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { Mta } from '../../../src/mta/mta.js';
import { resolveMtaConfig } from '../../../src/mta/mta-config.js';
import { QmqpReceiver } from '../../../src/receive/qmqpd-receiver.js';
import { SmtpReceiver } from '../../../src/receive/smtpd-receiver.js';
import { Rewriter } from '../../../src/rewrite/rewriter.js';
import { type LogWatch, watchLog } from '../../helpers/log-watch.js';
import { qmqpExchange, qmqpRequest } from '../../helpers/qmqp-client.js';
import { RawSmtpClient } from '../../helpers/raw-smtp-client.js';
import { RecordingSubmission } from '../../helpers/recording-submission.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Resolves once `check()` holds, re-checking after every event-loop turn; bounded in time. */
async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise<void>((r) => setImmediate(r));
  }
}

async function open(port: number): Promise<RawSmtpClient> {
  const c = await RawSmtpClient.open(port);
  cleanups.push(() => c.close());
  return c;
}

describe('the SMTP session limit', () => {
  async function start(limit: number, defaultProcessLimit: number, log: LogWatch) {
    const params = resolveParameters({
      myhostname: 'mx.example.test',
      localRecipientMaps: '',
      defaultProcessLimit,
    });
    const receiver = new SmtpReceiver({
      params,
      submission: new RecordingSubmission(),
      rewriter: new Rewriter({ params }),
      logger: log.logger,
      processLimit: limit,
    });
    const { port } = await receiver.listen({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => receiver.close());
    return { receiver, port };
  }

  it('keeps connections beyond the limit waiting without a greeting, then serves them in order', async () => {
    const log = watchLog();
    const { receiver, port } = await start(2, 100, log);
    const a = await open(port);
    const b = await open(port);
    expect((await a.reply()).code).toBe(220);
    expect((await b.reply()).code).toBe(220);
    const c = await open(port);
    const d = await open(port);
    await until(() => receiver.waitingCount === 2, 'two connections wait');
    expect(receiver.sessionCount).toBe(2);
    // Queued connections are never written to before their turn.
    expect(c.received).toBe('');
    expect(d.received).toBe('');
    await log.waitFor(/service "smtp" has reached its process limit "2": new clients may/);

    expect((await a.command('QUIT')).code).toBe(221);
    expect((await c.reply()).raw).toBe('220 mx.example.test ESMTP Postern\r\n');
    expect(d.received).toBe('');
    // The session that waited works as any other.
    expect((await c.command('EHLO client.example')).code).toBe(250);
    expect((await c.command('MAIL FROM:<a@example.org>')).code).toBe(250);
    expect((await c.command('RCPT TO:<b@mx.example.test>')).code).toBe(250);
    expect((await c.command('DATA')).code).toBe(354);
    expect((await c.command('Subject: waited\r\n\r\nbody\r\n.')).code).toBe(250);

    b.close();
    expect((await d.reply()).code).toBe(220);
    expect(receiver.waitingCount).toBe(0);
  });

  it('answers 421 4.3.2 when the wait queue is full too, and drops a waiting client that gave up', async () => {
    const log = watchLog();
    const { receiver, port } = await start(1, 1, log);
    const a = await open(port);
    expect((await a.reply()).code).toBe(220);
    const waiting = await open(port);
    await until(() => receiver.waitingCount === 1, 'one connection waits');
    const refused = await open(port);
    expect((await refused.reply()).raw).toBe('421 4.3.2 All server ports are busy\r\n');
    await refused.waitClose();

    // The waiting client gives up: it leaves the queue, and the next one takes its place.
    waiting.close();
    await until(() => receiver.waitingCount === 0, 'the closed connection leaves the queue');
    const next = await open(port);
    await until(() => receiver.waitingCount === 1, 'the next one waits');
    expect((await a.command('QUIT')).code).toBe(221);
    expect((await next.reply()).code).toBe(220);
  });

  it('ends waiting connections with 421 when the receiver closes', async () => {
    const log = watchLog();
    const { receiver, port } = await start(1, 100, log);
    const a = await open(port);
    expect((await a.reply()).code).toBe(220);
    const waiting = await open(port);
    await until(() => receiver.waitingCount === 1, 'one connection waits');
    await receiver.close({ graceful: true });
    expect((await waiting.reply()).code).toBe(421);
  });
});

describe('maxproc in the Mta config', () => {
  it('is a listener key and defaultProcessLimit is its default', async () => {
    const cfg = resolveMtaConfig({
      defaultProcessLimit: 7,
      smtpd: [{ listen: '127.0.0.1:0', maxproc: 1 }, { listen: '127.0.0.1:0' }],
    });
    expect(cfg.smtpd[0]!.maxproc).toBe(1);
    expect(cfg.smtpd[1]!.maxproc).toBeUndefined();
    expect(cfg.params.defaultProcessLimit).toBe(7);
    expect(() => resolveMtaConfig({ smtpd: [{ listen: '127.0.0.1:0', maxproc: -1 }] })).toThrow(
      /smtpd\[0\]\.maxproc/,
    );

    const dir = await mkdtemp(join(tmpdir(), 'postern-maxproc-'));
    const mta = new Mta({
      myhostname: 'mx.example.test',
      queueDirectory: join(dir, 'queue'),
      defaultProcessLimit: 1,
      smtpd: [{ listen: '127.0.0.1:0', maxproc: 1 }],
    });
    await mta.start();
    cleanups.push(async () => {
      await mta.stop();
      await rm(dir, { recursive: true, force: true });
    });
    const port = mta.listeners[0]!.port;
    const a = await open(port);
    expect((await a.reply()).code).toBe(220);
    const b = await open(port); // waits: the one session is busy, the queue holds one
    const c = await open(port);
    expect((await c.reply()).raw).toBe('421 4.3.2 All server ports are busy\r\n');
    expect((await a.command('QUIT')).code).toBe(221);
    expect((await b.reply()).code).toBe(220);
  });
});

describe('the QMQP session limit', () => {
  it('queues a connection beyond the limit and refuses one beyond the queue with Z', async () => {
    const params = resolveParameters({
      qmqpdAuthorizedClients: ['127.0.0.0/8'],
      qmqpdErrorDelay: '0s',
      defaultProcessLimit: 1,
    });
    const receiver = new QmqpReceiver({
      params,
      submission: new RecordingSubmission(),
      processLimit: 1,
    });
    const { port } = await receiver.listen({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => receiver.close());
    const request = qmqpRequest('Subject: q\n\nbody\n', 'a@example.org', ['b@example.net']);
    // The first session holds its place: it has sent nothing yet.
    const idle = connect({ host: '127.0.0.1', port });
    idle.on('error', () => {});
    cleanups.push(() => void idle.destroy());
    await until(() => receiver.sessionCount === 1, 'the first session runs');
    const queued = qmqpExchange(port, request, { end: true });
    await until(() => receiver.waitingCount === 1, 'the second connection waits');
    const refused = await qmqpExchange(port, request, { end: true });
    expect(refused.status).toBe('Z');
    expect(refused.text).toMatch(/all server ports are busy/);
    idle.destroy();
    expect((await queued).status).toBe('K');
  });
});
