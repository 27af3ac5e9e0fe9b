import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import { SmtpDeliveryAgent } from '../../../src/deliver/smtp/smtp-agent.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { testCertificates } from '../../helpers/tls-cert.js';
import { Collector, makeRequest } from './request.js';

interface Got {
  session: SMTPServerSession;
  body: Buffer;
}

const servers: SMTPServer[] = [];
const agents: SmtpDeliveryAgent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.close();
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});

async function start(options: Partial<SMTPServerOptions>): Promise<{ port: number; got: Got[] }> {
  const certs = testCertificates();
  const got: Got[] = [];
  const server = new SMTPServer({
    key: certs.key,
    cert: certs.cert,
    authMethods: ['PLAIN', 'LOGIN'],
    onAuth(auth, _session, cb) {
      if (auth.username === 'relayuser' && auth.password === 's3cr:et')
        cb(null, { user: 'relayuser' });
      else cb(new Error('Invalid username or password'));
    },
    onData(stream, session, cb) {
      const parts: Buffer[] = [];
      stream.on('data', (c: Buffer) => parts.push(c));
      stream.on('end', () => {
        got.push({
          session: structuredClone({ ...session, transaction: 0 }) as SMTPServerSession,
          body: Buffer.concat(parts),
        });
        cb();
      });
    },
    logger: false,
    hideDSN: false,
    ...options,
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.server.address() as { port: number }).port, got };
}

function agent(extra: Record<string, unknown>): SmtpDeliveryAgent {
  const certs = testCertificates();
  const caFile = join(certs.dir, 'ca.pem');
  writeFileSync(caFile, certs.ca);
  const a = new SmtpDeliveryAgent({
    params: resolveParameters({ myhostname: 'postern.test', smtpTlsCAfile: caFile, ...extra }),
  });
  agents.push(a);
  return a;
}

describe('SmtpDeliveryAgent with smtp-server: STARTTLS, AUTH, DSN, 8BITMIME', () => {
  it('verifies the certificate, authenticates over TLS and passes DSN on', async () => {
    const { port, got } = await start({ authOptional: false });
    const a = agent({
      smtpTlsSecurityLevel: 'verify',
      smtpSaslAuthEnable: true,
      smtpSaslPasswordMaps: { [`[localhost]:${port}`]: 'relayuser:s3cr:et' },
    });
    const c = new Collector();
    await a.deliver(
      {
        ...makeRequest({
          nexthop: `[localhost]:${port}`,
          recipients: ['x@example.net'],
          notify: ['SUCCESS'],
        }),
        envid: 'ENV+1',
        ret: 'HDRS',
      },
      c,
    );
    expect(c.results.get(0)?.status).toBe('sent');
    expect(got).toHaveLength(1);
    const s = got[0]!.session;
    expect(s.user).toBe('relayuser');
    expect(s.secure).toBe(true);
    expect(s.envelope.rcptTo[0]?.dsn?.notify).toEqual(['SUCCESS']);
    expect(s.envelope.dsn?.ret).toBe('HDRS');
    expect(s.envelope.dsn?.envid).toBe('ENV+1');
  });

  it('never sends credentials without TLS (noplaintext), and defers', async () => {
    const { port, got } = await start({
      hideSTARTTLS: true,
      allowInsecureAuth: true,
      authOptional: false,
    });
    const a = agent({
      smtpTlsSecurityLevel: 'may',
      smtpSaslAuthEnable: true,
      smtpSaslPasswordMaps: { [`[127.0.0.1]:${port}`]: 'relayuser:s3cr:et' },
    });
    const c = new Collector();
    await a.deliver(
      makeRequest({ nexthop: `[127.0.0.1]:${port}`, recipients: ['x@example.net'] }),
      c,
    );
    expect(c.results.get(0)?.status).toBe('deferred');
    expect(c.results.get(0)?.reply.text).toMatch(/SASL authentication failed.*without TLS/);
    expect(got).toHaveLength(0);
  });

  it('defers at level encrypt when STARTTLS is not offered (4.7.4)', async () => {
    const { port } = await start({ hideSTARTTLS: true, authOptional: true });
    const c = new Collector();
    await agent({ smtpTlsSecurityLevel: 'encrypt' }).deliver(
      makeRequest({ nexthop: `[127.0.0.1]:${port}`, recipients: ['x@example.net'] }),
      c,
    );
    expect(c.results.get(0)?.reply.toString()).toMatch(
      /^451 4\.7\.4 TLS is required, but was not offered/,
    );
  });

  it('fails verification against a wrong match name and succeeds at secure with the right one', async () => {
    const { port, got } = await start({ authOptional: true });
    const bad = new Collector();
    await agent({
      smtpTlsPolicyMaps: { [`[localhost]:${port}`]: 'verify match=wrong.example' },
    }).deliver(makeRequest({ nexthop: `[localhost]:${port}`, recipients: ['x@example.net'] }), bad);
    expect(bad.results.get(0)?.reply.toString()).toMatch(
      /^451 4\.7\.5 Server certificate not verified/,
    );
    const good = new Collector();
    await agent({
      smtpTlsPolicyMaps: { [`[localhost]:${port}`]: 'secure match=mx.example.test' },
    }).deliver(
      makeRequest({ nexthop: `[localhost]:${port}`, recipients: ['x@example.net'] }),
      good,
    );
    expect(good.results.get(0)?.status).toBe('sent');
    expect(got).toHaveLength(1);
  });

  it('downgrades 8-bit MIME to quoted-printable for a server without 8BITMIME', async () => {
    const { port, got } = await start({
      hide8BITMIME: true,
      authOptional: true,
      hideSTARTTLS: true,
    });
    const text = 'Größere Grüße — ça va? ✓';
    const content = Buffer.from(
      `From: a@example.org\r\nSubject: 8bit\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${text}\r\n`,
    );
    const c = new Collector();
    await agent({}).deliver(
      makeRequest({
        nexthop: `[127.0.0.1]:${port}`,
        recipients: ['x@example.net'],
        content,
        eightBit: true,
      }),
      c,
    );
    expect(c.results.get(0)?.status).toBe('sent');
    const body = got[0]!.body;
    expect(body.some((b) => b > 0x7f)).toBe(false);
    const s = body.toString('latin1');
    expect(s).toMatch(/Content-Transfer-Encoding: quoted-printable/);
    const qp = s.split(/\r\n\r\n/)[1]!;
    const decoded = Buffer.from(
      qp
        .replace(/=\r\n/g, '')
        .replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16))),
      'latin1',
    ).toString('utf8');
    expect(decoded.trimEnd()).toBe(text);
  });
});
