import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Logger } from '../../../src/log.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { SmtpReceiver, type SmtpReceiverOptions } from '../../../src/receive/smtpd-receiver.js';
import { Rewriter } from '../../../src/rewrite/rewriter.js';
import { SmtpReply } from '../../../src/smtp-reply.js';
import type { LogEvent, Resolver } from '../../../src/types.js';
import { RecordingSubmission } from '../../helpers/recording-submission.js';
import { SmtpLineClient } from '../../helpers/smtp-line-client.js';
import { testCertificates } from '../../helpers/tls-cert.js';

const HOST = 'mx.example.test';
const LOCAL = `postmaster@${HOST}`;

interface Fx {
  receiver: SmtpReceiver;
  submission: RecordingSubmission;
  port: number;
  logs: LogEvent[];
  clients: SmtpLineClient[];
}
let fx: Fx | undefined;

const noDns: Resolver = {
  resolveMx: async () => [],
  resolve4: async () => {
    throw Object.assign(new Error('nx'), { code: 'ENOTFOUND' });
  },
  resolve6: async () => [],
  reverse: async () => [],
  resolveTxt: async () => [],
};

async function start(
  overrides: Record<string, unknown> = {},
  options: Partial<SmtpReceiverOptions> = {},
): Promise<Fx> {
  const params = resolveParameters({
    myhostname: HOST,
    localRecipientMaps: '', // every local part is a recipient here
    mynetworks: ['192.0.2.0/24'],
    smtpdErrorSleepTime: 0,
    ...overrides,
  });
  const logs: LogEvent[] = [];
  const submission = new RecordingSubmission();
  const receiver = new SmtpReceiver({
    params,
    submission,
    rewriter: new Rewriter({ params }),
    logger: new Logger([(e) => logs.push(e)]),
    resolver: noDns,
    ...options,
  });
  const { port } = await receiver.listen({ host: '127.0.0.1', port: 0 });
  fx = { receiver, submission, port, logs, clients: [] };
  return fx;
}

async function connect(f: Fx): Promise<SmtpLineClient> {
  const c = await SmtpLineClient.connect(f.port);
  f.clients.push(c);
  expect((await c.reply()).code).toBe(220);
  return c;
}

afterEach(async () => {
  for (const c of fx?.clients ?? []) c.close();
  await fx?.receiver.close();
  fx = undefined;
});

const users = async (u: string, p: string) => u === 'lena' && p === 's3cret';
const tlsOn = () => {
  const { cert, key } = testCertificates();
  return { tls: { cert, key } };
};
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

describe('STARTTLS and AUTH', () => {
  it('offers STARTTLS, not AUTH, in plaintext, and refuses AUTH before STARTTLS', async () => {
    const f = await start(
      { smtpdTlsSecurityLevel: 'may', smtpdSaslAuthEnable: true },
      { ...tlsOn(), authenticator: users },
    );
    const c = await connect(f);
    const ehlo = await c.command('EHLO client.example.org');
    expect(ehlo.lines).toContain('STARTTLS');
    expect(ehlo.lines.some((l) => l.startsWith('AUTH'))).toBe(false);
    expect((await c.command(`AUTH PLAIN ${b64('\0lena\0s3cret')}`)).raw).toBe(
      '503 5.5.1 Error: authentication not enabled\r\n',
    );
  });

  it('authenticates with PLAIN and LOGIN over TLS; ESMTPSA and the login reach the queue', async () => {
    const f = await start(
      { smtpdTlsSecurityLevel: 'may', smtpdSaslAuthEnable: true },
      { ...tlsOn(), authenticator: users },
    );
    const { ca } = testCertificates();
    const c = await connect(f);
    await c.command('EHLO client.example.org');
    expect((await c.command('STARTTLS')).raw).toBe('220 2.0.0 Ready to start TLS\r\n');
    await c.startTls(ca);
    const ehlo = await c.command('EHLO client.example.org');
    expect(ehlo.lines).toContain('AUTH PLAIN LOGIN');
    expect(ehlo.lines).not.toContain('STARTTLS');
    expect((await c.command(`AUTH PLAIN ${b64('\0lena\0wrong')}`)).raw).toBe(
      '535 5.7.8 Error: authentication failed\r\n',
    );
    expect((await c.command('AUTH LOGIN')).raw).toBe('334 VXNlcm5hbWU6\r\n');
    expect((await c.command(b64('lena'))).raw).toBe('334 UGFzc3dvcmQ6\r\n');
    expect((await c.command(b64('s3cret'))).raw).toBe('235 2.7.0 Authentication successful\r\n');
    expect((await c.command('AUTH PLAIN')).code).toBe(503);
    // Relaying is allowed for an authenticated client (permit_sasl_authenticated).
    expect((await c.command('MAIL FROM:<lena@example.org> AUTH=<>')).code).toBe(250);
    expect((await c.command('RCPT TO:<someone@elsewhere.example>')).raw).toBe('250 2.1.5 Ok\r\n');
    expect((await c.command('DATA')).code).toBe(354);
    expect((await c.command('Subject: t\r\n\r\nbody\r\n.')).code).toBe(250);
    const [t] = f.submission.committed;
    expect(t?.source.protocol).toBe('ESMTPSA');
    expect(t?.source.authUser).toBe('lena');
    expect(t?.source.tls?.protocol).toMatch(/^TLSv1\.[23]$/);
  });

  it('a users table works as the authenticator; * aborts; bad base64 is refused', async () => {
    const f = await start(
      { smtpdTlsSecurityLevel: 'may', smtpdSaslAuthEnable: true, smtpdTlsAuthOnly: false },
      {
        ...tlsOn(),
        authenticator: (await import('../../../src/tables/create-table.js')).createTable(
          { lena: 'pw' },
          't',
        ),
      },
    );
    const c = await connect(f);
    await c.command('EHLO x.example');
    expect((await c.command('AUTH PLAIN')).raw).toBe('334 \r\n');
    expect((await c.command('*')).raw).toBe('501 5.7.0 Authentication aborted\r\n');
    expect((await c.command('AUTH PLAIN !!!!')).code).toBe(501);
    expect((await c.command('AUTH CRAM-MD5')).raw).toBe(
      '504 5.5.4 Unsupported authentication mechanism\r\n',
    );
    expect((await c.command(`AUTH PLAIN ${b64('\0lena\0pw')}`)).code).toBe(235);
  });

  it('CRAM-MD5 (RFC 2195), when listed in smtpdSaslMechanisms, checks the digest against the table', async () => {
    const { createHmac } = await import('node:crypto');
    const { createTable } = await import('../../../src/tables/create-table.js');
    const f = await start(
      {
        smtpdTlsSecurityLevel: 'may',
        smtpdSaslAuthEnable: true,
        smtpdTlsAuthOnly: false,
        smtpdSaslMechanisms: ['CRAM-MD5', 'PLAIN'],
      },
      { ...tlsOn(), authenticator: createTable({ lena: 'pw' }, 't') },
    );
    for (const [password, code] of [
      ['wrong', 535],
      ['pw', 235],
    ] as const) {
      const c = await connect(f);
      const ehlo = await c.command('EHLO x.example');
      expect(ehlo.lines).toContain('AUTH CRAM-MD5 PLAIN');
      const challenge = await c.command('AUTH CRAM-MD5');
      expect(challenge.code).toBe(334);
      const text = Buffer.from(challenge.raw.slice(4).trim(), 'base64').toString('utf8');
      expect(text).toMatch(/^<[0-9a-f]+\.\d+@mx\.example\.test>$/);
      const digest = createHmac('md5', password).update(text).digest('hex');
      expect((await c.command(b64(`lena ${digest}`))).code).toBe(code);
    }
    expect(
      () =>
        new SmtpReceiver({
          params: resolveParameters({ smtpdSaslAuthEnable: true, smtpdSaslMechanisms: 'CRAM-MD5' }),
          submission: new RecordingSubmission(),
          rewriter: new Rewriter({ params: resolveParameters({}) }),
          authenticator: users,
        }),
    ).toThrow(/CRAM-MD5 needs the clear passwords/);
  });

  it('discards commands pipelined after STARTTLS (CVE-2011-0411) and resets the session', async () => {
    const f = await start({ smtpdTlsSecurityLevel: 'may', mynetworks: ['127.0.0.0/8'] }, tlsOn());
    const { ca } = testCertificates();
    const c = await connect(f);
    await c.command('EHLO x.example');
    c.send('STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n');
    expect((await c.reply()).code).toBe(220);
    await c.startTls(ca);
    // The injected MAIL did not run: a new MAIL is not "nested", and EHLO is needed again.
    expect((await c.command('MAIL FROM:<a@example.org>')).code).toBe(250);
    expect((await c.command('EHLO x.example')).code).toBe(250);
    expect(f.logs.some((e) => e.text.includes('STARTTLS connection established'))).toBe(true);
  });

  it('requires STARTTLS before MAIL at level encrypt', async () => {
    const f = await start({ smtpdTlsSecurityLevel: 'encrypt' }, tlsOn());
    const c = await connect(f);
    await c.command('EHLO x.example');
    expect((await c.command('MAIL FROM:<a@example.org>')).raw).toBe(
      '530 5.7.0 Must issue a STARTTLS command first\r\n',
    );
  });

  it('serves implicit TLS (wrapper mode)', async () => {
    const f = await start({ smtpdTlsWrappermode: true }, tlsOn());
    const c = await SmtpLineClient.connectTls(f.port, testCertificates().ca);
    f.clients.push(c);
    expect((await c.reply()).code).toBe(220);
    const ehlo = await c.command('EHLO x.example');
    expect(ehlo.lines).not.toContain('STARTTLS');
  });

  it('refuses to build without a certificate or an authenticator', () => {
    const params = resolveParameters({ myhostname: HOST, smtpdTlsSecurityLevel: 'may' });
    const base = {
      params,
      submission: new RecordingSubmission(),
      rewriter: new Rewriter({ params }),
    };
    expect(() => new SmtpReceiver(base)).toThrow(/no certificate/);
    const p2 = resolveParameters({ myhostname: HOST, smtpdSaslAuthEnable: true });
    expect(
      () => new SmtpReceiver({ ...base, params: p2, rewriter: new Rewriter({ params: p2 }) }),
    ).toThrow(/no authenticator/);
  });
});

describe('CHUNKING (BDAT)', () => {
  it('accepts a message in chunks, line-based, and replies with the byte count', async () => {
    const f = await start();
    const c = await connect(f);
    await c.command('EHLO x.example');
    expect((await c.command('MAIL FROM:<a@example.org>')).code).toBe(250);
    expect((await c.command(`RCPT TO:<${LOCAL}>`)).code).toBe(250);
    const part1 = 'Subject: chunks\r\n\r\nline one\nline';
    const part2 = ' two\r\n.\r\nnot the end\r\n';
    c.send(`BDAT ${Buffer.byteLength(part1)}\r\n${part1}`);
    expect((await c.reply()).raw).toBe(`250 2.0.0 Ok: ${Buffer.byteLength(part1)} bytes\r\n`);
    c.send(`BDAT ${Buffer.byteLength(part2)} LAST\r\n${part2}`);
    const r = await c.reply();
    expect(r.raw).toMatch(/^250 2\.0\.0 Ok: \d+ bytes queued as \w+\r\n$/);
    const [t] = f.submission.committed;
    expect(Buffer.concat(t!.chunks).toString()).toBe(
      'Subject: chunks\r\n\r\nline one\r\nline two\r\n.\r\nnot the end\r\n',
    );
    expect((await c.command('NOOP')).code).toBe(250);
  });

  it('consumes the chunk of a refused BDAT and stays in sync; DATA after BDAT is refused', async () => {
    const f = await start();
    const c = await connect(f);
    await c.command('EHLO x.example');
    c.send('BDAT 12\r\nQUIT\r\nQUIT\r\n');
    // Postfix bdat_cmd(), as data_cmd(): outside a mail transaction, "need RCPT command".
    expect((await c.reply()).raw).toBe('503 5.5.1 Error: need RCPT command\r\n');
    expect((await c.command('MAIL FROM:<a@example.org>')).code).toBe(250);
    expect((await c.command(`RCPT TO:<${LOCAL}>`)).code).toBe(250);
    c.send('BDAT 3\r\nabc');
    expect((await c.reply()).code).toBe(250);
    expect((await c.command('DATA')).raw).toBe(
      '503 5.5.1 Error: DATA after BDAT is not allowed\r\n',
    );
    c.send('BDAT 0 LAST\r\n');
    expect((await c.reply()).code).toBe(250);
  });

  it('enforces the size limit on declared and actual sizes', async () => {
    const f = await start({ messageSizeLimit: 1000 });
    const c = await connect(f);
    await c.command('EHLO x.example');
    expect((await c.command('MAIL FROM:<a@example.org> SIZE=1001')).raw).toBe(
      '552 5.3.4 Message size exceeds fixed limit\r\n',
    );
    expect((await c.command('MAIL FROM:<a@example.org> SIZE=10')).code).toBe(250);
    expect((await c.command(`RCPT TO:<${LOCAL}>`)).code).toBe(250);
    c.send(`BDAT 1500 LAST\r\n${'x'.repeat(1500)}`);
    expect((await c.reply()).raw).toBe('552 5.3.4 Error: message file too big\r\n');
    expect(f.submission.committed).toHaveLength(0);
    expect((await c.command('MAIL FROM:<a@example.org>')).code).toBe(250);
    expect((await c.command(`RCPT TO:<${LOCAL}>`)).code).toBe(250);
    expect((await c.command('DATA')).code).toBe(354);
    expect((await c.command(`${'y'.repeat(1500)}\r\n.`)).raw).toBe(
      '552 5.3.4 Error: message file too big\r\n',
    );
  });
});

describe('smtpdForbidUnauthPipelining', () => {
  it('disconnects a client that pipelines after EHLO', async () => {
    const f = await start();
    const c = await connect(f);
    c.send('EHLO x.example\r\nMAIL FROM:<a@example.org>\r\n');
    expect((await c.reply()).raw).toBe('554 5.5.0 Error: SMTP protocol synchronization\r\n');
    await c.waitClose();
    expect(f.logs.some((e) => e.text.startsWith('improper command pipelining after EHLO'))).toBe(
      true,
    );
  });

  it('disconnects a non-ESMTP client that pipelines at all', async () => {
    const f = await start();
    const c = await connect(f);
    expect((await c.command('HELO x.example')).code).toBe(250);
    c.send('MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n');
    expect((await c.reply()).code).toBe(554);
  });

  it('allows RFC 2920 pipelining after EHLO, and reject_unauth_pipelining rejects when it is off', async () => {
    const f = await start({
      smtpdForbidUnauthPipelining: false,
      smtpdDataRestrictions: 'reject_unauth_pipelining',
    });
    const c = await connect(f);
    expect((await c.command('EHLO x.example')).code).toBe(250);
    c.send(`MAIL FROM:<a@example.org>\r\nRCPT TO:<${LOCAL}>\r\nDATA\r\n`);
    expect((await c.reply()).code).toBe(250);
    expect((await c.reply()).code).toBe(250);
    expect((await c.reply()).code).toBe(354);
    // Now DATA followed by input: a violation, noted; the next DATA is rejected.
    expect((await c.command('.')).code).toBe(250);
    c.send(`MAIL FROM:<a@example.org>\r\nRCPT TO:<${LOCAL}>\r\nDATA\r\nearly\r\n`);
    expect((await c.reply()).code).toBe(250);
    expect((await c.reply()).code).toBe(250);
    expect((await c.reply()).raw).toBe(
      '503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining\r\n',
    );
  });
});

describe('access policy', () => {
  it('defers relaying by default (454 4.7.1), rejects with reject_unauth_destination', async () => {
    let f = await start();
    let c = await connect(f);
    await c.command('EHLO x.example');
    await c.command('MAIL FROM:<a@example.org>');
    expect((await c.command('RCPT TO:<b@elsewhere.example>')).raw).toBe(
      '454 4.7.1 <b@elsewhere.example>: Relay access denied\r\n',
    );
    c.close();
    await f.receiver.close();
    f = await start({ smtpdRelayRestrictions: 'permit_mynetworks, reject_unauth_destination' });
    c = await connect(f);
    await c.command('EHLO x.example');
    await c.command('MAIL FROM:<a@example.org>');
    expect((await c.command('RCPT TO:<b@elsewhere.example>')).raw).toBe(
      '554 5.7.1 <b@elsewhere.example>: Relay access denied\r\n',
    );
    expect((await c.command(`RCPT TO:<${LOCAL}>`)).code).toBe(250);
  });

  it('refuses to start as an open relay, naming both lists', () => {
    const params = resolveParameters({
      myhostname: HOST,
      localRecipientMaps: '', // every local part is a recipient here
      smtpdRelayRestrictions: ['permit_mynetworks'],
      smtpdRecipientRestrictions: ['permit'],
    });
    expect(
      () =>
        new SmtpReceiver({
          params,
          submission: new RecordingSubmission(),
          rewriter: new Rewriter({ params }),
        }),
    ).toThrow(/open relay/);
    const ok = resolveParameters({
      myhostname: HOST,
      localRecipientMaps: '', // every local part is a recipient here
      smtpdRelayRestrictions: ['permit_mynetworks'],
      smtpdRecipientRestrictions: ['reject_unauth_destination'],
    });
    expect(
      () =>
        new SmtpReceiver({
          params: ok,
          submission: new RecordingSubmission(),
          rewriter: new Rewriter({ params: ok }),
        }),
    ).not.toThrow();
  });

  it('check_sender_access with an inline table: REJECT, HOLD and PREPEND', async () => {
    const f = await start({
      smtpdSenderRestrictions:
        'check_sender_access inline:{ {spam.example=REJECT go away}, hold.example=HOLD, {tag.example=PREPEND X-Tag: yes} }',
    });
    const c = await connect(f);
    await c.command('EHLO x.example');
    await c.command('MAIL FROM:<a@spam.example>');
    expect((await c.command(`RCPT TO:<${LOCAL}>`)).raw).toBe(
      '554 5.7.1 <a@spam.example>: Sender address rejected: go away\r\n',
    );
    await c.command('RSET');
    await c.command('MAIL FROM:<a@hold.example>');
    expect((await c.command(`RCPT TO:<${LOCAL}>`)).code).toBe(250);
    await c.command('DATA');
    await c.command('x\r\n.');
    await c.command('MAIL FROM:<a@tag.example>');
    expect((await c.command(`RCPT TO:<${LOCAL}>`)).code).toBe(250);
    await c.command('DATA');
    await c.command('x\r\n.');
    const [held, tagged] = f.submission.committed;
    expect(held?.actions).toEqual([{ type: 'hold' }]);
    expect(tagged?.actions).toEqual([{ type: 'prepend', header: 'X-Tag: yes' }]);
  });

  it('runs async functions as restrictions at every stage', async () => {
    const seen: string[] = [];
    const f = await start(
      {},
      {
        restrictions: {
          client: [async (r) => void seen.push(`client:${r.protocolState}`)],
          recipient: [
            async (r) =>
              r.recipient?.startsWith('blocked')
                ? new SmtpReply(550, '5.7.1', 'no thanks')
                : undefined,
            'reject_unauth_destination',
          ],
          'end-of-data': [
            async (r) => (r.size !== undefined && r.size > 10 ? 'REJECT too chatty' : 'DUNNO'),
          ],
        },
      },
    );
    const c = await connect(f);
    await c.command('EHLO x.example');
    await c.command('MAIL FROM:<a@example.org>');
    expect((await c.command(`RCPT TO:<blocked@${HOST}>`)).raw).toBe('550 5.7.1 no thanks\r\n');
    expect((await c.command(`RCPT TO:<${LOCAL}>`)).code).toBe(250);
    await c.command('DATA');
    expect((await c.command('this is more than ten bytes\r\n.')).raw).toBe(
      '554 5.7.1 <END-OF-MESSAGE>: End-of-data rejected: too chatty\r\n',
    );
    expect(seen).toEqual(['client:RCPT', 'client:RCPT']);
  });

  it('asks a policy server (Postfix policy delegation protocol)', async () => {
    const requests: string[] = [];
    const server = net.createServer((s) => {
      let buf = '';
      s.on('data', (d) => {
        buf += d.toString();
        while (buf.includes('\n\n')) {
          const i = buf.indexOf('\n\n');
          const req = buf.slice(0, i);
          buf = buf.slice(i + 2);
          requests.push(req);
          const rcpt = /recipient=(.*)/.exec(req)?.[1] ?? '';
          s.write(
            rcpt.startsWith('greylist')
              ? 'action=DEFER_IF_PERMIT Greylisted\n\n'
              : 'action=DUNNO\n\n',
          );
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const f = await start({
        smtpdRecipientRestrictions: `reject_unauth_destination, check_policy_service inet:127.0.0.1:${port}`,
      });
      const c = await connect(f);
      await c.command('EHLO x.example');
      await c.command('MAIL FROM:<a@example.org>');
      expect((await c.command(`RCPT TO:<greylist@${HOST}>`)).raw).toBe(
        `450 4.7.1 <greylist@${HOST}>: Recipient address rejected: Greylisted\r\n`,
      );
      expect((await c.command(`RCPT TO:<${LOCAL}>`)).code).toBe(250);
      expect(requests[0]).toContain('request=smtpd_access_policy');
      expect(requests[0]).toContain('protocol_state=RCPT');
      expect(requests[0]).toContain('client_address=127.0.0.1');
      expect(requests[0]).toContain('helo_name=x.example');
    } finally {
      server.close();
    }
  });

  it('rejects a client listed in a DNS blocklist through the injected resolver', async () => {
    const resolver: Resolver = {
      ...noDns,
      resolve4: async (name) => {
        if (name === '1.0.0.127.zen.example') return ['127.0.0.2'];
        throw Object.assign(new Error('nx'), { code: 'ENOTFOUND' });
      },
      resolveTxt: async () => [['listed for testing']],
    };
    const f = await start(
      { smtpdClientRestrictions: 'reject_rbl_client zen.example' },
      { resolver },
    );
    const c = await connect(f);
    await c.command('EHLO x.example');
    await c.command('MAIL FROM:<a@example.org>');
    expect((await c.command(`RCPT TO:<${LOCAL}>`)).raw).toBe(
      '554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.example; listed for testing\r\n',
    );
  });

  it('reject_non_fqdn_helo_hostname and reject_unknown_sender_domain', async () => {
    const f = await start({
      smtpdHeloRestrictions: 'reject_non_fqdn_helo_hostname',
      smtpdSenderRestrictions: 'reject_unknown_sender_domain',
    });
    const c = await connect(f);
    await c.command('EHLO shorty');
    await c.command('MAIL FROM:<a@nowhere.example>');
    expect((await c.command(`RCPT TO:<${LOCAL}>`)).raw).toBe(
      '504 5.5.2 <shorty>: Helo command rejected: need fully-qualified hostname\r\n',
    );
    await c.command('EHLO host.example.org');
    await c.command('MAIL FROM:<a@nowhere.example>');
    expect((await c.command(`RCPT TO:<${LOCAL}>`)).raw).toBe(
      '450 4.1.8 <a@nowhere.example>: Sender address rejected: Domain not found\r\n',
    );
  });
});

describe('per-client limits (anvil)', () => {
  it('limits concurrent connections per client and message rate', async () => {
    const f = await start({ smtpdClientConnectionCountLimit: 2, smtpdClientMessageRateLimit: 1 });
    const a = await connect(f);
    const b = await connect(f);
    const c = await SmtpLineClient.connect(f.port);
    f.clients.push(c);
    expect((await c.reply()).raw).toBe(
      `421 4.7.0 ${HOST} Error: too many connections from 127.0.0.1\r\n`,
    );
    await a.command('EHLO x.example');
    expect((await a.command('MAIL FROM:<a@example.org>')).code).toBe(250);
    await a.command('RSET');
    expect((await a.command('MAIL FROM:<a@example.org>')).raw).toBe(
      '450 4.7.1 Error: too much mail from 127.0.0.1\r\n',
    );
    b.close();
  });

  it('exempts smtpdClientEventLimitExceptions', async () => {
    const f = await start({
      smtpdClientConnectionCountLimit: 1,
      smtpdClientEventLimitExceptions: ['127.0.0.0/8'],
    });
    await connect(f);
    await connect(f);
  });
});

describe('PROXY protocol and XCLIENT', () => {
  it('takes the client address from a PROXY v1 header', async () => {
    const f = await start({
      smtpdUpstreamProxyProtocol: 'haproxy',
      mynetworks: ['198.51.100.0/24'],
    });
    const c = await SmtpLineClient.connect(f.port);
    f.clients.push(c);
    c.send('PROXY TCP4 198.51.100.7 192.0.2.1 40000 25\r\n');
    expect((await c.reply()).code).toBe(220);
    await c.command('EHLO x.example');
    await c.command('MAIL FROM:<a@example.org>');
    // 198.51.100.7 is in mynetworks: relaying is allowed.
    expect((await c.command('RCPT TO:<b@elsewhere.example>')).code).toBe(250);
    expect(f.logs.some((e) => e.text === 'connect from unknown[198.51.100.7]')).toBe(true);
  });

  it('takes the client address from a PROXY v2 header and drops a bad one', async () => {
    const f = await start({ smtpdUpstreamProxyProtocol: 'haproxy' });
    const c = await SmtpLineClient.connect(f.port);
    f.clients.push(c);
    const header = Buffer.concat([
      Buffer.from([
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0, 12,
      ]),
      Buffer.from([203, 0, 113, 9, 192, 0, 2, 1, 0x9c, 0x40, 0, 25]),
    ]);
    c.send(header);
    expect((await c.reply()).code).toBe(220);
    expect(f.logs.some((e) => e.text === 'connect from unknown[203.0.113.9]')).toBe(true);
    const bad = await SmtpLineClient.connect(f.port);
    f.clients.push(bad);
    bad.send('GET / HTTP/1.0\r\n\r\n');
    await bad.waitClose();
    expect(bad.received).toBe('');
  });

  it('XCLIENT from an authorised host replaces the client; refused from others', async () => {
    let f = await start({ smtpdAuthorizedXclientHosts: ['127.0.0.1'] });
    let c = await connect(f);
    const ehlo = await c.command('EHLO proxy.example');
    expect(ehlo.lines.some((l) => l.startsWith('XCLIENT'))).toBe(true);
    expect((await c.command('XCLIENT ADDR=192.0.2.10 NAME=relay.example.org')).code).toBe(220);
    await c.command('EHLO x.example');
    await c.command('MAIL FROM:<a@example.org>');
    expect((await c.command('RCPT TO:<b@elsewhere.example>')).code).toBe(250);
    c.close();
    await f.receiver.close();
    f = await start();
    c = await connect(f);
    await c.command('EHLO x.example');
    expect((await c.command('XCLIENT ADDR=192.0.2.10')).raw).toBe(
      '550 5.7.0 Error: insufficient authorization\r\n',
    );
  });
});
