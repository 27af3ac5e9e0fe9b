import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { Logger } from '../../src/log.js';
import { Mta } from '../../src/mta/mta.js';
import type { MtaConfig } from '../../src/mta/mta-config.js';
import type { LogEvent } from '../../src/types.js';
import { SmtpDialogue } from '../helpers/smtp-dialogue.js';

/** A self-signed certificate whose subject CN is `cn`. */
function certificate(dir: string, cn: string): { cert: string; key: string } {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${cn}`,
      '-keyout',
      `${cn}.key`,
      '-out',
      `${cn}.pem`,
    ],
    { cwd: dir, stdio: 'pipe' },
  );
  return { cert: join(dir, `${cn}.pem`), key: join(dir, `${cn}.key`) };
}

/** The CN of the certificate a STARTTLS handshake on `port` presents. */
async function startTlsSubject(port: number): Promise<string> {
  const c = await SmtpDialogue.open(port);
  await c.read();
  await c.expect('EHLO client.example', 250);
  await c.expect('STARTTLS', 220);
  const socket = c.socket;
  socket.removeAllListeners('data');
  const secure = tlsConnect({ socket, rejectUnauthorized: false });
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', () => resolve());
    secure.once('error', reject);
  });
  const cn = secure.getPeerCertificate().subject.CN;
  // A polite end: the server logs the disconnect and the session is over.
  secure.setEncoding('latin1');
  let said = '';
  await new Promise<void>((resolve) => {
    secure.on('data', (d: string) => {
      said += d;
      if (/^221 /m.test(said)) resolve();
    });
    secure.write('QUIT\r\n');
  });
  secure.end();
  return String(cn);
}

/** Whether something accepts TCP connections on `port`. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('Mta.reload(): postfix reload for a running Mta', () => {
  let dir: string;
  let mta: Mta;
  const events: LogEvent[] = [];
  let config: Record<string, unknown>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-reload-'));
    const first = certificate(dir, 'first');
    config = {
      myhostname: 'mx.example.test',
      // postmaster is no account here: every local part is accepted.
      localRecipientMaps: '',
      relayhost: '',
      smtpdBanner: 'mx.example.test ESMTP one',
      smtpdTlsSecurityLevel: 'may',
      smtpdTlsCertFile: first.cert,
      smtpdTlsKeyFile: first.key,
      smtpd: [{ listen: '127.0.0.1:0' }],
      queueDirectory: join(dir, 'queue'),
      mailSpoolDirectory: join(dir, 'mail/'),
    };
    mta = new Mta(config as MtaConfig, { logger: new Logger([(e) => events.push(e)]) });
    await mta.start();
  });

  afterAll(async () => {
    await mta.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('applies smtpd parameters to new connections on the same socket; open sessions finish as they were', async () => {
    const port = mta.listeners[0]!.port;
    const old = await SmtpDialogue.open(port);
    expect((await old.read()).text).toBe('mx.example.test ESMTP one');
    await old.expect('EHLO client.example', 250);
    await old.expect('MAIL FROM:<a@client.example>', 250);

    config = {
      ...config,
      smtpdBanner: 'mx.example.test ESMTP two',
      relayhost: '[smarthost.example]',
    };
    await mta.reload(config as MtaConfig);
    expect(mta.listeners[0]!.port).toBe(port);
    const fresh = await SmtpDialogue.open(port);
    expect((await fresh.read()).text).toBe('mx.example.test ESMTP two');
    await fresh.expect('QUIT', 221);

    // The session opened before the reload finishes its transaction.
    await old.expect('RCPT TO:<postmaster@mx.example.test>', 250);
    await old.expect('DATA', 354);
    const queued = await old.command('Subject: before the reload\r\n\r\nhello\r\n.');
    expect(queued.text).toMatch(/Ok: queued as/);
    await old.expect('QUIT', 221);

    // relayhost is the queue manager's: named, not applied.
    expect(mta.config.params.relayhost).toBe('');
    expect(mta.config.params.smtpdBanner).toBe('mx.example.test ESMTP two');
    const warning = events.find((e) => e.level === 'warning' && /^reload: /.test(e.text));
    expect(warning?.text).toMatch(/reload: relayhost changed; restart postern serve to apply it/);
  });

  it('adds and removes listeners', async () => {
    const first = mta.listeners[0]!.port;
    config = {
      ...config,
      smtpd: [{ listen: '127.0.0.1:0' }, { listen: '127.0.0.1:0', smtpdBanner: 'second' }],
    };
    await mta.reload(config as MtaConfig);
    expect(mta.listeners).toHaveLength(2);
    expect(mta.listeners[0]!.port).toBe(first);
    const second = mta.listeners[1]!.port;
    const c = await SmtpDialogue.open(second);
    expect((await c.read()).text).toBe('second');
    c.close();

    config = { ...config, smtpd: [{ listen: '127.0.0.1:0' }] };
    await mta.reload(config as MtaConfig);
    expect(mta.listeners.map((l) => l.port)).toEqual([first]);
    expect(await accepts(second)).toBe(false);
    expect(await accepts(first)).toBe(true);
  });

  it('reads a renewed TLS certificate from the same file names', async () => {
    const port = mta.listeners[0]!.port;
    expect(await startTlsSubject(port)).toBe('first');
    const renewed = certificate(dir, 'renewed');
    await writeFile(String(config.smtpdTlsCertFile), await readFile(renewed.cert));
    await writeFile(String(config.smtpdTlsKeyFile), await readFile(renewed.key));
    await mta.reload(config as MtaConfig);
    expect(await startTlsSubject(port)).toBe('renewed');
  });

  it('refuses a config that does not validate and keeps running the old one', async () => {
    const port = mta.listeners[0]!.port;
    await expect(
      mta.reload({ ...config, smtpdTimeout: 'soon' } as unknown as MtaConfig),
    ).rejects.toBeInstanceOf(ConfigError);
    await expect(
      mta.reload({ ...config, smtpdTlsCertFile: join(dir, 'missing.pem') } as MtaConfig),
    ).rejects.toThrow(/smtpdTlsCertFile: cannot load/);
    const c = await SmtpDialogue.open(port);
    expect((await c.read()).text).toBe('mx.example.test ESMTP two');
    await c.expect('QUIT', 221);
  });
});
