import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headersOf, readMaildir, waitForMaildir } from '../helpers/maildir.js';
import { type PosternProcess, startPostern } from '../helpers/postern-process.js';
import { SmtpDialogue } from '../helpers/smtp-dialogue.js';

// The CLI as a user runs it: a JSON config, relative ./var paths, a real socket.
describe('postern serve end to end', () => {
  let dir: string;
  let mta: PosternProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-e2e-'));
    mta = await startPostern(dir, {
      myhostname: 'mx.example.test',
      localRecipientMaps: '', // every local part is a recipient here
      smtpd: [{ listen: '127.0.0.1:0' }],
    });
  });

  afterAll(async () => {
    const code = await mta?.stop('SIGTERM');
    expect(code).toBe(0);
    await rm(dir, { recursive: true, force: true });
  });

  it('delivers a nodemailer message into ./var/mail/<user>/new with the trace headers', async () => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: mta.port,
      secure: false,
      ignoreTLS: true,
    });
    const info = await transport.sendMail({
      from: 'sender@client.example',
      to: 'alice@localhost',
      subject: 'hello from nodemailer',
      text: 'Body line one.\nBody line two.\n',
    });
    expect(info.accepted).toEqual(['alice@localhost']);
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-Za-z]+$/);

    const [msg] = await waitForMaildir(join(dir, 'var/mail/alice'), (m) => m.length === 1);
    const headers = headersOf(msg!);
    const names = headers.map(([n]) => n);
    // local(8) order: Return-Path, X-Original-To, Delivered-To, then the message.
    expect(names.slice(0, 3)).toEqual(['return-path', 'x-original-to', 'delivered-to']);
    expect(headers.find(([n]) => n === 'return-path')?.[1]).toBe('<sender@client.example>');
    expect(headers.find(([n]) => n === 'delivered-to')?.[1]).toBe('alice@localhost');
    expect(names).toContain('received');
    expect(names).toContain('message-id');
    expect(names).toContain('date');
    const received = headers.find(([n]) => n === 'received')?.[1] ?? '';
    expect(received).toMatch(/by mx\.example\.test \(Postern\) with ESMTP id [0-9A-Za-z]+/);
    expect(msg).toContain('\r\n\r\nBody line one.\r\nBody line two.\r\n');
    await mta.waitForLine(
      /to=<alice@localhost>, relay=local, delay=[\d.]+, dsn=2\.0\.0, status=sent/,
    );
  });

  it('adds Message-ID and Date for a loopback client that sent none', async () => {
    const c = await SmtpDialogue.open(mta.port);
    await c.read();
    await c.expect('EHLO client.example', 250);
    await c.expect('MAIL FROM:<bare@client.example>', 250);
    await c.expect('RCPT TO:<bob@localhost>', 250);
    await c.expect('DATA', 354);
    const r = await c.command('Subject: no ids\r\n\r\nplain\r\n.');
    expect(r.code).toBe(250);
    await c.expect('QUIT', 221);
    const [msg] = await waitForMaildir(join(dir, 'var/mail/bob'), (m) => m.length === 1);
    const headers = headersOf(msg!);
    expect(headers.find(([n]) => n === 'message-id')?.[1]).toMatch(
      /^<\d{14}\.[0-9A-Za-z]+@mx\.example\.test>$/,
    );
    expect(headers.find(([n]) => n === 'date')?.[1]).toMatch(
      /^\w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}/,
    );
    expect(headers.find(([n]) => n === 'from')?.[1]).toContain('bare@client.example');
  });

  it('never lets a smuggled second message out of one DATA (bare LF dot line)', async () => {
    const c = await SmtpDialogue.open(mta.port);
    await c.read();
    await c.expect('EHLO client.example', 250);
    await c.expect('MAIL FROM:<a@client.example>', 250);
    await c.expect('RCPT TO:<carol@localhost>', 250);
    await c.expect('DATA', 354);
    c.write(
      'Subject: first\r\n\r\nfirst body\n.\nMAIL FROM:<evil@client.example>\r\nRCPT TO:<carol@localhost>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n',
    );
    const r = await c.read();
    expect(r.code).toBe(250);
    // A legitimate message next in the same session: whatever the first DATA smuggled
    // would have been a transaction between the two.
    await c.expect('MAIL FROM:<a@client.example>', 250);
    await c.expect('RCPT TO:<carol@localhost>', 250);
    await c.expect('DATA', 354);
    const marker = await c.command('Subject: marker\r\n\r\nlegitimate\r\n.');
    expect(marker.code).toBe(250);
    await c.expect('QUIT', 221);

    // smtpd logs "ID: client=" for each transaction, in order; wait for every one from
    // the first to the marker to be delivered and removed.
    const firstId = queuedAs(r.text);
    const markerId = queuedAs(marker.text);
    await mta.waitForLine(new RegExp(`: ${markerId}: client=`));
    const clientLine = /postern\/smtpd\[\d+\]: ([0-9A-Za-z]+): client=/;
    const ids = mta.output.flatMap((l) => clientLine.exec(l)?.[1] ?? []);
    const session = ids.slice(ids.indexOf(firstId), ids.indexOf(markerId) + 1);
    for (const id of session) await mta.waitForLine(new RegExp(`: ${id}: removed$`));
    expect(session).toEqual([firstId, markerId]);

    const all = await readMaildir(join(dir, 'var/mail/carol'));
    expect(all).toHaveLength(2);
    const first = all.find((m) => m.includes('Subject: first'));
    // The would-be second message is body text of the first, not a message of its own.
    expect(first).toContain('Subject: smuggled');
    expect(all.some((m) => m.includes('Subject: marker'))).toBe(true);
  });
});

/** The queue ID in a "250 2.0.0 Ok: queued as ID" reply. */
function queuedAs(text: string): string {
  const id = /queued as ([0-9A-Za-z]+)/.exec(text)?.[1];
  if (!id) throw new Error(`not a "queued as" reply: ${text}`);
  return id;
}
