/**
 * header_checks from a `regexp:/path` file and virtual_alias_maps from a config object
 * through a whole Mta over real SMTP: the check's REJECT text is the DATA reply, and an
 * accepted message is queued with its aliases expanded.
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Mta } from '../../../src/mta/mta.js';
import { SmtpDialogue } from '../../helpers/smtp-dialogue.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function start(): Promise<{ mta: Mta; port: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-checks-'));
  const checks = join(dir, 'header_checks');
  await writeFile(
    checks,
    '# header_checks(5)\n/^Subject: make money fast/ REJECT No thanks\n/^Subject: (.*)/ REPLACE Subject: [checked] $1\n',
  );
  const mta = new Mta({
    myhostname: 'mx.example.test',
    smtpd: [{ listen: '127.0.0.1:0' }],
    queueStore: { type: 'memory' },
    mailSpoolDirectory: join(dir, 'mail/'),
    relayDomains: ['example.com'],
    headerChecks: `regexp:${checks}`,
    virtualAliasMaps: { 'sales@example.com': 'amy@example.com, ben@example.com' },
    // Keep the queue manager from delivering while the test looks at the queue.
    deferTransports: ['relay'],
  });
  await mta.start();
  cleanups.push(async () => {
    await mta.stop();
    await rm(dir, { recursive: true, force: true });
  });
  return { mta, port: mta.listeners[0]!.port };
}

async function send(port: number, subject: string): Promise<{ code: number; text: string }> {
  const c = await SmtpDialogue.open(port);
  try {
    await c.read();
    await c.expect('EHLO client.example.net', 250);
    await c.expect('MAIL FROM:<alice@example.org>', 250);
    await c.expect('RCPT TO:<sales@example.com>', 250);
    await c.expect('DATA', 354);
    c.write(`From: alice@example.org\r\nSubject: ${subject}\r\n\r\nbody\r\n.\r\n`);
    const reply = await c.read();
    await c.command('QUIT');
    return { code: reply.code, text: reply.text };
  } finally {
    c.close();
  }
}

describe('Mta with header_checks and virtual_alias_maps', () => {
  it('rejects at end of DATA with the check text, and queues accepted mail expanded', async () => {
    const { mta, port } = await start();
    const rejected = await send(port, 'make money fast');
    expect(rejected.code).toBe(550);
    expect(rejected.text).toContain('5.7.1 No thanks');
    expect((await send(port, 'hello')).code).toBe(250);
    const list = await mta.store.list();
    expect(list).toHaveLength(1);
    expect(list[0]!.recipients.map((r) => r.address).sort()).toEqual([
      'amy@example.com',
      'ben@example.com',
    ]);
    const chunks: Buffer[] = [];
    for await (const c of mta.store.openContent(list[0]!.queueId)) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toContain('\r\nSubject: [checked] hello\r\n');
  });
});
