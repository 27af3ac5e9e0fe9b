import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
    expect(msg.from).toBe('Ünïcödé Sender <sender@example.com>');
    expect(msg.to).toEqual(['a@example.org', 'b@example.org']);
    expect(msg.text).toBe('plain ✓');
    expect(msg.html).toBe('<p>rich ✓</p>');
    expect(msg.attachments).toHaveLength(1);
    expect(msg.attachments[0]).toMatchObject({
      filename: 'data.bin',
      contentType: 'application/octet-stream',
    });
    expect([...msg.attachments[0]!.content]).toEqual([0, 1, 2, 255]);
    expect(msg.envelope.sender).toBe('sender@example.com');
    const all = mta.messages
      .filter((m) => m.subject === 'Grüße – report')
      .flatMap((m) => m.envelope.recipients);
    expect(all.sort()).toEqual(['a@example.org', 'b@example.org', 'hidden@example.org']);
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
