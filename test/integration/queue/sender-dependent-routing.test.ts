/**
 * senderDependentRelayhostMaps and senderDependentDefaultTransportMaps work at delivery:
 * the QueueManager resolves each recipient with the message's sender, so a listed
 * sender's mail goes to its own relayhost (three smtp-server instances stand for the
 * default relayhost, a sender's relayhost and a sender's transport). And smtpd resolves
 * each RCPT once, with the sender.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { Mta } from '../../../src/mta/mta.js';
import { SmtpReceiver } from '../../../src/receive/smtpd-receiver.js';
import { Rewriter } from '../../../src/rewrite/rewriter.js';
import type { ResolveResult } from '../../../src/rewrite/types.js';
import { RecordingSubmission } from '../../helpers/recording-submission.js';
import { SmtpDialogue } from '../../helpers/smtp-dialogue.js';

interface Relay {
  readonly name: string;
  readonly port: number;
  readonly server: SMTPServer;
  /** Envelope senders of the messages received. */
  readonly senders: string[];
}

/** Every message any relay received, and whoever waits for a number of them. */
const arrivals: string[] = [];
const arrivalWaiters: (() => void)[] = [];
function arrived(sender: string): void {
  arrivals.push(sender);
  for (const w of arrivalWaiters.splice(0)) w();
}
function waitForArrivals(count: number, timeoutMs = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${arrivals.length} of ${count} messages arrived`)),
      timeoutMs,
    );
    const check = (): void => {
      if (arrivals.length >= count) {
        clearTimeout(timer);
        resolve();
      } else arrivalWaiters.push(check);
    };
    check();
  });
}

async function relay(name: string): Promise<Relay> {
  const senders: string[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, cb) {
      stream.resume();
      stream.on('end', () => {
        const from = session.envelope.mailFrom;
        senders.push(from === false ? '' : from.address);
        arrived(senders.at(-1)!);
        cb();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { name, port: (server.server.address() as { port: number }).port, server, senders };
}

describe('sender-dependent routing at delivery', () => {
  let dir: string;
  let mta: Mta;
  let relays: Relay[];
  let port: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-sdrouting-'));
    relays = [await relay('default'), await relay('vip'), await relay('bulk')];
    const [def, vip, bulk] = relays as [Relay, Relay, Relay];
    mta = new Mta({
      myhostname: 'mx.example.test',
      mydestination: [],
      queueDirectory: join(dir, 'queue'),
      smtpd: [{ listen: '127.0.0.1:0' }],
      smtpTlsSecurityLevel: 'none',
      relayhost: `[127.0.0.1]:${def.port}`,
      senderDependentRelayhostMaps: {
        'vip@example.org': `[127.0.0.1]:${vip.port}`,
        '@partner.example': `[127.0.0.1]:${vip.port}`,
      },
      senderDependentDefaultTransportMaps: { 'bulk@example.org': `smtp:[127.0.0.1]:${bulk.port}` },
    });
    await mta.start();
    port = mta.listeners[0]!.port;
  });
  afterAll(async () => {
    await mta.stop();
    for (const r of relays) await new Promise<void>((done) => r.server.close(() => done()));
    await rm(dir, { recursive: true, force: true });
  });

  async function send(from: string): Promise<void> {
    const c = await SmtpDialogue.open(port);
    await c.read();
    await c.expect('EHLO client.example', 250);
    await c.expect(`MAIL FROM:<${from}>`, 250);
    await c.expect('RCPT TO:<bob@remote.example>', 250);
    await c.expect('DATA', 354);
    await c.expect(`From: ${from}\r\nSubject: routing\r\n\r\nbody\r\n.`, 250);
    await c.expect('QUIT', 221);
    c.close();
  }

  it('sends each sender to the relay its maps name, and the rest to relayhost', async () => {
    const cases: [string, string][] = [
      ['vip@example.org', 'vip'],
      ['anyone@partner.example', 'vip'],
      ['bulk@example.org', 'bulk'],
      ['plain@example.org', 'default'],
      ['', 'default'],
    ];
    for (const [from] of cases) await send(from);
    await waitForArrivals(cases.length);
    const where = (from: string): string | undefined =>
      relays.find((r) => r.senders.includes(from))?.name;
    for (const [from, expected] of cases) expect([from, where(from)]).toEqual([from, expected]);
  });
});

describe('smtpd resolves each RCPT once', () => {
  it('with the sender, also when it checks that the recipient is listed', async () => {
    const calls: [string, string | undefined][] = [];
    class CountingRewriter extends Rewriter {
      override resolve(address: string, sender?: string): Promise<ResolveResult> {
        calls.push([address, sender]);
        return super.resolve(address, sender);
      }
    }
    const params = resolveParameters({
      myhostname: 'mx.example.test',
      smtpdErrorSleepTime: 0,
      localRecipientMaps: { alice: 'ok' },
    });
    const receiver = new SmtpReceiver({
      params,
      submission: new RecordingSubmission(),
      rewriter: new CountingRewriter({ params }),
    });
    const { port } = await receiver.listen({ host: '127.0.0.1', port: 0 });
    try {
      const c = await SmtpDialogue.open(port);
      await c.read();
      await c.expect('EHLO client.example', 250);
      await c.expect('MAIL FROM:<carol@example.org>', 250);
      await c.expect('RCPT TO:<alice@mx.example.test>', 250);
      const unknown = await c.command('RCPT TO:<nobody@mx.example.test>');
      expect(`${unknown.code} ${unknown.text}`).toBe(
        '550 5.1.1 <nobody@mx.example.test>: Recipient address rejected: User unknown in local recipient table',
      );
      c.close();
      expect(calls).toEqual([
        ['alice@mx.example.test', 'carol@example.org'],
        ['nobody@mx.example.test', 'carol@example.org'],
      ]);
    } finally {
      await receiver.close();
    }
  });
});
