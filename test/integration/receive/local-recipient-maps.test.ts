/**
 * Unknown local recipients are refused at RCPT, as Postfix's default
 * `local_recipient_maps = proxy:unix:passwd.byname $alias_maps` does: the host's
 * accounts and the alias tables are the valid local parts, everything else gets `550
 * 5.1.1 <addr>: Recipient address rejected: User unknown in local recipient table` and
 * nothing is queued or delivered. Unsafe local parts are refused (553 5.1.3) whatever the
 * tables say; an empty localRecipientMaps (the embedded default) takes every other one.
 */

import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDED_CONFIG } from '../../../src/mta/embedded-config.js';
import { Mta } from '../../../src/mta/mta.js';
import { queuedFiles } from '../../helpers/queue-files.js';
import { SmtpDialogue } from '../../helpers/smtp-dialogue.js';

const HOST = 'mx.example.test';

async function startMta(dir: string, config: Record<string, unknown>): Promise<Mta> {
  const mta = new Mta({
    myhostname: HOST,
    queueDirectory: join(dir, 'queue'),
    mailSpoolDirectory: join(dir, 'mail/'),
    smtpd: [{ listen: '127.0.0.1:0' }],
    smtpdErrorSleepTime: '0s',
    smtpdHardErrorLimit: 1000,
    ...config,
  });
  await mta.start();
  return mta;
}

async function rcpts(mta: Mta, recipients: readonly string[]): Promise<string[]> {
  const c = await SmtpDialogue.open(mta.listeners[0]!.port);
  await c.read();
  await c.expect('EHLO client.example', 250);
  await c.expect('MAIL FROM:<sender@example.org>', 250);
  const out: string[] = [];
  for (const r of recipients) {
    const reply = await c.command(`RCPT TO:<${r}>`);
    out.push(`${reply.code} ${reply.text}`);
  }
  const data = await c.command('DATA');
  if (data.code === 354) await c.expect('Subject: x\r\n\r\nbody\r\n.', 250);
  await c.expect('QUIT', 221);
  c.close();
  return out;
}

const UNKNOWN = (a: string): string =>
  `550 5.1.1 <${a}>: Recipient address rejected: User unknown in local recipient table`;

describe('the default localRecipientMaps: the host accounts and aliasMaps', () => {
  let dir: string;
  let mta: Mta;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-lrm-'));
    const aliases = join(dir, 'aliases');
    await writeFile(aliases, 'postmaster: root\nhelp-desk: root\n');
    mta = await startMta(dir, {
      aliasMaps: [`hash:${aliases}`, { sales: 'root' }],
      recipientDelimiter: '+',
      // Delivery is not what this test is about: local mail is discarded once queued.
      localTransport: 'discard',
    });
  });
  afterAll(async () => {
    await mta.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts accounts and aliases, with and without an extension, in any case', async () => {
    expect(
      await rcpts(mta, [
        `root@${HOST}`,
        `ROOT+tag@${HOST}`,
        `nobody@${HOST}`,
        'postmaster@localhost',
        `help-desk@${HOST}`,
        `Sales@${HOST}`,
      ]),
    ).toEqual(Array(6).fill('250 2.1.5 Ok'));
  });

  it('refuses random names with 550 5.1.1, and nothing reaches the queue or a mailbox', async () => {
    const names = Array.from(
      { length: 30 },
      (_, i) => `x${i}q${Math.random().toString(36).slice(2, 8)}@${HOST}`,
    );
    expect(await rcpts(mta, names)).toEqual(names.map(UNKNOWN));
    expect(await queuedFiles(join(dir, 'queue'))).toEqual([]);
    expect(await readdir(join(dir, 'mail')).catch(() => [])).toEqual([]);
  });

  it('refuses unsafe local parts with 553 5.1.3 and a reason', async () => {
    expect(
      await rcpts(mta, [`"../x"@${HOST}`, `"a/b"@${HOST}`, `"|cmd"@${HOST}`, `".."@${HOST}`]),
    ).toEqual([
      `553 5.1.3 <"../x"@${HOST}>: Recipient address rejected: the local part contains "/"; it cannot name a mailbox`,
      `553 5.1.3 <a/b@${HOST}>: Recipient address rejected: the local part contains "/"; it cannot name a mailbox`,
      `553 5.1.3 <|cmd@${HOST}>: Recipient address rejected: the local part starts with "|", the form of a command; it cannot name a mailbox`,
      `553 5.1.3 <".."@${HOST}>: Recipient address rejected: the local part starts with "."; it cannot name a mailbox`,
    ]);
  });

  it('leaves other domains to their own checks', async () => {
    // 127.0.0.1 is in mynetworks: relaying is allowed, and no local table is asked.
    expect(await rcpts(mta, ['anyone@elsewhere.example'])).toEqual(['250 2.1.5 Ok']);
  });
});

describe('an empty localRecipientMaps, as in the embedded default', () => {
  let dir: string;
  let mta: Mta;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-lrm-empty-'));
    mta = await startMta(dir, { ...EMBEDDED_CONFIG, localTransport: 'discard' });
  });
  afterAll(async () => {
    await mta.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('is what postern serve runs without a config', () => {
    expect(EMBEDDED_CONFIG).toEqual({ localRecipientMaps: '' });
    expect(mta.rewriter.tables.localRecipientMaps).toBeUndefined();
  });

  it('accepts any local part, but still refuses unsafe ones', async () => {
    expect(await rcpts(mta, [`anyone-at-all@${HOST}`, `"../etc"@${HOST}`])).toEqual([
      '250 2.1.5 Ok',
      `553 5.1.3 <"../etc"@${HOST}>: Recipient address rejected: the local part contains "/"; it cannot name a mailbox`,
    ]);
  });
});
