import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestMta, type TestMta } from '../../../src/testing/index.js';

describe('postern/testing createTestMta', () => {
  let mta: TestMta;
  beforeAll(async () => {
    mta = await createTestMta();
  });
  afterAll(async () => {
    await mta.close();
  });

  it('captures a message sent by the code under test (the README example)', async () => {
    const transport = nodemailer.createTransport({
      host: mta.host,
      port: mta.port,
      ignoreTLS: true,
    });
    await transport.sendMail({
      from: 'app@example.com',
      to: 'new.user@example.com',
      subject: 'Welcome!',
      text: 'Hi there',
    });
    const msg = await mta.waitForMessage('new.user@example.com');
    expect(msg.subject).toBe('Welcome!');
    expect(msg.text).toBe('Hi there');
  });

  it('decodes headers, text, HTML and attachments, and keeps the envelope and raw bytes', async () => {
    const transport = nodemailer.createTransport({
      host: mta.host,
      port: mta.port,
      ignoreTLS: true,
    });
    await transport.sendMail({
      from: '"Ünïcödé Sender" <sender@example.com>',
      to: ['a@example.org', '"B" <b@example.org>'],
      bcc: 'hidden@example.org',
      subject: 'Grüße – report',
      text: 'plain ✓',
      html: '<p>rich ✓</p>',
      attachments: [{ filename: 'data.bin', content: Buffer.from([0, 1, 2, 255]) }],
    });
    const msg = await mta.waitForMessage((m) => m.subject === 'Grüße – report');
    expect(msg.from).toEqual({ name: 'Ünïcödé Sender', address: 'sender@example.com' });
    expect(msg.to).toEqual([
      { name: '', address: 'a@example.org' },
      { name: 'B', address: 'b@example.org' },
    ]);
    expect(msg.headers.get('from')).toEqual(['Ünïcödé Sender <sender@example.com>']);
    expect(msg.text).toBe('plain ✓');
    expect(msg.html).toBe('<p>rich ✓</p>');
    expect(msg.attachments).toHaveLength(1);
    expect(msg.attachments[0]).toMatchObject({
      filename: 'data.bin',
      contentType: 'application/octet-stream',
    });
    expect([...msg.attachments[0]!.content]).toEqual([0, 1, 2, 255]);
    expect(msg.envelope.sender).toBe('sender@example.com');
    expect([...msg.envelope.recipients].sort()).toEqual([
      'a@example.org',
      'b@example.org',
      'hidden@example.org',
    ]);
    expect(msg.bcc).toEqual([{ name: '', address: 'hidden@example.org' }]);
    expect(msg.headers.has('bcc')).toBe(false);
    expect(msg.raw.toString('latin1')).toMatch(/^Received: from /);
  });

  it('matches by partial fields and iterates arrivals', async () => {
    const transport = nodemailer.createTransport({
      host: mta.host,
      port: mta.port,
      ignoreTLS: true,
    });
    mta.clear();
    const iterator = mta[Symbol.asyncIterator]();
    await transport.sendMail({
      from: 'x@example.com',
      to: 'y@example.com',
      subject: 'one',
      text: '1',
    });
    await transport.sendMail({
      from: 'x@example.com',
      to: 'y@example.com',
      subject: 'two',
      text: '2',
    });
    expect((await iterator.next()).value.subject).toBe('one');
    expect((await iterator.next()).value.subject).toBe('two');
    expect((await mta.waitForMessage({ subject: 'two' })).text).toBe('2');
  });

  it('times out with a message naming what it waited for and what it saw', async () => {
    await expect(mta.waitForMessage('nobody@example.com', { timeout: 200 })).rejects.toThrow(
      /waitForMessage: no message to <nobody@example\.com> arrived within 200 ms \(captured so far: "one" to <y@example\.com>/,
    );
  });
});

describe('postern/testing fault injection', () => {
  let mta: TestMta;
  beforeAll(async () => {
    mta = await createTestMta();
  });
  afterAll(async () => {
    await mta.close();
  });

  async function dialogue() {
    const { SmtpDialogue } = await import('../../helpers/smtp-dialogue.js');
    const c = await SmtpDialogue.open(mta.port);
    return c;
  }

  it('fails the next RCPT for one recipient only, once', async () => {
    mta.failNext('RCPT', '550 5.1.1 no such user here', { recipient: 'gone@example.org' });
    const transport = nodemailer.createTransport({
      host: mta.host,
      port: mta.port,
      ignoreTLS: true,
    });
    const info = await transport.sendMail({
      from: 'a@example.com',
      to: ['gone@example.org', 'ok@example.org'],
      subject: 'partial',
      text: 'x',
    });
    expect(info.rejected).toEqual(['gone@example.org']);
    expect(info.accepted).toEqual(['ok@example.org']);
    const again = await transport.sendMail({
      from: 'a@example.com',
      to: 'gone@example.org',
      subject: 'second',
      text: 'x',
    });
    expect(again.accepted).toEqual(['gone@example.org']);
  });

  it.each([
    ['MAIL', 'MAIL FROM:<a@example.com>', '451 4.3.0 try later'],
    ['DATA', 'DATA', '554 5.7.1 no data today'],
  ] as const)('answers %s with the chosen reply', async (stage, command, reply) => {
    mta.failNext(stage, reply);
    const c = await dialogue();
    try {
      await c.read();
      await c.expect('EHLO client.example', 250);
      if (stage !== 'MAIL') {
        await c.expect('MAIL FROM:<a@example.com>', 250);
        await c.expect('RCPT TO:<b@example.org>', 250);
      }
      const r = await c.command(command);
      expect(`${r.code} ${r.text}`).toBe(reply);
    } finally {
      c.close();
    }
  });

  it('fails the end of DATA and captures nothing', async () => {
    mta.clear();
    mta.failNext('DATA-END', '552 5.3.4 too big for the test');
    const transport = nodemailer.createTransport({
      host: mta.host,
      port: mta.port,
      ignoreTLS: true,
    });
    await expect(
      transport.sendMail({ from: 'a@example.com', to: 'b@example.org', subject: 'x', text: 'x' }),
    ).rejects.toThrow(/552 5\.3\.4 too big for the test/);
    expect(mta.messages).toHaveLength(0);
  });

  it('refuses at CONNECT: every command of that session gets the reply', async () => {
    mta.failNext('CONNECT', '554 5.7.1 not from here');
    const c = await dialogue();
    try {
      expect((await c.read()).code).toBe(220);
      await c.expect('EHLO client.example', 250);
      const r = await c.command('MAIL FROM:<a@example.com>');
      expect(`${r.code} ${r.text}`).toBe('554 5.7.1 not from here');
    } finally {
      c.close();
    }
  });

  it('drops the connection at a stage, and delays a stage', async () => {
    mta.dropNext('HELO');
    const c = await dialogue();
    await c.read();
    const r = await c.command('EHLO client.example');
    expect(r.code).toBe(421);
    await c.waitClosed();

    mta.delayNext('RCPT', 300);
    // The delay is a 300 ms timer: note when it fires, and see the reply come after it.
    const realSetTimeout = globalThis.setTimeout;
    let fired = false;
    const timers = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((
      fn: (...args: unknown[]) => void,
      ms?: number,
      ...args: unknown[]
    ) =>
      realSetTimeout(() => {
        if (ms === 300) fired = true;
        fn(...args);
      }, ms)) as typeof setTimeout);
    const d = await dialogue();
    try {
      await d.read();
      await d.expect('EHLO client.example', 250);
      await d.expect('MAIL FROM:<a@example.com>', 250);
      expect(fired).toBe(false);
      await d.expect('RCPT TO:<b@example.org>', 250);
      expect(fired).toBe(true);
    } finally {
      timers.mockRestore();
      d.close();
    }
  });

  it('fires with a probability and for N times', async () => {
    mta.failNext('MAIL', '450 4.7.1 sometimes', { times: 2, probability: 1 });
    const results: number[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await dialogue();
      await c.read();
      await c.expect('EHLO client.example', 250);
      results.push((await c.command('MAIL FROM:<a@example.com>')).code);
      c.close();
    }
    expect(results).toEqual([450, 450, 250]);
    mta.failNext('MAIL', '450 4.7.1 never', { probability: 0 });
    const c = await dialogue();
    await c.read();
    await c.expect('EHLO client.example', 250);
    expect((await c.command('MAIL FROM:<a@example.com>')).code).toBe(250);
    c.close();
    mta.clearFaults();
    expect(() => mta.failNext('RCPT', '250 fine')).toThrow(/must start with a 4xx or 5xx code/);
  });
});
