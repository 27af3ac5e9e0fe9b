import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Logger } from '../../src/log.js';
import { Mta } from '../../src/mta/mta.js';
import type { LogEvent, MxRecord, Resolver } from '../../src/types.js';
import { headersOf, waitForMaildir } from '../helpers/maildir.js';
import { SmtpDialogue } from '../helpers/smtp-dialogue.js';

/** Python's dkimpy (Debian python3-dkim), with the public keys given without DNS. */
const VERIFY = `
import sys, json, dkim
records = json.loads(sys.argv[1])
def dnsfunc(name, timeout=5):
    n = name.decode() if isinstance(name, bytes) else name
    return records.get(n.rstrip('.'), '').encode()
print('pass' if dkim.verify(sys.stdin.buffer.read(), dnsfunc=dnsfunc) else 'fail')
`;
const SIGN = `
import sys, dkim
key = open(sys.argv[1], 'rb').read()
msg = sys.stdin.buffer.read()
sig = dkim.sign(msg, sys.argv[2].encode(), sys.argv[3].encode(), key,
    canonicalize=(b'relaxed', b'relaxed'), include_headers=[b'from', b'to', b'subject', b'date'])
sys.stdout.buffer.write(sig + msg)
`;

function python(script: string, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      '/usr/bin/python3',
      ['-c', script, ...args],
      { encoding: 'latin1', timeout: 30_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    );
    child.stdin!.end(Buffer.from(input, 'latin1'));
  });
}

const dkimpyVerdict = (message: string, records: Record<string, string>) =>
  python(VERIFY, [JSON.stringify(records)], message).then((s) => s.trim());

/** Sends `raw` (CRLF lines, no leading dots) over SMTP; AUTH PLAIN when `auth` is given. */
async function send(
  port: number,
  from: string,
  to: string,
  raw: string,
  auth?: { user: string; pass: string },
): Promise<{ code: number; text: string }> {
  const c = await SmtpDialogue.open(port);
  await c.read();
  await c.expect('EHLO client.example', 250);
  if (auth)
    await c.expect(
      `AUTH PLAIN ${Buffer.from(`\0${auth.user}\0${auth.pass}`).toString('base64')}`,
      235,
    );
  await c.expect(`MAIL FROM:<${from}>`, 250);
  await c.expect(`RCPT TO:<${to}>`, 250);
  await c.expect('DATA', 354);
  const r = await c.command(`${raw}.`);
  await c.expect('QUIT', 221);
  return { code: r.code, text: r.text };
}

function message(from: string, to: string, subject: string, body = 'Hello.\r\n'): string {
  return (
    `From: Sender <${from}>\r\nTo: <${to}>\r\nSubject: ${subject}\r\n` +
    `Date: Sun, 06 Dec 2026 12:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@client.example>\r\n` +
    `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n${body}`
  );
}

/** A TXT record for a DKIM public key (RFC 6376 section 3.6.1; RFC 8463 for Ed25519). */
function dkimRecord(kind: 'rsa' | 'ed25519', publicKeyDer: Buffer): string {
  // Ed25519: the raw 32-byte key, the last bytes of its SubjectPublicKeyInfo.
  const p = kind === 'rsa' ? publicKeyDer : publicKeyDer.subarray(publicKeyDer.length - 32);
  return `v=DKIM1; k=${kind}; p=${p.toString('base64')}`;
}

describe('DKIM signing: mail from trusted clients verifies with dkimpy', () => {
  let dir: string;
  let mta: Mta;
  const records: Record<string, string> = {};
  const events: LogEvent[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-dkim-sign-'));
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ed = generateKeyPairSync('ed25519');
    await writeFile(join(dir, 'rsa.pem'), rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }));
    await writeFile(join(dir, 'ed.pem'), ed.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    records['rsa2026._domainkey.example.com'] = dkimRecord(
      'rsa',
      rsa.publicKey.export({ type: 'spki', format: 'der' }),
    );
    records['ed2026._domainkey.example.org'] = dkimRecord(
      'ed25519',
      ed.publicKey.export({ type: 'spki', format: 'der' }),
    );
    mta = new Mta(
      {
        myhostname: 'mx.example.test',
        mydestination: ['example.net'],
        // Made-up recipients: every local part is accepted (Postfix's local_recipient_maps =).
        localRecipientMaps: '',
        // The test client (127.0.0.1) is trusted only when it logs in.
        mynetworks: ['192.0.2.0/24'],
        smtpd: [
          {
            listen: '127.0.0.1:0',
            smtpdSaslAuthEnable: true,
            smtpdTlsAuthOnly: false,
            authenticator: { alice: 'pw' },
          },
        ],
        queueDirectory: join(dir, 'queue'),
        mailSpoolDirectory: join(dir, 'mail/'),
        dkimSigning: [
          { domain: 'example.com', selector: 'rsa2026', privateKeyFile: join(dir, 'rsa.pem') },
          { domain: 'example.org', selector: 'ed2026', privateKeyFile: join(dir, 'ed.pem') },
        ],
      },
      { logger: new Logger([(e) => events.push(e)]) },
    );
    await mta.start();
  });

  afterAll(async () => {
    await mta.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('signs an authenticated client’s message (rsa-sha256, relaxed/relaxed); dkimpy verifies it, and fails it once altered', async () => {
    const r = await send(
      mta.listeners[0]!.port,
      'alice@example.com',
      'bob@example.net',
      message('alice@example.com', 'bob@example.net', 'Signed by RSA'),
      { user: 'alice', pass: 'pw' },
    );
    expect(r.code).toBe(250);
    const [m] = await waitForMaildir(join(dir, 'mail/bob'), (ms) => ms.length === 1);
    const sig = headersOf(m!).find(([n]) => n === 'dkim-signature')?.[1] ?? '';
    expect(sig).toMatch(/\ba=rsa-sha256;/);
    expect(sig).toMatch(/\bc=relaxed\/relaxed;/);
    expect(sig).toMatch(/\bd=example\.com;/);
    expect(sig).toMatch(/\bs=rsa2026;/);
    expect(await dkimpyVerdict(m!, records)).toBe('pass');

    expect(await dkimpyVerdict(m!.replace('Hello.', 'Hello!'), records)).toBe('fail');
    expect(
      await dkimpyVerdict(m!.replace('Subject: Signed by RSA', 'Subject: Changed'), records),
    ).toBe('fail');
    expect(
      events.some((e) => /DKIM-Signature field added \(s=rsa2026, d=example\.com\)/.test(e.text)),
    ).toBe(true);
  });

  it('signs local submission with Ed25519 (ed25519-sha256); dkimpy verifies it', async () => {
    await mta.submit({
      from: 'carol@example.org',
      to: ['dave@example.net'],
      content: message(
        'carol@example.org',
        'dave@example.net',
        'Signed by Ed25519',
        'A line.\r\n\r\n\r\n',
      ),
    });
    const [m] = await waitForMaildir(join(dir, 'mail/dave'), (ms) => ms.length === 1);
    const sig = headersOf(m!).find(([n]) => n === 'dkim-signature')?.[1] ?? '';
    expect(sig).toMatch(/\ba=ed25519-sha256;/);
    expect(sig).toMatch(/\bd=example\.org;/);
    expect(await dkimpyVerdict(m!, records)).toBe('pass');
    expect(await dkimpyVerdict(m!.replace('A line.', 'A line!'), records)).toBe('fail');
  });

  it('does not sign for an untrusted client, nor a From: domain without a key', async () => {
    const port = mta.listeners[0]!.port;
    expect(
      (
        await send(
          port,
          'alice@example.com',
          'erin@example.net',
          message('alice@example.com', 'erin@example.net', 'Not logged in'),
        )
      ).code,
    ).toBe(250);
    expect(
      (
        await send(
          port,
          'frank@elsewhere.example',
          'erin@example.net',
          message('frank@elsewhere.example', 'erin@example.net', 'No key'),
          { user: 'alice', pass: 'pw' },
        )
      ).code,
    ).toBe(250);
    const ms = await waitForMaildir(join(dir, 'mail/erin'), (x) => x.length === 2);
    for (const m of ms) expect(headersOf(m).some(([n]) => n === 'dkim-signature')).toBe(false);
  });
});

/** DNS answers for the verifier: TXT by name; everything else does not exist. */
class TxtResolver implements Resolver {
  constructor(readonly txt: Record<string, string>) {}
  #none(name: string, code = 'ENOTFOUND'): never {
    throw Object.assign(new Error(`${name}: ${code}`), { code });
  }
  async resolveTxt(name: string): Promise<string[][]> {
    const v = this.txt[name.toLowerCase()];
    if (v === undefined) this.#none(name);
    // Long records come as several character strings, as DNS gives them.
    return [v.match(/.{1,255}/g)!];
  }
  async resolveMx(name: string): Promise<MxRecord[]> {
    this.#none(name);
  }
  async resolve4(name: string): Promise<string[]> {
    this.#none(name);
  }
  async resolve6(name: string): Promise<string[]> {
    this.#none(name);
  }
  async reverse(address: string): Promise<string[]> {
    this.#none(address);
  }
}

describe('inbound authentication: Authentication-Results, and DMARC policy applied', () => {
  let dir: string;
  let mta: Mta;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-dkim-verify-'));
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await writeFile(
      join(dir, 'signer.pem'),
      rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }),
    );
    const resolver = new TxtResolver({
      'sel._domainkey.signer.example': dkimRecord(
        'rsa',
        rsa.publicKey.export({ type: 'spki', format: 'der' }),
      ),
      'signer.example': 'v=spf1 ip4:127.0.0.1 -all',
      '_dmarc.signer.example': 'v=DMARC1; p=reject',
      '_dmarc.strict.example': 'v=DMARC1; p=reject',
      '_dmarc.careful.example': 'v=DMARC1; p=quarantine',
    });
    mta = new Mta(
      {
        myhostname: 'mx.example.test',
        mydestination: ['example.net'],
        // Made-up recipients: every local part is accepted (Postfix's local_recipient_maps =).
        localRecipientMaps: '',
        mynetworks: ['192.0.2.0/24'],
        smtpd: [{ listen: '127.0.0.1:0' }],
        queueDirectory: join(dir, 'queue'),
        mailSpoolDirectory: join(dir, 'mail/'),
        dkimVerification: { dmarcPolicy: 'enforce' },
      },
      { logger: new Logger(), resolver },
    );
    await mta.start();
  });

  afterAll(async () => {
    await mta.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const resultsOf = (m: string): string[] =>
    headersOf(m)
      .filter(([n]) => n === 'authentication-results')
      .map(([, v]) => v);

  it('a message signed by dkimpy: dkim=pass, spf=pass, dmarc=pass', async () => {
    const signed = await python(
      SIGN,
      [join(dir, 'signer.pem'), 'sel', 'signer.example'],
      message('news@signer.example', 'gina@example.net', 'Signed elsewhere'),
    );
    expect(signed).toMatch(/^DKIM-Signature: /);
    const r = await send(
      mta.listeners[0]!.port,
      'bounce@signer.example',
      'gina@example.net',
      signed,
    );
    expect(r.code).toBe(250);
    const [m] = await waitForMaildir(join(dir, 'mail/gina'), (ms) => ms.length === 1);
    const [ar] = resultsOf(m!);
    expect(ar).toMatch(/^mx\.example\.test;/);
    expect(ar).toMatch(/\bdkim=pass\b[^;]*header\.i=@signer\.example/);
    expect(ar).toMatch(/\bspf=pass\b/);
    expect(ar).toMatch(/\bdmarc=pass\b[^;]*header\.from=signer\.example/);
  });

  it('an unsigned message: dkim=none; a forged result with our authserv-id is removed, another kept', async () => {
    const raw =
      'Authentication-Results: mx.example.test; dkim=pass header.d=bank.example\r\n' +
      'Authentication-Results: other.example; spf=neutral\r\n' +
      message('henry@plain.example', 'ivan@example.net', 'Unsigned');
    expect(
      (await send(mta.listeners[0]!.port, 'henry@plain.example', 'ivan@example.net', raw)).code,
    ).toBe(250);
    const [m] = await waitForMaildir(join(dir, 'mail/ivan'), (ms) => ms.length === 1);
    const results = resultsOf(m!);
    expect(results).toHaveLength(2);
    expect(results[0]).toMatch(/^mx\.example\.test;.*\bdkim=none\b/);
    expect(results[0]).not.toMatch(/bank\.example/);
    expect(results[1]).toBe('other.example; spf=neutral');
  });

  it('DMARC p=reject without alignment: 550 5.7.1 at end of DATA, nothing queued', async () => {
    const before = (await mta.store.counts()).incoming;
    const r = await send(
      mta.listeners[0]!.port,
      'bounce@mailer.example',
      'jane@example.net',
      message('ceo@strict.example', 'jane@example.net', 'Spoofed'),
    );
    expect(r.code).toBe(550);
    expect(r.text).toMatch(/^5\.7\.1 Email rejected per DMARC policy for strict\.example/);
    expect((await mta.store.counts()).incoming).toBe(before);
  });

  it('DMARC p=quarantine without alignment: queued on hold, with its results', async () => {
    const r = await send(
      mta.listeners[0]!.port,
      'bounce@mailer.example',
      'kate@example.net',
      message('boss@careful.example', 'kate@example.net', 'Quarantined'),
    );
    expect(r.code).toBe(250);
    const held = await mta.store.list({ states: ['hold'] });
    expect(held).toHaveLength(1);
    const content = await new Promise<string>((resolve, reject) => {
      let text = '';
      mta.store
        .openContent(held[0]!.queueId)
        .setEncoding('latin1')
        .on('data', (d: string) => {
          text += d;
        })
        .on('end', () => resolve(text))
        .on('error', reject);
    });
    expect(resultsOf(content)[0]).toMatch(/\bdmarc=fail\b/);
  });
});
