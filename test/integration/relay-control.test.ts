import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Mta } from '../../src/mta/mta.js';
import { SmtpDialogue } from '../helpers/smtp-dialogue.js';

/**
 * Issue 2, acceptance 3: a client outside mynetworks cannot relay through a whole MTA.
 * 127.0.0.1 is made an outside client by leaving loopback out of mynetworks.
 */
describe('relay control through the whole MTA', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  async function start(extra: Record<string, unknown>): Promise<number> {
    const dir = await mkdtemp(join(tmpdir(), 'postern-relay-'));
    const mta = new Mta({
      myhostname: 'mx.example.test',
      localRecipientMaps: '', // every local part is a recipient here
      mynetworks: ['192.0.2.0/24'],
      smtpd: [{ listen: '127.0.0.1:0' }],
      queueStore: { type: 'memory' },
      mailSpoolDirectory: join(dir, 'mail/'),
      ...extra,
    });
    await mta.start();
    cleanups.push(async () => {
      await mta.stop();
      await rm(dir, { recursive: true, force: true });
    });
    return mta.listeners[0]!.port;
  }

  async function rcpt(port: number, address: string) {
    const c = await SmtpDialogue.open(port);
    try {
      await c.read();
      await c.expect('EHLO outside.example', 250);
      await c.expect('MAIL FROM:<someone@outside.example>', 250);
      return await c.command(`RCPT TO:<${address}>`);
    } finally {
      c.close();
    }
  }

  it('defers relaying with 454 4.7.1 by default (defer_unauth_destination)', async () => {
    const port = await start({});
    const r = await rcpt(port, 'victim@elsewhere.example');
    expect(r.code).toBe(454);
    expect(r.text).toBe('4.7.1 <victim@elsewhere.example>: Relay access denied');
  });

  it('rejects relaying with 554 5.7.1 under reject_unauth_destination', async () => {
    const port = await start({
      smtpdRelayRestrictions: ['permit_mynetworks', 'reject_unauth_destination'],
    });
    const r = await rcpt(port, 'victim@elsewhere.example');
    expect(r.code).toBe(554);
    expect(r.text).toBe('5.7.1 <victim@elsewhere.example>: Relay access denied');
  });

  it('refuses source-routed and percent-hack tricks through a local domain', async () => {
    const port = await start({});
    expect((await rcpt(port, 'victim%elsewhere.example@localhost')).code).toBe(454);
    expect((await rcpt(port, '@localhost:victim@elsewhere.example')).code).toBe(454);
  });

  it('still accepts mail for its own domains from outside clients', async () => {
    const port = await start({});
    const r = await rcpt(port, 'postmaster@localhost');
    expect(r.code).toBe(250);
  });
});
