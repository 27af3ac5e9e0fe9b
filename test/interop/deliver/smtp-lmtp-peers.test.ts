import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LmtpDeliveryAgent } from '../../../src/deliver/smtp/lmtp-agent.js';
import { SmtpDeliveryAgent } from '../../../src/deliver/smtp/smtp-agent.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { Collector, makeRequest } from '../../integration/deliver/request.js';
import { DovecotLmtp } from '../../peers/dovecot-lmtp.mjs';
import { PostfixInstance } from '../../peers/postfix.mjs';
import { startSmtpSink } from '../../peers/smtp-sink.mjs';

const cleanups: (() => Promise<void> | void)[] = [];

afterAll(async () => {
  for (const f of cleanups.reverse()) await f();
});

/** Starts smtp-sink with extra flags; returns its port and dump directory. */
async function smtpSink(flags: string[]): Promise<{ port: number; dir: string }> {
  const sink = await startSmtpSink({ flags, dump: true, backlog: 100 });
  cleanups.push(sink.stop);
  return { port: sink.port, dir: sink.dir! };
}

function smtp(extra: Record<string, unknown> = {}): SmtpDeliveryAgent {
  const a = new SmtpDeliveryAgent({
    params: resolveParameters({
      myhostname: 'postern.test',
      smtpTlsSecurityLevel: 'none',
      ...extra,
    }),
  });
  cleanups.push(() => a.close());
  return a;
}

const RCPTS = ['one@example.net', 'two@example.net', 'three@example.net'];

describe('SMTP client against Postfix smtp-sink', () => {
  it('delivers three recipients in one transaction', async () => {
    const { port, dir } = await smtpSink([]);
    const c = new Collector();
    await smtp().deliver(makeRequest({ nexthop: `[127.0.0.1]:${port}`, recipients: RCPTS }), c);
    expect(c.statuses()).toEqual(['sent', 'sent', 'sent']);
    expect(c.results.get(0)!.relay).toBe(`127.0.0.1[127.0.0.1]:${port}`);
    const dumps = readdirSync(dir);
    expect(dumps).toHaveLength(1);
    const dump = readFileSync(join(dir, dumps[0]!), 'latin1');
    expect(dump).toContain('Subject: test');
  });

  it('8-bit mail to a server without 8BITMIME (-8) arrives 7-bit and decodes back', async () => {
    const { port, dir } = await smtpSink(['-8']);
    const text = 'Übergrößenträger sagt: ¡olé! — 日本語';
    const content = `From: a@example.org\r\nSubject: 8bit\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${text}\r\n`;
    const c = new Collector();
    await smtp().deliver(
      makeRequest({
        nexthop: `[127.0.0.1]:${port}`,
        recipients: ['x@example.net'],
        content,
        eightBit: true,
      }),
      c,
    );
    expect(c.statuses()).toEqual(['sent']);
    const raw = readFileSync(join(dir, readdirSync(dir)[0]!));
    expect(raw.some((b) => b > 0x7f)).toBe(false);
    const s = raw.toString('latin1');
    expect(s).toMatch(/Content-Transfer-Encoding: quoted-printable/);
    const afterSubject = s.slice(s.indexOf('Subject: 8bit'));
    const blank = /\r?\n\r?\n/.exec(afterSubject)!;
    const qp = afterSubject.slice(blank.index + blank[0].length);
    const decoded = Buffer.from(
      qp
        .replace(/=\r?\n/g, '')
        .replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16))),
      'latin1',
    ).toString('utf8');
    expect(decoded.trimEnd()).toBe(text);
  });

  it('fault flags: 5xx RCPT bounces, 4xx MAIL defers, a drop after "." defers', async () => {
    const f = await smtpSink(['-f', 'rcpt']);
    const c1 = new Collector();
    await smtp().deliver(makeRequest({ nexthop: `[127.0.0.1]:${f.port}`, recipients: RCPTS }), c1);
    expect(c1.statuses()).toEqual(['bounced', 'bounced', 'bounced']);
    const r = await smtpSink(['-r', 'mail']);
    const c2 = new Collector();
    await smtp().deliver(makeRequest({ nexthop: `[127.0.0.1]:${r.port}`, recipients: RCPTS }), c2);
    expect(c2.statuses()).toEqual(['deferred', 'deferred', 'deferred']);
    const q = await smtpSink(['-q', '.']);
    const c3 = new Collector();
    await smtp().deliver(makeRequest({ nexthop: `[127.0.0.1]:${q.port}`, recipients: RCPTS }), c3);
    expect(c3.statuses()).toEqual(['deferred', 'deferred', 'deferred']);
    expect(c3.results.get(0)!.reply.enhanced).toBe('4.4.2');
  });

  it('reuses the cached connection for a second message', async () => {
    const { port, dir } = await smtpSink([]);
    const a = smtp();
    for (let i = 0; i < 3; i++) {
      const c = new Collector();
      await a.deliver(
        makeRequest({ nexthop: `[127.0.0.1]:${port}`, recipients: ['x@example.net'] }),
        c,
      );
      expect(c.statuses()).toEqual(['sent']);
    }
    expect(a.stats).toEqual({ opened: 1, reused: 2 });
    expect(readdirSync(dir)).toHaveLength(3);
  });
});

describe('SMTP client against a private Postfix smtpd', () => {
  it('Postfix accepts the message into its queue', async () => {
    const postfix = await PostfixInstance.create();
    cleanups.push(() => postfix.stop());
    await postfix.start();
    const c = new Collector();
    await smtp().deliver(
      makeRequest({ nexthop: `[127.0.0.1]:${postfix.port}`, recipients: RCPTS }),
      c,
    );
    expect(c.statuses()).toEqual(['sent', 'sent', 'sent']);
    expect(c.results.get(0)!.reply.text).toMatch(/queued as [0-9A-Za-z]+/);
    // postlogd writes the discard(8) lines a moment after the deliveries.
    let delivered = 0;
    for (let i = 0; i < 600 && delivered < 3; i++) {
      delivered = await postfix.delivered('discard');
      if (delivered < 3) await new Promise((r) => setTimeout(r, 100));
    }
    expect(delivered).toBe(3);
    expect(await postfix.queued()).toBe(0);
  });
});

describe('LMTP client against Dovecot LMTP', () => {
  it('one unknown user among three: 2 sent + 1 bounced, mail in the Maildirs', async () => {
    const dovecot = await DovecotLmtp.start(['lena', 'max']);
    cleanups.push(() => dovecot.stop());
    const agent = new LmtpDeliveryAgent({
      params: resolveParameters({ myhostname: 'postern.test' }),
    });
    cleanups.push(() => agent.close());
    const c = new Collector();
    await agent.deliver(
      makeRequest({
        nexthop: `inet:127.0.0.1:${dovecot.port}`,
        transport: 'lmtp',
        recipients: ['lena@example.test', 'nosuchuser@example.test', 'max@example.test'],
      }),
      c,
    );
    expect(c.statuses()).toEqual(['sent', 'bounced', 'sent']);
    expect(c.results.get(1)!.reply.toString()).toMatch(/^550 5\.1\.1 /);
    for (const u of ['lena', 'max']) {
      expect(readdirSync(join(dovecot.maildir(u), 'new'))).toHaveLength(1);
    }
  });
});
