/**
 * `postern capture` as a user runs it: the built CLI in a child process, mail sent with
 * nodemailer, read back through the `mailpit-api` client (Mailpit's API v1).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { MailpitClient } from 'mailpit-api';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../../../bin/postern.mjs', import.meta.url));
const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

interface Running {
  readonly child: ChildProcess;
  readonly smtp: { host: string; port: number };
  readonly url: string;
  readonly output: string[];
}

/** Starts `postern capture` on free ports and waits for its address line. */
function startCapture(args: readonly string[] = []): Promise<Running> {
  const child = spawn(
    process.execPath,
    [BIN, 'capture', '--smtp', '127.0.0.1:0', '--http', '127.0.0.1:0', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`postern capture did not start:\n${output.join('')}`));
    }, 20_000);
    const onData = (text: string) => {
      output.push(text);
      const m = /SMTP on ([\d.]+):(\d+), web UI and API on (http:\/\/\S+)/.exec(output.join(''));
      if (!m) return;
      clearTimeout(timer);
      resolve({ child, smtp: { host: m[1]!, port: Number(m[2]) }, url: m[3]!, output });
    };
    child.stdout!.setEncoding('utf8').on('data', onData);
    child.stderr!.setEncoding('utf8').on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`postern capture exited with ${code}:\n${output.join('')}`));
    });
  });
}

/** A raw GET with a chosen Host header (fetch does not let a test set it). */
function rawGet(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('postern capture', () => {
  let capture: Running;
  let mailpit: MailpitClient;
  let mailer: ReturnType<typeof nodemailer.createTransport>;

  beforeAll(async () => {
    capture = await startCapture(['--smtp-auth-accept-any']);
    mailpit = new MailpitClient(capture.url);
    mailer = nodemailer.createTransport({ ...capture.smtp, ignoreTLS: true });
  });
  afterAll(async () => {
    const exited = new Promise((r) => capture.child.once('exit', r));
    capture.child.kill('SIGTERM');
    await exited;
  });

  it('lists, searches and shows mail sent with nodemailer, through the mailpit-api client', async () => {
    await mailer.sendMail({
      from: '"Shop" <shop@example.com>',
      to: 'ann@example.org',
      subject: 'Your order',
      text: 'Order 1001 is on its way.',
    });
    await mailer.sendMail({
      from: 'billing@example.com',
      to: ['"Bob B" <bob@example.org>'],
      cc: 'carol@example.org',
      bcc: 'audit@example.net',
      replyTo: 'help@example.com',
      subject: 'Invoice 42',
      text: 'Please find the invoice attached.',
      html: '<p>Please find the <b>invoice</b> attached.</p>',
      attachments: [{ filename: 'invoice.pdf', content: Buffer.from('%PDF-1.4 test') }],
    });

    const list = await mailpit.listMessages();
    expect(list.total).toBe(2);
    expect(list.messages_count).toBe(2);
    expect(list.messages.map((m) => m.Subject)).toEqual(['Invoice 42', 'Your order']);
    const [invoice, order] = list.messages;
    expect(invoice).toMatchObject({
      From: { Name: '', Address: 'billing@example.com' },
      To: [{ Name: 'Bob B', Address: 'bob@example.org' }],
      Cc: [{ Name: '', Address: 'carol@example.org' }],
      Bcc: [{ Name: '', Address: 'audit@example.net' }],
      ReplyTo: [{ Name: '', Address: 'help@example.com' }],
      Attachments: 1,
      Read: false,
      Tags: [],
    });
    expect(Date.parse(invoice!.Created)).not.toBeNaN();
    expect(invoice!.Snippet).toBe('Please find the invoice attached.');
    expect(order!.From).toEqual({ Name: 'Shop', Address: 'shop@example.com' });
    expect((await mailpit.listMessages(1, 1)).messages.map((m) => m.Subject)).toEqual([
      'Your order',
    ]);

    const byRecipient = await mailpit.searchMessages({ query: 'to:ann@example.org' });
    expect(byRecipient.messages_count).toBe(1);
    expect(byRecipient.messages[0]!.Subject).toBe('Your order');
    expect((await mailpit.searchMessages({ query: 'subject:"Invoice 42"' })).messages_count).toBe(
      1,
    );
    expect((await mailpit.searchMessages({ query: 'from:shop' })).messages_count).toBe(1);
    expect((await mailpit.searchMessages({ query: 'way' })).messages_count).toBe(1);
    expect((await mailpit.searchMessages({ query: '-has:attachment' })).messages_count).toBe(1);
    expect((await mailpit.searchMessages({ query: 'bcc:audit' })).messages_count).toBe(1);

    const summary = await mailpit.getMessageSummary(invoice!.ID);
    expect(summary.Text).toBe('Please find the invoice attached.');
    expect(summary.HTML).toBe('<p>Please find the <b>invoice</b> attached.</p>');
    expect(summary.Subject).toBe('Invoice 42');
    expect(summary.ReturnPath).toBe('billing@example.com');
    expect(summary.Attachments).toHaveLength(1);
    const [pdf] = summary.Attachments;
    expect(pdf).toMatchObject({
      FileName: 'invoice.pdf',
      ContentType: 'application/pdf',
      Size: 13,
    });
    expect(pdf!.Checksums.SHA256).toMatch(/^[0-9a-f]{64}$/);
    const blob = await mailpit.getMessageAttachment(invoice!.ID, pdf!.PartID);
    expect(Buffer.from(await blob.arrayBuffer()).toString()).toBe('%PDF-1.4 test');
    expect((await mailpit.getMessageSummary()).ID).toBe(invoice!.ID);
    expect((await mailpit.listMessages()).messages[0]!.Read).toBe(true);

    const headers = await mailpit.getMessageHeaders(order!.ID);
    expect(headers.Subject).toEqual(['Your order']);
    expect(headers['Message-Id']?.[0]).toMatch(/^<.+>$/);
    expect(Object.keys(headers)).toEqual([...Object.keys(headers)].sort());

    const raw = await mailpit.getMessageSource(order!.ID);
    expect(raw).toMatch(/^Received: from /);
    expect(raw).toContain('Subject: Your order\r\n');
    expect(raw).toContain('Order 1001 is on its way.');

    const info = await mailpit.getInfo();
    expect(info.Messages).toBe(2);
    expect(info.RuntimeStats.SMTPAccepted).toBe(2);
    expect(info.Version).toBe(`postern-${PACKAGE_VERSION}`);

    await mailpit.deleteMessages({ IDs: [order!.ID] });
    expect((await mailpit.listMessages()).messages.map((m) => m.ID)).toEqual([invoice!.ID]);
    await expect(mailpit.getMessageSummary(order!.ID)).rejects.toThrow(/404/);
    await mailpit.deleteMessages();
    expect((await mailpit.listMessages()).total).toBe(0);
  });

  it("maps Mailpit's chaos triggers onto the SMTP stages", async () => {
    const set = await mailpit.setChaosTriggers({ Recipient: { ErrorCode: 550, Probability: 100 } });
    expect(set).toEqual({
      Sender: { ErrorCode: 451, Probability: 0 },
      Recipient: { ErrorCode: 550, Probability: 100 },
      Authentication: { ErrorCode: 535, Probability: 0 },
    });
    await expect(
      mailer.sendMail({ from: 'a@example.com', to: 'b@example.org', text: 'x' }),
    ).rejects.toThrow(/550 5\.0\.0 Chaos/);
    await mailpit.setChaosTriggers({ Authentication: { ErrorCode: 454, Probability: 100 } });
    const login = nodemailer.createTransport({
      ...capture.smtp,
      ignoreTLS: true,
      auth: { user: 'dev', pass: 'anything' },
    });
    await expect(
      login.sendMail({ from: 'a@example.com', to: 'b@example.org', text: 'x' }),
    ).rejects.toThrow(/454 4\.0\.0 Chaos/);
    await mailpit.setChaosTriggers({});
    await login.sendMail({ from: 'a@example.com', to: 'b@example.org', subject: 'after chaos' });
    const got = await mailpit.waitForMessage({ query: 'subject:"after chaos"' }, { interval: 50 });
    expect(got.Username).toBe('dev');
    await expect(
      mailpit.setChaosTriggers({ Sender: { ErrorCode: 200, Probability: 5 } }),
    ).rejects.toThrow(/400 .*error code must be between 400 and 599/);
  });

  it('refuses other Host names and cross-site changes, and sandboxes message HTML', async () => {
    await mailer.sendMail({
      from: 'a@example.com',
      to: 'b@example.org',
      subject: 'html',
      html: '<p>hi</p><script>parent.alert(1)</script><img src="https://tracker.example/x.png">',
    });
    const { ID } = await mailpit.getMessageSummary();
    const host = new URL(capture.url).host;
    const evil = await rawGet(`${capture.url}/api/v1/messages`, { Host: 'evil.example' });
    expect(evil.status).toBe(403);
    const view = await rawGet(`${capture.url}/view/${ID}.html`, { Host: host });
    expect(view.status).toBe(200);
    const csp = String(view.headers['content-security-policy']);
    expect(csp).toMatch(/(^|; )sandbox(;|$)/);
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toMatch(/script-src/);
    const csrf = await fetch(`${capture.url}/api/v1/messages`, {
      method: 'DELETE',
      headers: { Origin: 'https://evil.example' },
    });
    expect(csrf.status).toBe(403);
    expect((await mailpit.listMessages()).total).toBeGreaterThan(0);
  });
});
