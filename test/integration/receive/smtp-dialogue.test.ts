import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { SmtpReceiver } from '../../../src/receive/smtpd-receiver.js';
import { Rewriter } from '../../../src/rewrite/rewriter.js';
import { ObservedClock } from '../../helpers/observed-clock.js';
import { RawSmtpClient } from '../../helpers/raw-smtp-client.js';
import { type ReceiverFixture, startReceiver, TEST_HOST } from '../../helpers/receiver-fixture.js';
import { RecordingSubmission } from '../../helpers/recording-submission.js';

let fx: ReceiverFixture | undefined;

async function setup(overrides: Record<string, unknown> = {}): Promise<ReceiverFixture> {
  fx = await startReceiver(overrides);
  return fx;
}

afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

/** A local recipient: accepted from anywhere (mydestination). */
const LOCAL = `postmaster@${TEST_HOST}`;

describe('SmtpReceiver: greeting and EHLO', () => {
  it('greets with the banner and advertises exactly the extensions, in order', async () => {
    const f = await setup();
    const { client, greeting } = await f.connect();
    expect(greeting.raw).toBe(`220 ${TEST_HOST} ESMTP Postern\r\n`);
    const r = await client.command('EHLO client.example.org');
    expect(r.raw).toBe(
      `250-${TEST_HOST}\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-ENHANCEDSTATUSCODES\r\n` +
        '250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n',
    );
    expect((await client.command('HELO client.example.org')).raw).toBe(`250 ${TEST_HOST}\r\n`);
  });

  it('advertises VRFY when enabled and a bare SIZE without a limit', async () => {
    const f = await setup({
      disableVrfyCommand: false,
      messageSizeLimit: 0,
      smtpdBanner: 'hello there',
    });
    const { client, greeting } = await f.connect();
    expect(greeting.raw).toBe('220 hello there\r\n');
    const r = await client.command('EHLO x');
    expect(r.lines).toEqual([
      TEST_HOST,
      'PIPELINING',
      'SIZE',
      'VRFY',
      'ENHANCEDSTATUSCODES',
      '8BITMIME',
      'DSN',
      'SMTPUTF8',
      'CHUNKING',
    ]);
    expect((await client.command('VRFY <postmaster@mx.example.test>')).raw).toBe(
      '252 2.0.0 <postmaster@mx.example.test>\r\n',
    );
    expect((await client.command('VRFY')).raw).toBe('501 5.5.4 Syntax: VRFY address\r\n');
  });

  it('needs an argument to HELO and EHLO', async () => {
    const f = await setup();
    const { client } = await f.connect();
    expect((await client.command('HELO')).raw).toBe('501 5.5.4 Syntax: HELO hostname\r\n');
    expect((await client.command('EHLO')).raw).toBe('501 5.5.4 Syntax: EHLO hostname\r\n');
  });
});

describe('SmtpReceiver: replies', () => {
  it('answers every command with Postfix texts', async () => {
    const f = await setup({ smtpdHardErrorLimit: 100 });
    const c = await f.ehlo();
    const expectations: [string, string][] = [
      ['NOOP', '250 2.0.0 Ok'],
      ['RSET', '250 2.0.0 Ok'],
      ['RSET now', '501 5.5.4 Syntax: RSET'],
      ['VRFY root', '502 5.5.1 VRFY command is disabled'],
      ['ETRN example.com', '500 5.5.2 Error: command not recognized'],
      // STARTTLS without a certificate configured: known, not offered.
      ['STARTTLS', '502 5.5.1 Error: command not implemented'],
      ['RCPT TO:<a@example.com>', '503 5.5.1 Error: need MAIL command'],
      // Postfix data_cmd(): outside a mail transaction the text is "need RCPT command".
      ['DATA', '503 5.5.1 Error: need RCPT command'],
      ['MAIL <a@example.com>', '501 5.5.4 Syntax: MAIL FROM:<address>'],
      ['MAIL FROM:<a@example.com> SIZE=20000000', '552 5.3.4 Message size exceeds fixed limit'],
      ['MAIL FROM:<a@example.com> FOO=1', '555 5.5.4 Unsupported option: FOO'],
      ['MAIL FROM:<a@example.com> BODY=9BIT', '555 5.5.4 Unsupported option: BODY=9BIT'],
      ['MAIL FROM:<a b@example.com>', '501 5.1.7 Bad sender address syntax'],
      ['MAIL FROM:<j\u00f6rg@example.com>', '500 5.5.2 Error: bad UTF-8 syntax'],
      ['MAIL FROM:<a@example.com>', '250 2.1.0 Ok'],
      ['MAIL FROM:<b@example.com>', '503 5.5.1 Error: nested MAIL command'],
      ['DATA', '554 5.5.1 Error: no valid recipients'],
      ['RCPT <x@example.com>', '501 5.5.4 Syntax: RCPT TO:<address>'],
      ['RCPT TO:<>', '501 5.1.3 Bad recipient address syntax'],
      [
        'RCPT TO:<someone@elsewhere.example>',
        '454 4.7.1 <someone@elsewhere.example>: Relay access denied',
      ],
      ['DATA', '554 5.5.1 Error: no valid recipients'],
      [`RCPT TO:<${LOCAL}> NOTIFY=NEVER,SUCCESS`, '501 5.5.4 Error: Bad NOTIFY parameter syntax'],
      [`RCPT TO:<${LOCAL}> ORCPT=rfc822;x+0Ay`, '501 5.5.4 Error: Bad ORCPT parameter syntax'],
      [`RCPT TO:<-option@${TEST_HOST}>`, '501 5.1.3 Bad recipient address syntax'],
      [`RCPT TO:<${LOCAL}>`, '250 2.1.5 Ok'],
      ['DATA extra', '501 5.5.4 Syntax: DATA'],
      [
        'HELP',
        '214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP STARTTLS AUTH',
      ],
      ['QUIT', '221 2.0.0 Bye'],
    ];
    for (const [cmd, expected] of expectations) {
      // latin1 ö is deliberately not UTF-8.
      const r = await c.command(cmd);
      expect(r.raw, cmd).toBe(`${expected}\r\n`);
    }
    await c.waitClose();
  });

  it('requires SMTPUTF8 for a UTF-8 address, and then says so to Cleanup', async () => {
    const f = await setup({ mynetworks: ['127.0.0.0/8'] });
    const c = await f.ehlo();
    const utf8 = (s: string): void => c.send(Buffer.from(`${s}\r\n`, 'utf8'));
    utf8('MAIL FROM:<jörg@example.com>');
    expect((await c.reply()).raw).toBe(
      '553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n',
    );
    utf8('MAIL FROM:<jörg@example.com> SMTPUTF8');
    expect((await c.reply()).code).toBe(250);
    utf8('RCPT TO:<日本@example.jp>');
    expect((await c.reply()).code).toBe(250);
    c.send('DATA\r\n');
    expect((await c.reply()).code).toBe(354);
    c.send('Subject: x\r\n\r\nhi\r\n.\r\n');
    expect((await c.reply()).code).toBe(250);
    const [t] = f.submission.committed;
    expect(t?.source.protocol).toBe('UTF8SMTP');
    expect(t?.sender).toBe('jörg@example.com');
    expect(t?.recipients[0]?.address).toBe('日本@example.jp');
  });

  it('rejects commands with NUL bytes and empty lines as bad syntax and keeps going', async () => {
    const f = await setup();
    const c = await f.ehlo();
    c.send('NO\0OP\r\n');
    expect((await c.reply()).raw).toBe('500 5.5.2 Error: bad syntax\r\n');
    c.send('\0EHLO x\r\n');
    expect((await c.reply()).raw).toBe('500 5.5.2 Error: bad syntax\r\n');
    c.send('\r\n');
    expect((await c.reply()).raw).toBe('500 5.5.2 Error: bad syntax\r\n');
    expect((await c.command('NOOP')).code).toBe(250);
  });

  it('rejects an over-long command and reads on after it', async () => {
    const f = await setup();
    const c = await f.ehlo();
    c.send(`NOOP ${'x'.repeat(100_000)}\r\nNOOP\r\n`);
    expect((await c.reply()).raw).toBe('500 5.5.2 Error: command too long\r\n');
    expect((await c.reply()).raw).toBe('250 2.0.0 Ok\r\n');
  });

  it('HELO selects SMTP, EHLO ESMTP; both reset a transaction', async () => {
    const f = await setup();
    const { client: c } = await f.connect();
    await c.command('HELO old.example');
    await c.command('MAIL FROM:<a@example.com>');
    await c.command(`RCPT TO:<${LOCAL}>`);
    expect(f.submission.transactions[0]?.source.protocol).toBe('SMTP');
    expect(f.submission.transactions[0]?.source.helo).toBe('old.example');
    await c.command('EHLO new.example');
    expect(f.submission.transactions[0]?.state).toBe('aborted');
    expect((await c.command(`RCPT TO:<${LOCAL}>`)).raw).toBe(
      '503 5.5.1 Error: need MAIL command\r\n',
    );
  });

  it('requires HELO first when smtpdHeloRequired', async () => {
    const f = await setup({ smtpdHeloRequired: true });
    const { client: c } = await f.connect();
    expect((await c.command('MAIL FROM:<a@example.com>')).raw).toBe(
      '503 5.5.1 Error: send HELO/EHLO first\r\n',
    );
  });
});

describe('SmtpReceiver: transactions', () => {
  it('opens the transaction at the first accepted RCPT and passes DSN parameters', async () => {
    const f = await setup({ mynetworks: ['127.0.0.0/8'] });
    const c = await f.ehlo('client.example.org');
    await c.command('MAIL FROM:<sender@example.org> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=id+2B1');
    expect(f.submission.transactions).toHaveLength(0);
    expect((await c.command('RCPT TO:<bad@-example.org>')).code).toBe(501);
    expect(f.submission.transactions).toHaveLength(0);
    expect(
      (
        await c.command(
          'RCPT TO:<one@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;one+2Bx@example.net',
        )
      ).code,
    ).toBe(250);
    expect(f.submission.transactions).toHaveLength(1);
    expect((await c.command('RCPT TO:<"two words"@example.net>')).code).toBe(250);
    expect((await c.command('DATA')).raw).toBe('354 End data with <CR><LF>.<CR><LF>\r\n');
    c.send('Subject: test\r\n\r\n..leading dot\r\n.\r\n');
    const done = await c.reply();
    const t = f.submission.transactions[0]!;
    expect(done.raw).toBe(`250 2.0.0 Ok: queued as ${t.queueId}\r\n`);
    expect(t.state).toBe('committed');
    expect(t.senderBeforeRecipients).toBe(true);
    expect(t.sender).toBe('sender@example.org');
    expect(t.senderParams).toEqual({
      declaredSize: 100,
      bodyType: '8BITMIME',
      ret: 'HDRS',
      envid: 'id+1',
    });
    expect(t.recipients).toEqual([
      {
        address: 'one@example.net',
        notify: ['SUCCESS', 'FAILURE'],
        orcpt: 'rfc822;one+x@example.net',
      },
      { address: 'two words@example.net' },
    ]);
    expect(t.source).toEqual({
      component: 'smtpd',
      protocol: 'ESMTP',
      client: { address: '127.0.0.1', port: expect.any(Number), name: 'unknown' },
      helo: 'client.example.org',
    });
    expect(RecordingSubmission.text(t)).toBe('Subject: test\r\n\r\n.leading dot\r\n');
    // State was reset after DATA.
    expect((await c.command(`RCPT TO:<${LOCAL}>`)).raw).toBe(
      '503 5.5.1 Error: need MAIL command\r\n',
    );
    expect(
      f.logs.some((e) => e.queueId === t.queueId && e.text === 'client=unknown[127.0.0.1]'),
    ).toBe(true);
  });

  it('RSET aborts the open transaction', async () => {
    const f = await setup();
    const c = await f.ehlo();
    await c.command('MAIL FROM:<>');
    await c.command(`RCPT TO:<${LOCAL}>`);
    expect((await c.command('RSET')).code).toBe(250);
    expect(f.submission.transactions[0]?.state).toBe('aborted');
    expect(f.submission.transactions[0]?.sender).toBe('');
  });

  it('limits recipients per message', async () => {
    const f = await setup({ smtpdRecipientLimit: 2 });
    const c = await f.ehlo();
    await c.command('MAIL FROM:<a@example.com>');
    expect((await c.command(`RCPT TO:<${LOCAL}>`)).code).toBe(250);
    expect((await c.command(`RCPT TO:<root@${TEST_HOST}>`)).code).toBe(250);
    expect((await c.command(`RCPT TO:<abuse@${TEST_HOST}>`)).raw).toBe(
      '452 4.5.3 Error: too many recipients\r\n',
    );
  });

  it('passes a failed open and a refused commit on to the client', async () => {
    const f = await setup();
    const c = await f.ehlo();
    f.submission.options = { openError: new Error('disk on fire') };
    await c.command('MAIL FROM:<a@example.com>');
    expect((await c.command(`RCPT TO:<${LOCAL}>`)).raw).toBe(
      '451 4.3.0 Error: queue file write error\r\n',
    );
    f.submission.options = {};
    expect((await c.command(`RCPT TO:<${LOCAL}>`)).code).toBe(250);
    const { SmtpReply } = await import('../../../src/smtp-reply.js');
    f.submission.options = {
      commitReply: new SmtpReply(550, '5.7.1', 'Error: message content rejected'),
    };
    await c.command('DATA');
    c.send('x\r\n.\r\n');
    expect((await c.reply()).raw).toBe('550 5.7.1 Error: message content rejected\r\n');
    expect(f.submission.transactions[0]?.state).toBe('rejected');
    expect((await c.command('NOOP')).code).toBe(250);
  });
});

describe('SmtpReceiver: relay control', () => {
  it('defers relaying for a client outside mynetworks (default list)', async () => {
    const f = await setup();
    const c = await f.ehlo();
    await c.command('MAIL FROM:<a@example.com>');
    expect((await c.command('RCPT TO:<victim@elsewhere.example>')).raw).toBe(
      '454 4.7.1 <victim@elsewhere.example>: Relay access denied\r\n',
    );
    // Sender-specified routing through a local domain is not an authorised destination.
    expect((await c.command(`RCPT TO:<"victim@elsewhere.example"@${TEST_HOST}>`)).code).toBe(454);
    expect((await c.command(`RCPT TO:<user%elsewhere.example@${TEST_HOST}>`)).code).toBe(454);
    expect((await c.command('RCPT TO:<user@localhost>')).code).toBe(250);
    expect(f.logs.map((e) => e.text)).toContain(
      'NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 454 4.7.1 <victim@elsewhere.example>: Relay access denied; ' +
        'from=<a@example.com> to=<victim@elsewhere.example> proto=ESMTP helo=<client.example.org>',
    );
  });

  it('rejects with 554 under reject_unauth_destination', async () => {
    const f = await setup({
      smtpdRelayRestrictions: ['permit_mynetworks', 'reject_unauth_destination'],
    });
    const c = await f.ehlo();
    await c.command('MAIL FROM:<a@example.com>');
    expect((await c.command('RCPT TO:<victim@elsewhere.example>')).raw).toBe(
      '554 5.7.1 <victim@elsewhere.example>: Relay access denied\r\n',
    );
  });

  it('relays for a client inside mynetworks and for relay domains', async () => {
    const f = await setup({ mynetworks: ['127.0.0.0/8'] });
    const c = await f.ehlo();
    await c.command('MAIL FROM:<a@example.com>');
    expect((await c.command('RCPT TO:<someone@elsewhere.example>')).code).toBe(250);
    await fx?.close();
    const g = await setup({ relayDomains: ['partner.example'] });
    const d = await g.ehlo();
    await d.command('MAIL FROM:<a@example.com>');
    expect((await d.command('RCPT TO:<x@sub.partner.example>')).code).toBe(250);
    expect((await d.command('RCPT TO:<x@other.example>')).code).toBe(454);
  });

  it('refuses to start with an open-relay list', async () => {
    await expect(
      setup({ smtpdRelayRestrictions: ['permit_mynetworks', 'permit'] }),
    ).rejects.toThrow(/open relay/);
  });
});

describe('SmtpReceiver: hostile clients', () => {
  it('hangs up on HTTP and on headers sent as commands', async () => {
    const f = await setup();
    for (const line of [
      'GET / HTTP/1.1',
      'POST /x HTTP/1.0',
      'CONNECT host:25 HTTP/1.1',
      'Subject: hello',
      '\x16\x03\x01\x02',
    ]) {
      const { client } = await f.connect();
      expect((await client.command(line)).raw, line).toBe(
        '221 2.7.0 Error: I can break rules, too. Goodbye.\r\n',
      );
      await client.waitClose();
    }
    expect(
      f.logs.some(
        (e) =>
          e.level === 'warning' &&
          e.text.startsWith('non-SMTP command from unknown[127.0.0.1]: GET /'),
      ),
    ).toBe(true);
  });

  it('answers a corpus of garbage properly and keeps serving', async () => {
    const f = await setup({ smtpdHardErrorLimit: 1000 });
    const c = await f.ehlo();
    const corpus: Buffer[] = [
      Buffer.from(`MAIL FROM:<${'a'.repeat(5000)}@example.com>`),
      Buffer.from(`RCPT TO:<${'b'.repeat(3000)}`),
      Buffer.from('XYZZY plugh'),
      Buffer.from('MAIL\0FROM:<a@example.com>'),
      Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xff]),
      Buffer.from('E\xffHLO', 'latin1'),
      Buffer.from('MAIL FROM:<a@example.com> SIZE=-1'),
      Buffer.from('MAIL FROM:<a@example.com> BODY='),
      Buffer.from('MAIL FROM:<a@example.com'),
      Buffer.from('RCPT TO:<<>>'),
      Buffer.from('DATA DATA DATA'),
      Buffer.from('\t \t'),
      Buffer.from('NOOP\r'),
      Buffer.alloc(70_000, 0x41),
      Buffer.from('QUIT now please'),
    ];
    for (const line of corpus) {
      c.send(Buffer.concat([line, Buffer.from('\r\n')]));
      const r = await c.reply();
      expect(r.code, JSON.stringify(line.toString('latin1').slice(0, 40))).toBeGreaterThanOrEqual(
        200,
      );
      if (r.code === 221) break;
      expect([250, 500, 501, 503, 552, 555]).toContain(r.code);
      expect((await c.command('NOOP')).raw).toBe('250 2.0.0 Ok\r\n');
    }
    expect(f.submission.transactions).toHaveLength(0);
  });

  it('survives random byte lines: every reply well-formed, NOOP still served', async () => {
    const f = await setup({
      smtpdHardErrorLimit: 100_000,
      smtpdJunkCommandLimit: 100_000,
      lineLengthLimit: 600,
    });
    let c: RawSmtpClient = await f.ehlo();
    const lines = fc.sample(
      fc
        .uint8Array({ minLength: 0, maxLength: 900 })
        .map((a) => Buffer.from(a.filter((b) => b !== 0x0a))),
      { numRuns: 300, seed: 42 },
    );
    let hangups = 0;
    for (const line of lines) {
      c.send(Buffer.concat([line, Buffer.from('\r\n')]));
      const r = await c.reply();
      expect(r.raw).toMatch(/^[2-5]\d\d[ -]/);
      if (r.code === 221) {
        expect(r.raw).toBe('221 2.7.0 Error: I can break rules, too. Goodbye.\r\n');
        await c.waitClose();
        hangups++;
        c = await f.ehlo();
        continue;
      }
      expect(r.code).toBeGreaterThanOrEqual(500);
      expect((await c.command('NOOP')).code).toBe(250);
    }
    // Most random lines start with a non-letter, which is a forbidden command.
    expect(hangups).toBeGreaterThan(0);
    expect(f.submission.transactions).toHaveLength(0);
  });

  it('ends the session with 421 at the hard error limit', async () => {
    const f = await setup({ smtpdHardErrorLimit: 3 });
    const { client: c } = await f.connect();
    for (let i = 0; i < 3; i++) expect((await c.command('BOGUS')).code).toBe(500);
    expect((await c.command('NOOP')).raw).toBe(`421 4.7.0 ${TEST_HOST} Error: too many errors\r\n`);
    await c.waitClose();
  });

  it('counts junk commands beyond the junk limit as errors', async () => {
    const f = await setup({ smtpdJunkCommandLimit: 2, smtpdHardErrorLimit: 3 });
    const { client: c } = await f.connect();
    for (let i = 0; i < 6; i++) expect((await c.command('NOOP')).code).toBe(250);
    expect((await c.command('NOOP')).code).toBe(421);
    await c.waitClose();
  });

  it('delays replies once past the soft error limit', async () => {
    // The receiver's clock moves only when the test says: a delay is a timer it sets.
    const clock = new ObservedClock();
    const params = resolveParameters({
      myhostname: TEST_HOST,
      smtpdSoftErrorLimit: 2,
      smtpdErrorSleepTime: '150ms',
    });
    const receiver = new SmtpReceiver({
      params,
      submission: new RecordingSubmission(),
      rewriter: new Rewriter({ params }),
      clock,
    });
    const { port } = await receiver.listen({ host: '127.0.0.1', port: 0 });
    const { client: c } = await RawSmtpClient.greeted(port);
    try {
      // Below the limit the replies come while the clock stands still.
      expect((await c.command('BOGUS')).code).toBe(500);
      expect((await c.command('BOGUS')).code).toBe(500);
      const delay = clock.timerSet((ms) => ms === 150);
      const reply = c.command('NOOP');
      // The session sleeps before it answers: the timer comes first, the reply waits for it.
      const first = await Promise.race([delay.then(() => 'delay'), reply.then(() => 'reply')]);
      expect(first).toBe('delay');
      await clock.advance(150);
      expect((await reply).code).toBe(250);
    } finally {
      c.close();
      await receiver.close();
    }
  });

  it('a successfully queued message clears the error count', async () => {
    const f = await setup({ smtpdHardErrorLimit: 3 });
    const c = await f.ehlo();
    await c.command('BOGUS');
    await c.command('BOGUS');
    await c.command('MAIL FROM:<a@example.com>');
    await c.command(`RCPT TO:<${LOCAL}>`);
    await c.command('DATA');
    c.send('hi\r\n.\r\n');
    expect((await c.reply()).code).toBe(250);
    await c.command('BOGUS');
    await c.command('BOGUS');
    expect((await c.command('NOOP')).code).toBe(250);
  });

  it('times out an idle client with 421', async () => {
    const f = await setup({ smtpdTimeout: '300ms' });
    const c = await f.ehlo();
    const r = await c.reply(3000);
    expect(r.raw).toBe(`421 4.4.2 ${TEST_HOST} Error: timeout exceeded\r\n`);
    await c.waitClose();
    expect(f.logs.some((e) => e.text === 'timeout after EHLO from unknown[127.0.0.1]')).toBe(true);
  });

  it('rejects a command ending in a bare LF under reject, accepts it under normalize', async () => {
    const f = await setup({ smtpdForbidBareNewline: 'reject' });
    const c = await f.ehlo();
    c.send('NOOP\n');
    expect((await c.reply()).raw).toBe(`550 5.5.2 ${TEST_HOST} Error: bare <LF> received\r\n`);
    expect((await c.command('NOOP')).code).toBe(250);
    await fx?.close();
    const g = await setup();
    const d = await g.ehlo();
    d.send('NOOP\n');
    expect((await d.reply()).code).toBe(250);
  });

  it('logs connect and a Postfix-style disconnect summary with printable client strings', async () => {
    const f = await setup();
    const { client: c } = await f.connect();
    await c.command('EHLO evil\x01name');
    await c.command('BOGUS');
    await c.command('QUIT');
    await c.waitClose();
    await vi.waitFor(() =>
      expect(f.logs.map((e) => e.text)).toContain(
        'disconnect from unknown[127.0.0.1] ehlo=1 unknown=0/1 quit=1 commands=2/3',
      ),
    );
    expect(f.logs.map((e) => e.text)).toContain('connect from unknown[127.0.0.1]');
    for (const e of f.logs) expect(e.text).not.toMatch(/[\x00-\x1f]/);
  });
});
