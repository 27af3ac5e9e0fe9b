/**
 * The traps a new user of postern/testing fell into, one test each: capture at
 * acceptance, one message per transaction, waits that do not return a message twice,
 * no postmaster notices unless asked, a default wait below the runners' timeout, close()
 * and clear() settling waits and iterators, parsed address fields, and the helpers
 * users reach for (N messages, nothing arrives, AUTH and STARTTLS faults, a seed).
 */

import nodemailer from 'nodemailer';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createTestMta, type TestMta } from '../../../src/testing/index.js';
import { SmtpDialogue } from '../../helpers/smtp-dialogue.js';

let mta: TestMta | undefined;
afterEach(async () => {
  await mta?.close();
  mta = undefined;
});

async function start(options: Parameters<typeof createTestMta>[0] = {}): Promise<TestMta> {
  mta = await createTestMta(options);
  return mta;
}

/** Waits until the SMTP listener has no session open. */
async function sessionsEnded(m: TestMta): Promise<void> {
  await vi.waitFor(
    async () => {
      const { sessions } = await m.mta.metrics.snapshot();
      expect(sessions.map((s) => s.active)).toEqual([0]);
    },
    { timeout: 10_000 },
  );
}

function mailer(m: TestMta) {
  return nodemailer.createTransport({ host: m.host, port: m.port, ignoreTLS: true });
}

describe('postern/testing traps', () => {
  it('1: the message is in `messages` when sendMail resolves (captured at acceptance)', async () => {
    const m = await start();
    await mailer(m).sendMail({
      from: 'a@example.com',
      to: 'b@example.org',
      subject: 'A',
      text: 'x',
    });
    expect(m.messages.map((x) => x.subject)).toEqual(['A']);
    // So clear() between tests leaves nothing of the earlier test behind.
    m.clear();
    await mailer(m).sendMail({
      from: 'a@example.com',
      to: 'b@example.org',
      subject: 'B',
      text: 'x',
    });
    expect(m.messages.map((x) => x.subject)).toEqual(['B']);
  });

  it('2: a mail to three domains is one message with all its envelope recipients', async () => {
    const m = await start();
    const to = ['ann@one.example', 'bob@two.example', 'cy@three.example'];
    await mailer(m).sendMail({ from: 'a@example.com', to, subject: 'three', text: 'x' });
    const msg = await m.waitForMessage('bob@two.example');
    expect([...msg.envelope.recipients].sort()).toEqual(to);
    expect(m.messages).toHaveLength(1);
  });

  it('3: each wait returns the oldest matching message no earlier wait returned', async () => {
    const m = await start();
    const t = mailer(m);
    await t.sendMail({
      from: 'a@example.com',
      to: 'same@example.org',
      subject: 'first',
      text: '1',
    });
    await t.sendMail({
      from: 'a@example.com',
      to: 'same@example.org',
      subject: 'second',
      text: '2',
    });
    expect((await m.waitForMessage('same@example.org')).subject).toBe('first');
    expect((await m.waitForMessage('same@example.org')).subject).toBe('second');
    // A wait made before the mail arrives gets it; a later wait gets the next one.
    const early = m.waitForMessage('same@example.org');
    const later = m.waitForMessage('same@example.org');
    await t.sendMail({
      from: 'a@example.com',
      to: 'same@example.org',
      subject: 'third',
      text: '3',
    });
    await t.sendMail({
      from: 'a@example.com',
      to: 'same@example.org',
      subject: 'fourth',
      text: '4',
    });
    expect((await early).subject).toBe('third');
    expect((await later).subject).toBe('fourth');
    expect(m.messages).toHaveLength(4);
  });

  it('4: an injected 4xx mails no notice to postmaster unless notifyClasses asks for one', async () => {
    const toPostmaster = (x: { envelope: { recipients: readonly string[] } }) =>
      x.envelope.recipients.some((r) => r.startsWith('postmaster@'));
    const m = await start();
    m.failNext('RCPT', '451 4.3.0 try again later', { recipient: 'flaky@example.org' });
    await expect(
      mailer(m).sendMail({ from: 'a@example.com', to: 'flaky@example.org', text: 'x' }),
    ).rejects.toThrow(/451 4\.3\.0 try again later/);
    // A session counts as open until its notice, if it owes one, is queued (and so
    // captured): once none is open, anything owed is there.
    await sessionsEnded(m);
    expect(m.messages).toHaveLength(0);
    await m.close();

    const asked = await start({ config: { notifyClasses: ['resource'] } });
    asked.failNext('RCPT', '451 4.3.0 try again later', { recipient: 'flaky@example.org' });
    await mailer(asked)
      .sendMail({ from: 'a@example.com', to: 'flaky@example.org', subject: 'none', text: 'x' })
      .catch(() => undefined);
    const notice = await asked.waitForMessage(toPostmaster);
    expect(notice.subject).toMatch(/Postern SMTP server: errors from/);
  });

  it('5: the default wait (3 s) is below the test runners’ 5 s timeout', async () => {
    const m = await start();
    await expect(m.waitForMessage('nobody@example.org')).rejects.toThrow(
      /waitForMessage: no message to <nobody@example\.org> arrived within 3000 ms/,
    );
  });

  it('6: close() settles pending waits; clear() and close() end for-await loops', async () => {
    const m = await start();
    // Each rejection is expected from the start, so none is ever unhandled.
    const pending = expect(m.waitForMessage('nobody@example.org', { timeout: 30_000 })).rejects;
    const pendingChecked = pending.toThrow(/clear\(\) was called while waiting/);
    const iterator = m[Symbol.asyncIterator]();
    const next = iterator.next();
    m.clear();
    await pendingChecked;
    expect(await next).toEqual({ value: undefined, done: true });
    const afterClear = expect(
      m.waitForMessage('other@example.org', { timeout: 30_000 }),
    ).rejects.toThrow(/closed while waiting/);
    const seen: string[] = [];
    const loop = (async () => {
      for await (const msg of m) seen.push(msg.subject ?? '');
    })();
    await mailer(m).sendMail({ from: 'a@example.com', to: 'x@example.org', subject: 'in loop' });
    await m.close();
    await loop;
    expect(seen).toEqual(['in loop']);
    await afterClear;
    await expect(m.waitForMessage()).rejects.toThrow(/closed/);
  }, 10_000);

  it('7: from, to, cc, bcc and replyTo are { name, address }; headers stay as written', async () => {
    const m = await start();
    await mailer(m).sendMail({
      from: '"Doe, Jane" <jane@example.com>',
      to: ['=?UTF-8?Q?J=C3=BCrgen?= <jurgen@example.org>', 'plain@example.org'],
      cc: 'Carl <carl@example.org>',
      bcc: 'hidden@example.org',
      replyTo: 'Help Desk <help@example.com>',
      subject: 'fields',
      text: 'x',
    });
    const [msg] = m.messages;
    expect(msg?.from).toEqual({ name: 'Doe, Jane', address: 'jane@example.com' });
    expect(msg?.to).toEqual([
      { name: 'Jürgen', address: 'jurgen@example.org' },
      { name: '', address: 'plain@example.org' },
    ]);
    expect(msg?.cc).toEqual([{ name: 'Carl', address: 'carl@example.org' }]);
    expect(msg?.bcc).toEqual([{ name: '', address: 'hidden@example.org' }]);
    expect(msg?.replyTo).toEqual([{ name: 'Help Desk', address: 'help@example.com' }]);
    expect(msg?.headers.get('from')).toEqual(['"Doe, Jane" <jane@example.com>']);
    expect(msg?.rawHeaders.find((h) => h.name === 'To')?.value).toMatch(
      /=\?UTF-8\?Q\?J=C3=BCrgen\?=/,
    );
  });

  it('8a: waitForMessages(N) and expectNoMessage', async () => {
    const m = await start();
    const t = mailer(m);
    const three = m.waitForMessages(3, { to: 'many@example.org' });
    for (const n of [1, 2, 3])
      await t.sendMail({ from: 'a@example.com', to: 'many@example.org', subject: `n${n}` });
    expect((await three).map((x) => x.subject)).toEqual(['n1', 'n2', 'n3']);
    // Everything to many@ was returned, so nothing unexpected is there.
    await m.expectNoMessage('many@example.org', { within: 200 });
    const quiet = expect(
      m.expectNoMessage({ subject: 'surprise' }, { within: 10_000 }),
    ).rejects.toThrow(/expected no message with subject: surprise.*"surprise"/);
    await t.sendMail({ from: 'a@example.com', to: 'x@example.org', subject: 'surprise' });
    await quiet;
    await expect(m.waitForMessages(2, 'x@example.org', { timeout: 300 })).rejects.toThrow(
      /no 2 × message to <x@example\.org> arrived within 300 ms; 1 of 2 arrived/,
    );
    // The one that timed-out wait had taken is given back.
    expect((await m.waitForMessage('x@example.org')).subject).toBe('surprise');
  });

  it('8b: AUTH and STARTTLS are fault stages', async () => {
    const m = await start({ acceptAnyAuth: true });
    m.failNext('STARTTLS', '454 4.7.0 TLS not available due to local problem');
    m.failNext('AUTH', '535 5.7.8 Authentication credentials invalid');
    m.delayNext('AUTH', 50);
    const c = await SmtpDialogue.open(m.port);
    try {
      await c.read();
      await c.expect('EHLO client.example', 250);
      const tls = await c.command('STARTTLS');
      expect(`${tls.code} ${tls.text}`).toBe('454 4.7.0 TLS not available due to local problem');
      const plain = Buffer.from('\0user\0secret').toString('base64');
      const bad = await c.command(`AUTH PLAIN ${plain}`);
      expect(`${bad.code} ${bad.text}`).toBe('535 5.7.8 Authentication credentials invalid');
      expect((await c.command(`AUTH PLAIN ${plain}`)).code).toBe(235);
    } finally {
      c.close();
    }
    // nodemailer sees the STARTTLS fault when it requires TLS.
    m.failNext('STARTTLS', '454 4.7.0 TLS not available due to local problem');
    const strict = nodemailer.createTransport({ host: m.host, port: m.port, requireTLS: true });
    await expect(
      strict.sendMail({ from: 'a@example.com', to: 'b@example.org', text: 'x' }),
    ).rejects.toThrow(/454 4\.7\.0 TLS not available/);
    expect(() => m.failNext('AUTH', '235 fine')).toThrow(/4xx or 5xx/);
  });

  it('8c: a seed makes `probability` replayable', async () => {
    async function outcomes(seed: number): Promise<number[]> {
      const m = await createTestMta({ seed });
      try {
        m.failNext('MAIL', '451 4.3.0 flaky', { times: Infinity, probability: 0.5 });
        const c = await SmtpDialogue.open(m.port);
        await c.read();
        await c.expect('EHLO client.example', 250);
        const codes: number[] = [];
        for (let i = 0; i < 16; i++) {
          const r = await c.command('MAIL FROM:<a@example.com>');
          codes.push(r.code);
          if (r.code === 250) await c.expect('RSET', 250);
        }
        c.close();
        return codes;
      } finally {
        await m.close();
      }
    }
    const first = await outcomes(7);
    expect(await outcomes(7)).toEqual(first);
    expect(first).toContain(250);
    expect(first).toContain(451);
    expect(await outcomes(8)).not.toEqual(first);
  });
});
