import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Logger } from '../../../src/log.js';
import { Mta } from '../../../src/mta/mta.js';
import { type PostgresServer, startPostgres } from '../../helpers/postgres-server.js';
import { SmtpDialogue } from '../../helpers/smtp-dialogue.js';
import { testCertificates } from '../../helpers/tls-cert.js';

describe('metrics of a running Mta: rejects, failed AUTH, TLS sessions, queue age, /healthz', () => {
  let dir: string;
  let mta: Mta;
  let base: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-opsmetrics-'));
    const certs = testCertificates();
    await writeFile(join(dir, 'cert.pem'), certs.cert);
    await writeFile(join(dir, 'key.pem'), certs.key);
    mta = new Mta(
      {
        myhostname: 'mx.example.test',
        mynetworks: ['192.0.2.0/24'],
        smtpdRelayRestrictions: ['permit_sasl_authenticated', 'reject_unauth_destination'],
        smtpdTlsSecurityLevel: 'may',
        smtpdTlsCertFile: join(dir, 'cert.pem'),
        smtpdTlsKeyFile: join(dir, 'key.pem'),
        smtpd: [
          {
            listen: '127.0.0.1:0',
            smtpdSaslAuthEnable: true,
            smtpdTlsAuthOnly: false,
            authenticator: { bob: 'right' },
          },
        ],
        // Mail for slow.example waits in the queue: nothing answers there.
        transportMaps: { 'slow.example': 'smtp:[127.0.0.1]:9' },
        relayDomains: ['slow.example'],
        queueDirectory: join(dir, 'queue'),
        mailSpoolDirectory: join(dir, 'mail/'),
        metrics: { listen: '127.0.0.1:0' },
      },
      { logger: new Logger() },
    );
    await mta.start();
    base = `http://127.0.0.1:${mta.metrics.endpoint!.port}`;
  });

  afterAll(async () => {
    await mta.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('counts what clients did, and ages the queue', async () => {
    const port = mta.listeners[0]!.port;
    const c = await SmtpDialogue.open(port);
    await c.read();
    await c.expect('EHLO client.example', 250);
    for (const pass of ['wrong', 'guess']) {
      const token = Buffer.from(`\0bob\0${pass}`).toString('base64');
      expect((await c.command(`AUTH PLAIN ${token}`)).code).toBe(535);
    }
    await c.expect('MAIL FROM:<a@client.example>', 250);
    expect((await c.command('RCPT TO:<x@elsewhere.example>')).code).toBe(554);
    await c.expect('QUIT', 221);

    const tls = nodemailer.createTransport({
      host: '127.0.0.1',
      port,
      requireTLS: true,
      tls: { ca: testCertificates().ca, servername: 'mx.example.test' },
    });
    await tls.sendMail({ from: 'a@client.example', to: 'w@slow.example', subject: 'x', text: 'x' });

    const deadline = Date.now() + 20_000;
    let body = '';
    while (Date.now() < deadline) {
      body = await (await fetch(`${base}/metrics`)).text();
      // The deferral is logged, then the message is released to the deferred queue.
      if (/^postern_queue_messages\{queue="deferred"\} 1$/m.test(body)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(body).toContain(
      'postern_rejects_total{service="smtpd",stage="RCPT",reason="relay_denied"} 1\n',
    );
    expect(body).toContain('postern_smtpd_sasl_failures_total{mechanism="PLAIN"} 2\n');
    expect(body).toMatch(/^postern_smtpd_tls_sessions_total\{protocol="TLSv1\.[23]"\} 1$/m);
    const age = Number(/^postern_queue_oldest_message_age_seconds (\S+)$/m.exec(body)?.[1]);
    expect(age).toBeGreaterThanOrEqual(0);
    expect(body).toContain('postern_deliveries_total{transport="smtp",status="deferred"} 1\n');
  });

  it('/healthz answers 200 while the Mta runs', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('mta: ok\nqueue: ok\n');
  });
});

describe('/healthz with a PostgreSQL queue', () => {
  let pg: PostgresServer;
  let mta: Mta;

  beforeAll(async () => {
    pg = await startPostgres();
    mta = new Mta(
      {
        myhostname: 'mx.example.test',
        smtpd: [{ listen: '127.0.0.1:0' }],
        queueStore: { type: 'postgres', url: pg.url },
        metrics: { listen: '127.0.0.1:0' },
      },
      { logger: new Logger() },
    );
    await mta.start();
  });

  afterAll(async () => {
    await mta.stop().catch(() => undefined);
    await pg.stop();
  });

  it('answers 503 and says why when the database goes away', async () => {
    const url = `http://127.0.0.1:${mta.metrics.endpoint!.port}/healthz`;
    expect((await fetch(url)).status).toBe(200);
    await pg.stop();
    const res = await fetch(url);
    expect(res.status).toBe(503);
    const text = await res.text();
    expect(text).toMatch(/^mta: ok\nqueue: \S.*\n$/);
    expect(text).not.toMatch(/queue: ok/);
  });
});
