/**
 * A client that goes away around STARTTLS: the session ends when the connection does,
 * not when smtpdStarttlsTimeout runs out, and a graceful stop does not wait for a
 * handshake. The receiver's clock never advances here, so only the connection's own
 * events can end these sessions.
 */
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/clock.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { SmtpReceiver } from '../../../src/receive/smtpd-receiver.js';
import { Rewriter } from '../../../src/rewrite/rewriter.js';
import { type LogWatch, watchLog } from '../../helpers/log-watch.js';
import { RecordingSubmission } from '../../helpers/recording-submission.js';
import { SmtpLineClient } from '../../helpers/smtp-line-client.js';
import { testCertificates } from '../../helpers/tls-cert.js';

let receiver: SmtpReceiver | undefined;
const clients: SmtpLineClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await receiver?.close();
  receiver = undefined;
});

async function start(): Promise<{ port: number; log: LogWatch }> {
  const params = resolveParameters({
    myhostname: 'mx.example.test',
    smtpdTlsSecurityLevel: 'may',
  });
  const { cert, key } = testCertificates();
  const log = watchLog();
  receiver = new SmtpReceiver({
    params,
    submission: new RecordingSubmission(),
    rewriter: new Rewriter({ params }),
    logger: log.logger,
    clock: new ManualClock(0),
    tls: { cert, key },
  });
  const { port } = await receiver.listen({ host: '127.0.0.1', port: 0 });
  return { port, log };
}

/** Connects, says EHLO and STARTTLS, and reads the 220. */
async function atStarttls(port: number): Promise<SmtpLineClient> {
  const c = await SmtpLineClient.connect(port);
  clients.push(c);
  expect((await c.reply()).code).toBe(220);
  expect((await c.command('EHLO client.example.org')).code).toBe(250);
  expect((await c.command('STARTTLS')).raw).toBe('220 2.0.0 Ready to start TLS\r\n');
  return c;
}

describe('a client that leaves around STARTTLS', () => {
  it('is let go when it hangs up instead of starting the handshake', async () => {
    const { port, log } = await start();
    const c = await atStarttls(port);
    c.close();
    const bye = await log.waitFor(/^disconnect from /);
    expect(bye.text).toBe('disconnect from unknown[127.0.0.1] ehlo=1 starttls=0/1 commands=1/2');
    const texts = log.events.map((e) => e.text);
    expect(texts).toContain('SSL_accept error from unknown[127.0.0.1]: lost connection');
    expect(texts).toContain('lost connection after STARTTLS from unknown[127.0.0.1]');
  });

  it('is let go when it half-closes (FIN only) instead of starting the handshake', async () => {
    const { port, log } = await start();
    const c = await atStarttls(port);
    (c.socket as net.Socket).end();
    const bye = await log.waitFor(/^disconnect from /);
    expect(bye.text).toContain('starttls=0/1');
  });

  it('is let go when it hangs up as soon as its side of the handshake is done', async () => {
    const { port, log } = await start();
    const c = await atStarttls(port);
    await c.startTls(testCertificates().ca);
    c.close();
    // Whether the server saw the client's Finished or not, the connection's end ends it.
    await log.waitFor(/^disconnect from unknown\[127\.0\.0\.1\] ehlo=1 /);
    expect(log.events.map((e) => e.text)).toContain(
      'lost connection after STARTTLS from unknown[127.0.0.1]',
    );
  });

  it('does not hold up a graceful stop while its handshake stalls', async () => {
    const { port, log } = await start();
    await atStarttls(port);
    // The client says nothing more and keeps the connection open.
    await receiver?.close({ graceful: true });
    expect(receiver?.sessionCount).toBe(0);
    expect((await log.waitFor(/^disconnect from /)).text).toContain('starttls=0/1');
  });
});
