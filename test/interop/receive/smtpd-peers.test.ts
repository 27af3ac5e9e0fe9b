import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeliveryAgent, DeliveryRequest } from '../../../src/deliver/types.js';
import { Mta } from '../../../src/mta/mta.js';
import { SmtpReply } from '../../../src/smtp-reply.js';
import { SmtpLineClient } from '../../helpers/smtp-line-client.js';
import { testCertificates } from '../../helpers/tls-cert.js';

const run = promisify(execFile);

interface Captured {
  readonly request: DeliveryRequest;
  readonly content: string;
}

// Real peers against a real Mta (memory queue); an agent records what was queued.
describe('SmtpReceiver with real SMTP clients', () => {
  let mta: Mta;
  const captured: Captured[] = [];
  let count = 0;
  let plainPort = 0;
  let cramPort = 0;
  let submissionPort = 0;

  const capture: DeliveryAgent = {
    async deliver(request, reporter) {
      count++;
      let content = '';
      if (request.size < 100_000) {
        for await (const chunk of request.openContent())
          content += (chunk as Buffer).toString('utf8');
        captured.push({ request, content });
      }
      for (const r of request.recipients)
        reporter.recipient(r.id, {
          status: 'sent',
          reply: new SmtpReply(250, '2.0.0', 'captured'),
          relay: 'capture',
        });
    },
  };

  const waitFor = async (pred: () => boolean, ms = 60_000): Promise<void> => {
    const end = Date.now() + ms;
    while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  };
  const find = (subject: string): Captured | undefined =>
    captured.find((c) => c.content.includes(subject));

  beforeAll(async () => {
    const { cert, key } = testCertificates();
    mta = new Mta({
      myhostname: 'mx.example.test',
      localRecipientMaps: '', // every local part is a recipient here
      queueStore: { type: 'memory' },
      defaultTransport: 'capture',
      localTransport: 'capture',
      agents: { capture },
      smtpd: [
        { listen: '127.0.0.1:0' },
        {
          listen: '127.0.0.1:0',
          smtpdTlsSecurityLevel: 'may',
          smtpdSaslAuthEnable: true,
          smtpdRelayRestrictions: ['permit_sasl_authenticated', 'reject'],
          tls: { cert, key },
          authenticator: async (u: string, p: string) => u === 'lena' && p === 's3cret',
        },
        {
          listen: '127.0.0.1:0',
          smtpdTlsSecurityLevel: 'none',
          smtpdTlsAuthOnly: false,
          smtpdSaslAuthEnable: true,
          smtpdSaslMechanisms: ['CRAM-MD5', 'PLAIN', 'LOGIN'],
          smtpdRelayRestrictions: ['permit_sasl_authenticated', 'reject'],
          authenticator: { lena: 's3cret' },
        },
      ],
    });
    await mta.start();
    plainPort = mta.listeners[0]!.port;
    submissionPort = mta.listeners[1]!.port;
    cramPort = mta.listeners[2]!.port;
  });

  afterAll(async () => {
    await mta?.stop();
  });

  it('smtp-source: 20 sessions, 10000 messages of 4 KB, every one queued', async () => {
    const before = count;
    const { stderr } = await run(
      'smtp-source',
      [
        '-s',
        '20',
        '-m',
        '10000',
        '-l',
        '4096',
        '-f',
        'load@client.example',
        '-t',
        'sink@mx.example.test',
        `127.0.0.1:${plainPort}`,
      ],
      { timeout: 170_000 },
    );
    expect(stderr).toBe('');
    await waitFor(() => count - before >= 10000, 120_000);
    expect(count - before).toBe(10000);
  }, 300_000);

  it('swaks --pipeline', async () => {
    const { stdout } = await run('swaks', [
      '--server',
      `127.0.0.1:${plainPort}`,
      '--from',
      'swaks@client.example',
      '--to',
      'dave@mx.example.test',
      '--pipeline',
      '--header',
      'Subject: swaks pipeline',
    ]);
    expect(stdout).toMatch(/250 2\.0\.0 Ok: queued as/);
    await waitFor(() => find('swaks pipeline') !== undefined);
    const m = find('swaks pipeline');
    expect(m?.request.sender).toBe('swaks@client.example');
    expect(m?.request.recipients.map((r) => r.address)).toEqual(['dave@mx.example.test']);
  });

  it('swaks with STARTTLS and AUTH PLAIN relays for the authenticated user', async () => {
    const { stdout } = await run('swaks', [
      '--server',
      `127.0.0.1:${submissionPort}`,
      '--from',
      'lena@client.example',
      '--to',
      'friend@far.example',
      '--tls',
      '--auth',
      'PLAIN',
      '--auth-user',
      'lena',
      '--auth-password',
      's3cret',
      '--header',
      'Subject: swaks tls auth',
    ]);
    expect(stdout).toMatch(/235 2\.7\.0 Authentication successful/);
    await waitFor(() => find('swaks tls auth') !== undefined);
    const m = find('swaks tls auth');
    expect(m?.request.source.protocol).toBe('ESMTPSA');
    expect(m?.request.source.authUser).toBe('lena');
    expect(m?.request.recipients.map((r) => r.address)).toEqual(['friend@far.example']);
    // Without AUTH the same listener refuses to relay.
    const refused = await run('swaks', [
      '--server',
      `127.0.0.1:${submissionPort}`,
      '--to',
      'friend@far.example',
      '--tls',
    ]).then(
      () => '',
      (err: { stdout?: string }) => err.stdout ?? '',
    );
    expect(refused).toMatch(
      /554 5\.7\.1 <friend@far\.example>: Recipient address rejected: Access denied/,
    );
  });

  it('BDAT from a raw client (swaks has no CHUNKING support)', async () => {
    const c = await SmtpLineClient.connect(plainPort);
    expect((await c.reply()).code).toBe(220);
    expect((await c.command('EHLO raw.example')).lines).toContain('CHUNKING');
    expect((await c.command('MAIL FROM:<raw@client.example>')).code).toBe(250);
    expect((await c.command('RCPT TO:<bob@mx.example.test>')).code).toBe(250);
    const a = 'Subject: bdat interop\r\n\r\nfirst ';
    const b = 'second\r\n';
    c.send(`BDAT ${a.length}\r\n${a}BDAT ${b.length} LAST\r\n${b}`);
    expect((await c.reply()).code).toBe(250);
    expect((await c.reply()).raw).toMatch(/^250 2\.0\.0 Ok: \d+ bytes queued as \w+/);
    c.close();
    await waitFor(() => find('bdat interop') !== undefined);
    expect(find('bdat interop')?.content).toMatch(/\r\n\r\nfirst second\r\n$/);
  });

  it('Python smtplib: starttls, login and an SMTPUTF8 message', async () => {
    const { ca, dir } = testCertificates();
    expect(ca).toContain('CERTIFICATE');
    const script = `
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=${JSON.stringify(join(dir, 'ca.pem'))})
s = smtplib.SMTP('127.0.0.1', ${submissionPort}, local_hostname='py.example')
s.ehlo(); s.starttls(context=ctx, server_hostname='mx.example.test') if False else s.starttls(context=ctx)
s.ehlo(); s.login('lena', 's3cret')
msg = 'Subject: python utf8\\r\\n\\r\\nhej d\\u00e5\\r\\n'.encode('utf-8')
s.sendmail('l\\u00e9na@client.example', ['fr\\u00fcnd@far.example'], msg, mail_options=['SMTPUTF8', 'BODY=8BITMIME'])
s.quit()
`;
    await run('python3', ['-c', script], { timeout: 30_000 });
    await waitFor(() => find('python utf8') !== undefined);
    const m = find('python utf8');
    expect(m?.request.smtputf8).toBe(true);
    expect(m?.request.sender).toBe('léna@client.example');
    expect(m?.request.recipients.map((r) => r.address)).toEqual(['fründ@far.example']);
    expect(m?.request.source.protocol).toBe('UTF8SMTPSA');
  });

  it('Python smtplib logs in with CRAM-MD5 when it is offered', async () => {
    const script = `
import smtplib
s = smtplib.SMTP('127.0.0.1', ${cramPort}, local_hostname='py.example')
s.ehlo()
assert s.esmtp_features['auth'].split()[0] == 'CRAM-MD5', s.esmtp_features['auth']
code, _ = s.login('lena', 's3cret')
assert code == 235, code
s.sendmail('lena@client.example', ['cram@far.example'], b'Subject: python cram\\r\\n\\r\\nhi\\r\\n')
s.quit()
`;
    await run('python3', ['-c', script], { timeout: 30_000 });
    await waitFor(() => find('python cram') !== undefined);
    expect(find('python cram')?.request.source.protocol).toBe('ESMTPA');
    expect(find('python cram')?.request.source.authUser).toBe('lena');
  });

  it('nodemailer with DSN options', async () => {
    const t = nodemailer.createTransport({
      host: '127.0.0.1',
      port: plainPort,
      secure: false,
      ignoreTLS: true,
    });
    await t.sendMail({
      from: 'nm@client.example',
      to: 'carol@mx.example.test',
      subject: 'nodemailer dsn',
      text: 'hello',
      dsn: {
        id: 'env-42',
        return: 'headers',
        notify: ['success', 'failure'],
        recipient: 'nm@client.example',
      },
    });
    t.close();
    await waitFor(() => find('nodemailer dsn') !== undefined);
    const m = find('nodemailer dsn');
    expect(m?.request.envid).toBe('env-42');
    expect(m?.request.ret).toBe('HDRS');
    expect(m?.request.recipients[0]?.notify).toEqual(['SUCCESS', 'FAILURE']);
  });
});
