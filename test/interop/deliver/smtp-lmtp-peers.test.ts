import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveParameters } from '../../../src/config/parameters.js';
import { LmtpDeliveryAgent } from '../../../src/deliver/smtp/lmtp-agent.js';
import { SmtpDeliveryAgent } from '../../../src/deliver/smtp/smtp-agent.js';
import { Collector, makeRequest } from '../../integration/deliver/request.js';

const run = promisify(execFile);
const ANCHOR = join(import.meta.dirname, '../../../../shared/tools/postfix-anchor.sh');
const children: ChildProcess[] = [];
const cleanups: (() => Promise<void> | void)[] = [];

afterAll(async () => {
  for (const c of children) c.kill('SIGTERM');
  for (const f of cleanups.reverse()) await f();
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

/** Starts smtp-sink with extra flags; returns its port and dump directory. */
async function smtpSink(flags: string[]): Promise<{ port: number; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-sink-'));
  chmodSync(dir, 0o777);
  const port = await freePort();
  const child = spawn(
    'smtp-sink',
    ['-u', 'nobody', '-d', `${dir}/%M.`, ...flags, `127.0.0.1:${port}`, '100'],
    {
      stdio: 'ignore',
    },
  );
  children.push(child);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  await waitForPort(port);
  return { port, dir };
}

function smtp(extra: Record<string, unknown> = {}): SmtpDeliveryAgent {
  const a = new SmtpDeliveryAgent({
    params: resolveParameters({
      myhostname: 'postern.test',
      smtpTlsSecurityLevel: 'none',
      ...extra,
    }),
  });
  cleanups.push(() => a.close());
  return a;
}

const RCPTS = ['one@example.net', 'two@example.net', 'three@example.net'];

describe('SMTP client against Postfix smtp-sink', () => {
  it('delivers three recipients in one transaction', async () => {
    const { port, dir } = await smtpSink([]);
    const c = new Collector();
    await smtp().deliver(makeRequest({ nexthop: `[127.0.0.1]:${port}`, recipients: RCPTS }), c);
    expect(c.statuses()).toEqual(['sent', 'sent', 'sent']);
    expect(c.results.get(0)!.relay).toBe(`127.0.0.1[127.0.0.1]:${port}`);
    const dumps = readdirSync(dir);
    expect(dumps).toHaveLength(1);
    const dump = readFileSync(join(dir, dumps[0]!), 'latin1');
    expect(dump).toContain('Subject: test');
  });

  it('8-bit mail to a server without 8BITMIME (-8) arrives 7-bit and decodes back', async () => {
    const { port, dir } = await smtpSink(['-8']);
    const text = 'Übergrößenträger sagt: ¡olé! — 日本語';
    const content = `From: a@example.org\r\nSubject: 8bit\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${text}\r\n`;
    const c = new Collector();
    await smtp().deliver(
      makeRequest({
        nexthop: `[127.0.0.1]:${port}`,
        recipients: ['x@example.net'],
        content,
        eightBit: true,
      }),
      c,
    );
    expect(c.statuses()).toEqual(['sent']);
    const raw = readFileSync(join(dir, readdirSync(dir)[0]!));
    expect(raw.some((b) => b > 0x7f)).toBe(false);
    const s = raw.toString('latin1');
    expect(s).toMatch(/Content-Transfer-Encoding: quoted-printable/);
    const afterSubject = s.slice(s.indexOf('Subject: 8bit'));
    const blank = /\r?\n\r?\n/.exec(afterSubject)!;
    const qp = afterSubject.slice(blank.index + blank[0].length);
    const decoded = Buffer.from(
      qp
        .replace(/=\r?\n/g, '')
        .replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16))),
      'latin1',
    ).toString('utf8');
    expect(decoded.trimEnd()).toBe(text);
  });

  it('fault flags: 5xx RCPT bounces, 4xx MAIL defers, a drop after "." defers', async () => {
    const f = await smtpSink(['-f', 'rcpt']);
    const c1 = new Collector();
    await smtp().deliver(makeRequest({ nexthop: `[127.0.0.1]:${f.port}`, recipients: RCPTS }), c1);
    expect(c1.statuses()).toEqual(['bounced', 'bounced', 'bounced']);
    const r = await smtpSink(['-r', 'mail']);
    const c2 = new Collector();
    await smtp().deliver(makeRequest({ nexthop: `[127.0.0.1]:${r.port}`, recipients: RCPTS }), c2);
    expect(c2.statuses()).toEqual(['deferred', 'deferred', 'deferred']);
    const q = await smtpSink(['-q', '.']);
    const c3 = new Collector();
    await smtp().deliver(makeRequest({ nexthop: `[127.0.0.1]:${q.port}`, recipients: RCPTS }), c3);
    expect(c3.statuses()).toEqual(['deferred', 'deferred', 'deferred']);
    expect(c3.results.get(0)!.reply.enhanced).toBe('4.4.2');
  });

  it('reuses the cached connection for a second message', async () => {
    const { port, dir } = await smtpSink([]);
    const a = smtp();
    for (let i = 0; i < 3; i++) {
      const c = new Collector();
      await a.deliver(
        makeRequest({ nexthop: `[127.0.0.1]:${port}`, recipients: ['x@example.net'] }),
        c,
      );
      expect(c.statuses()).toEqual(['sent']);
    }
    expect(a.stats).toEqual({ opened: 1, reused: 2 });
    expect(readdirSync(dir)).toHaveLength(3);
  });
});

describe('SMTP client against a private Postfix smtpd', () => {
  it('Postfix accepts the message into its queue', async () => {
    const base = mkdtempSync(join(tmpdir(), 'postern-pf-'));
    chmodSync(base, 0o755);
    const port = await freePort();
    const env = { ...process.env, PF_BASE: base, PF_LISTEN: `127.0.0.1:${port}` };
    await run(ANCHOR, ['setup'], { env });
    await run(ANCHOR, ['start'], { env });
    cleanups.push(async () => {
      await run(ANCHOR, ['stop'], { env }).catch(() => {});
      rmSync(base, { recursive: true, force: true });
    });
    await waitForPort(port);
    const c = new Collector();
    await smtp().deliver(makeRequest({ nexthop: `[127.0.0.1]:${port}`, recipients: RCPTS }), c);
    expect(c.statuses()).toEqual(['sent', 'sent', 'sent']);
    expect(c.results.get(0)!.reply.text).toMatch(/queued as [0-9A-Za-z]+/);
    let delivered = 0;
    for (let i = 0; i < 600 && delivered < 3; i++) {
      // The anchor prints "0" twice when its log has no match yet (grep -c || echo 0).
      delivered = Number.parseInt((await run(ANCHOR, ['delivered'], { env })).stdout, 10) || 0;
      if (delivered < 3) await new Promise((r) => setTimeout(r, 100));
    }
    expect(delivered).toBe(3);
  });
});

describe('LMTP client against Dovecot LMTP', () => {
  it('one unknown user among three: 2 sent + 1 bounced, mail in the Maildirs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-dovecot-'));
    chmodSync(dir, 0o755);
    for (const d of ['run', 'state', 'mail']) mkdirSync(join(dir, d));
    chownSync(join(dir, 'mail'), 65534, 65534);
    writeFileSync(
      join(dir, 'users'),
      `lena::65534:65534::${dir}/mail/lena\nmax::65534:65534::${dir}/mail/max\n`,
    );
    const port = await freePort();
    const template = readFileSync(
      join(import.meta.dirname, '../../../../shared/peers/dovecot-lmtp.conf.template'),
      'utf8',
    );
    writeFileSync(
      join(dir, 'dovecot.conf'),
      template.replaceAll('$DIR', dir).replaceAll('$PORT', String(port)),
    );
    // dovecot forks into the background; wait for the foreground process only.
    await new Promise((resolve, reject) => {
      const p = spawn('dovecot', ['-c', join(dir, 'dovecot.conf')], { stdio: 'ignore' });
      p.once('exit', resolve);
      p.once('error', reject);
    });
    cleanups.push(() => {
      try {
        process.kill(Number(readFileSync(join(dir, 'run/master.pid'), 'utf8').trim()));
      } catch {
        // already gone
      }
      setTimeout(() => rmSync(dir, { recursive: true, force: true }), 500).unref();
    });
    await waitForPort(port);
    const agent = new LmtpDeliveryAgent({
      params: resolveParameters({ myhostname: 'postern.test' }),
    });
    cleanups.push(() => agent.close());
    const c = new Collector();
    await agent.deliver(
      makeRequest({
        nexthop: `inet:127.0.0.1:${port}`,
        transport: 'lmtp',
        recipients: ['lena@example.test', 'nosuchuser@example.test', 'max@example.test'],
      }),
      c,
    );
    expect(c.statuses()).toEqual(['sent', 'bounced', 'sent']);
    expect(c.results.get(1)!.reply.toString()).toMatch(/^550 5\.1\.1 /);
    for (const u of ['lena', 'max']) {
      const cur = join(dir, 'mail', u, 'Maildir', 'new');
      expect(readdirSync(cur)).toHaveLength(1);
    }
  });
});
