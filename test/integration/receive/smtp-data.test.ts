import { createHash } from 'node:crypto';
import { Duplex, PassThrough } from 'node:stream';
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { SmtpReceiver } from '../../../src/receive/smtpd-receiver.js';
import { Rewriter } from '../../../src/rewrite/rewriter.js';
import { RawSmtpClient } from '../../helpers/raw-smtp-client.js';
import { type ReceiverFixture, startReceiver, TEST_HOST } from '../../helpers/receiver-fixture.js';
import {
  RecordingSubmission,
  type RecordingSubmissionOptions,
} from '../../helpers/recording-submission.js';

let fx: ReceiverFixture | undefined;

async function setup(
  overrides: Record<string, unknown> = {},
  submission: RecordingSubmissionOptions = {},
): Promise<ReceiverFixture> {
  fx = await startReceiver(overrides, submission);
  return fx;
}

afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

const LOCAL = `postmaster@${TEST_HOST}`;

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Content the first transaction has passed on so far. */
function received(f: ReceiverFixture): string {
  const t = f.submission.transactions[0];
  return t ? RecordingSubmission.text(t) : '';
}

async function startData(c: RawSmtpClient): Promise<void> {
  expect((await c.command('MAIL FROM:<sender@example.org>')).code).toBe(250);
  expect((await c.command(`RCPT TO:<${LOCAL}>`)).code).toBe(250);
  expect((await c.command('DATA')).code).toBe(354);
}

describe('SmtpReceiver: PIPELINING', () => {
  it('answers a pipelined group in order', async () => {
    const f = await setup();
    const c = await f.ehlo();
    c.send(
      `MAIL FROM:<a@example.com>\r\nRCPT TO:<${LOCAL}>\r\nRCPT TO:<x@elsewhere.example>\r\n` +
        `RCPT TO:<root@${TEST_HOST}>\r\nDATA\r\n`,
    );
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await c.reply()).code);
    expect(codes).toEqual([250, 250, 454, 250, 354]);
    c.send('Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n');
    expect((await c.reply()).code).toBe(250);
    expect((await c.reply()).raw).toBe('221 2.0.0 Bye\r\n');
    await c.waitClose();
    const [t] = f.submission.committed;
    expect(t?.recipients.map((r) => r.address)).toEqual([LOCAL, `root@${TEST_HOST}`]);
  });

  it('writes the replies to a pipelined group at once, when its input is used up', async () => {
    // A whole session in a few writes: legal only with smtpdForbidUnauthPipelining off.
    const params = resolveParameters({
      myhostname: TEST_HOST,
      localRecipientMaps: '', // every local part is a recipient here
      mynetworks: ['192.0.2.0/24'],
      smtpdForbidUnauthPipelining: false,
    });
    const submission = new RecordingSubmission();
    const receiver = new SmtpReceiver({ params, submission, rewriter: new Rewriter({ params }) });
    const toServer = new PassThrough();
    const toClient = new PassThrough();
    receiver.handle(Duplex.from({ readable: toServer, writable: toClient }), {
      address: '192.0.2.1',
      port: 4000,
    });
    const writes: string[] = [];
    toClient.on('data', (d: Buffer) => writes.push(d.toString()));
    await until(() => writes.length === 1);
    toServer.write('EHLO x\r\n');
    await until(() => writes.length === 2);
    toServer.write(
      `MAIL FROM:<a@example.com>\r\nRCPT TO:<${LOCAL}>\r\nRCPT TO:<x@elsewhere.example>\r\nDATA\r\n`,
    );
    await until(() => writes.length === 3);
    expect(writes[2]!.split('\r\n').map((l) => l.slice(0, 3))).toEqual([
      '250',
      '250',
      '250',
      '354',
      '',
    ]);
    toServer.write('hello\r\n.\r\nNOOP\r\nQUIT\r\n');
    // Up to the goodbye, every group came back in exactly one write: nothing in between.
    await until(() => writes.join('').includes('221 '));
    expect(writes).toHaveLength(4);
    expect(writes[3]!.split('\r\n').map((l) => l.slice(0, 3))).toEqual(['250', '250', '221', '']);
    await receiver.close();
  });

  it('serves a whole session sent in one write, followed by a half-close', async () => {
    const f = await setup({ smtpdForbidUnauthPipelining: false });
    const c = await RawSmtpClient.open(f.port);
    c.send(
      `EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<${LOCAL}>\r\nDATA\r\nhello\r\n.\r\n` +
        `MAIL FROM:<b@example.com>\r\nRCPT TO:<${LOCAL}>\r\nDATA\r\nsecond\r\n.\r\nQUIT\r\n`,
    );
    c.socket.end();
    const codes = [];
    for (let i = 0; i < 10; i++) codes.push((await c.reply()).code);
    expect(codes).toEqual([220, 250, 250, 250, 354, 250, 250, 250, 354, 250]);
    expect((await c.reply()).code).toBe(221);
    await c.waitClose();
    expect(f.submission.committed.map((t) => RecordingSubmission.text(t))).toEqual([
      'hello\r\n',
      'second\r\n',
    ]);
  });

  it('reads commands split into single bytes', async () => {
    const f = await setup();
    const { client: c } = await f.connect();
    for (const ch of 'EHLO slow.example\r\n') {
      c.send(ch);
      await new Promise((r) => setImmediate(r));
    }
    expect((await c.reply()).code).toBe(250);
  });
});

describe('SmtpReceiver: DATA', () => {
  it('does not let a smuggled message out of the DATA it hides in', async () => {
    const f = await setup();
    const c = await f.ehlo();
    await startData(c);
    c.send(
      'Subject: innocent\r\n\r\nhello\n.\r\nMAIL FROM:<ceo@example.org>\r\n' +
        `RCPT TO:<victim@${TEST_HOST}>\r\nDATA\r\nSubject: forged\r\n\r\nsend money\r\n.\r\n`,
    );
    const r = await c.reply();
    expect(r.code).toBe(250);
    expect((await c.command('NOOP')).code).toBe(250);
    expect(f.submission.transactions).toHaveLength(1);
    const text = RecordingSubmission.text(f.submission.transactions[0]!);
    expect(text).toContain('MAIL FROM:<ceo@example.org>\r\n');
    expect(text).toContain('Subject: forged\r\n');
    expect(text.startsWith('Subject: innocent\r\n\r\nhello\r\n')).toBe(true);
  });

  for (const seq of ['\n.\n', '\n.\r\n', '\r\n.\n', '\r.\r\n']) {
    it(`${JSON.stringify(seq)} never ends DATA`, async () => {
      const f = await setup();
      const c = await f.ehlo();
      await startData(c);
      c.send(`a${seq}NOOP\r\n`);
      c.send('.\r\n');
      // The first reply is the one to the real end, and QUIT's comes next: nothing was
      // answered before, so the NOOP was content.
      expect((await c.reply()).code).toBe(250);
      expect((await c.command('QUIT')).code).toBe(221);
      expect(f.submission.committed).toHaveLength(1);
      expect(RecordingSubmission.text(f.submission.committed[0]!)).toMatch(/^a.*NOOP\r\n$/s);
    });
  }

  it('rejects content with a bare LF under reject, after the end, queueing nothing', async () => {
    const f = await setup({ smtpdForbidBareNewline: 'reject' });
    const c = await f.ehlo();
    await startData(c);
    c.send('line one\nline two\r\n.\r\n');
    expect((await c.reply()).raw).toBe(`550 5.5.2 ${TEST_HOST} Error: bare <LF> received\r\n`);
    expect(f.submission.transactions[0]?.state).toBe('aborted');
    expect(f.submission.committed).toHaveLength(0);
    expect((await c.command('NOOP')).code).toBe(250);
  });

  it('discards an over-size message to its end, then replies 552 and serves on', async () => {
    const f = await setup({ messageSizeLimit: 10_000 });
    const c = await f.ehlo();
    await startData(c);
    const line = `${'x'.repeat(98)}\r\n`;
    c.send(line.repeat(200));
    c.send('.\r\n');
    expect((await c.reply()).raw).toBe('552 5.3.4 Error: message file too big\r\n');
    expect(f.submission.transactions[0]?.state).toBe('aborted');
    const written = Buffer.concat(f.submission.transactions[0]!.chunks).length;
    expect(written).toBeLessThanOrEqual(10_000);
    await startData(c);
    c.send('small\r\n.\r\n');
    expect((await c.reply()).code).toBe(250);
  });

  it('streams a large message with backpressure and keeps every byte', async () => {
    const f = await setup({}, { highWaterMark: 1024, writeDelayMs: 1 });
    const c = await f.ehlo();
    await startData(c);
    const lines: string[] = [];
    for (let i = 0; i < 40_000; i++)
      lines.push(`${i % 7 === 0 ? '.' : ''}line ${i} ${'y'.repeat(40)}`);
    const wire = `${lines.join('\r\n')}\r\n.\r\n`;
    const expected = `${lines.map((l) => (l.startsWith('.') ? l.slice(1) : l)).join('\r\n')}\r\n`;
    c.send(wire);
    expect((await c.reply(30_000)).code).toBe(250);
    const got = Buffer.concat(f.submission.committed[0]!.chunks);
    expect(got.length).toBe(Buffer.byteLength(expected));
    expect(createHash('sha256').update(got).digest('hex')).toBe(
      createHash('sha256').update(expected).digest('hex'),
    );
    expect(f.submission.backpressureEvents).toBeGreaterThan(0);
  });

  it('aborts the transaction when the client disconnects mid-DATA', async () => {
    const f = await setup();
    const c = await f.ehlo();
    await startData(c);
    c.send('partial content\r\n');
    await until(() => received(f).includes('partial content'));
    c.close();
    await until(() => f.submission.transactions[0]?.state === 'aborted');
    await until(() => f.receiver.sessionCount === 0);
    expect(
      f.logs.some((e) =>
        /^lost connection after DATA \(17 bytes\) from unknown\[127\.0\.0\.1\]$/.test(e.text),
      ),
    ).toBe(true);
  });

  it('times out a client that stalls in DATA and aborts its transaction', async () => {
    const f = await setup({ smtpdTimeout: '300ms' });
    const c = await f.ehlo();
    await startData(c);
    c.send('some content\r\n');
    expect((await c.reply(3000)).raw).toBe(`421 4.4.2 ${TEST_HOST} Error: timeout exceeded\r\n`);
    await c.waitClose();
    expect(f.submission.transactions[0]?.state).toBe('aborted');
  });
});

describe('SmtpReceiver: lifecycle', () => {
  it('graceful close lets a message in DATA finish, then ends idle sessions with 421 4.3.2', async () => {
    const f = await setup();
    const idle = await f.ehlo();
    const busy = await f.ehlo();
    await startData(busy);
    busy.send('first part\r\n');
    await until(() => received(f).includes('first part'));
    expect(f.receiver.sessionCount).toBe(2);
    const closing = f.receiver.close({ graceful: true });
    expect((await idle.reply()).raw).toBe(
      `421 4.3.2 ${TEST_HOST} Service shutting down, closing transmission channel\r\n`,
    );
    busy.send('second part\r\n.\r\n');
    expect((await busy.reply()).code).toBe(250);
    expect((await busy.reply()).code).toBe(421);
    await closing;
    expect(f.receiver.sessionCount).toBe(0);
    expect(RecordingSubmission.text(f.submission.committed[0]!)).toBe(
      'first part\r\nsecond part\r\n',
    );
    await expect(RawSmtpClient.open(f.port)).rejects.toThrow();
  });

  it('close() without grace drops sessions and aborts their transactions', async () => {
    const f = await setup();
    const c = await f.ehlo();
    await startData(c);
    c.send('content\r\n');
    await until(() => received(f).includes('content'));
    await f.receiver.close();
    await c.waitClose();
    expect(f.submission.transactions[0]?.state).toBe('aborted');
    expect(f.receiver.sessionCount).toBe(0);
  });

  it('listens on several addresses', async () => {
    const f = await setup();
    const second = await f.receiver.listen({ host: '127.0.0.1', port: 0 });
    expect(second.port).not.toBe(f.port);
    const c = await RawSmtpClient.open(second.port);
    expect((await c.reply()).code).toBe(220);
    c.close();
  });

  it('serves an in-memory duplex stream', async () => {
    const params = resolveParameters({
      myhostname: TEST_HOST,
      localRecipientMaps: '', // every local part is a recipient here
      smtpdForbidUnauthPipelining: false,
    });
    const submission = new RecordingSubmission();
    const receiver = new SmtpReceiver({ params, submission, rewriter: new Rewriter({ params }) });
    const toServer = new PassThrough();
    const toClient = new PassThrough();
    receiver.handle(Duplex.from({ readable: toServer, writable: toClient }), {
      address: '192.0.2.1',
      port: 4000,
    });
    let received = '';
    toClient.on('data', (d: Buffer) => {
      received += d.toString();
    });
    toServer.write(
      `HELO mem\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<${LOCAL}>\r\nDATA\r\nin memory\r\n.\r\nQUIT\r\n`,
    );
    await until(() => received.includes('221 2.0.0 Bye'));
    expect(received.split('\r\n').map((l) => l.slice(0, 3))).toEqual([
      '220',
      '250',
      '250',
      '250',
      '354',
      '250',
      '221',
      '',
    ]);
    expect(submission.committed[0]?.source.client).toEqual({
      address: '192.0.2.1',
      port: 4000,
      name: 'unknown',
    });
    await receiver.close();
  });
});

describe('SmtpReceiver: nodemailer', () => {
  it('receives a message sent by nodemailer', async () => {
    const f = await setup({ mynetworks: ['127.0.0.0/8'] });
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: f.port,
      secure: false,
      ignoreTLS: true,
    });
    const info = await transport.sendMail({
      from: 'Alice <alice@example.org>',
      to: ['bob@example.net', `carol@${TEST_HOST}`],
      subject: 'Hello from nodemailer',
      text: 'Line one\n.Line starting with a dot\nÜnïcödé',
      dsn: {
        id: 'env-1',
        return: 'headers',
        notify: ['failure', 'delay'],
        recipient: 'alice@example.org',
      },
    });
    transport.close();
    expect(info.accepted).toEqual(['bob@example.net', `carol@${TEST_HOST}`]);
    const [t] = f.submission.committed;
    expect(info.response).toBe(`250 2.0.0 Ok: queued as ${t?.queueId}`);
    expect(t?.sender).toBe('alice@example.org');
    expect(t?.senderParams).toMatchObject({ envid: 'env-1', ret: 'HDRS' });
    expect(t?.recipients.map((r) => r.address)).toEqual(['bob@example.net', `carol@${TEST_HOST}`]);
    expect(t?.recipients[0]?.notify).toEqual(['FAILURE', 'DELAY']);
    const text = RecordingSubmission.text(t!);
    expect(text).toContain('Subject: Hello from nodemailer\r\n');
    expect(text).toContain('\r\n.Line starting with a dot');
    expect(text.endsWith('\r\n')).toBe(true);
  });
});
