import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import { testCertificates } from '../helpers/tls-cert.js';

const run = promisify(execFile);
/** Test runners started as children print no colour codes. */
const plain = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' };
const root = fileURLToPath(new URL('../..', import.meta.url));

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-example-test-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

interface RunningExample {
  readonly port: number;
  /** Everything printed so far. */
  output(): string;
  /** SIGTERM; resolves with the exit code once the program has stopped. */
  stop(): Promise<number | null>;
}

/** Starts a server example and waits for its `listening on HOST:PORT` line. */
async function startExample(file: string, env: Record<string, string>): Promise<RunningExample> {
  const child: ChildProcess = spawn(process.execPath, [join(root, 'examples', file)], {
    cwd: root,
    env: { ...process.env, LISTEN: '127.0.0.1:0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  cleanups.push(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  });
  const deadline = Date.now() + 20_000;
  let m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
  while (!m) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`${file} did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 20));
    m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
  }
  return {
    port: Number(m[1]),
    output: () => out,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Polls `check` until it returns true (at most `ms`). */
async function until(check: () => boolean | Promise<boolean>, what: string, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Received {
  from: string;
  to: string[];
  raw: string;
}

/** An smtp-server that records what it receives (the smarthost / internal server). */
async function recordingSmtpServer(): Promise<{ port: number; received: Received[] }> {
  const received: Received[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString(),
        });
        callback();
      });
    },
  });
  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.server.address() as AddressInfo).port, received };
}

// Each program in examples/ runs as a user would run it (against the built package).
describe('examples', () => {
  it('embedded-mta.mjs queues and delivers its message', async () => {
    const dir = await tempDir();
    const { stdout } = await run(process.execPath, [join(root, 'examples/embedded-mta.mjs'), dir], {
      cwd: root,
      timeout: 30_000,
    });
    expect(stdout).toMatch(/queued: 250 2\.0\.0 Ok: queued as [0-9A-Za-z]+/);
    expect(stdout).toMatch(
      /postern\/local\[\d+\]: [0-9A-Za-z]+: to=<alice@localhost>, relay=local, .*status=sent/,
    );
    expect(await readdir(join(dir, 'mail/alice/new'))).toHaveLength(1);
  });

  it('relay-smarthost.mjs takes mail only with AUTH over TLS and relays it to the smarthost', async () => {
    const smarthost = await recordingSmtpServer();
    const certs = testCertificates();
    const example = await startExample('relay-smarthost.mjs', {
      SMARTHOST: `127.0.0.1:${smarthost.port}`,
      QUEUE_DIR: join(await tempDir(), 'queue'),
      TLS_CERT: join(certs.dir, 'server.pem'),
      TLS_KEY: join(certs.dir, 'server.key'),
    });
    const options = {
      host: '127.0.0.1',
      port: example.port,
      requireTLS: true,
      tls: { ca: certs.ca, servername: 'localhost' },
    };
    const mail = {
      from: 'app@example.com',
      to: 'customer@example.net',
      subject: 'Your invoice',
      text: 'Attached.',
    };

    // No login, no relaying.
    await expect(nodemailer.createTransport(options).sendMail(mail)).rejects.toMatchObject({
      responseCode: 554,
    });
    const auth = { user: 'app@example.com', pass: 'app-password' };
    await expect(
      nodemailer.createTransport({ ...options, auth: { ...auth, pass: 'wrong' } }).sendMail(mail),
    ).rejects.toMatchObject({ responseCode: 535 });
    const info = await nodemailer.createTransport({ ...options, auth }).sendMail(mail);
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as/);

    await until(() => smarthost.received.length === 1, 'the smarthost to receive the message');
    expect(smarthost.received[0]).toMatchObject({
      from: 'app@example.com',
      to: ['customer@example.net'],
    });
    expect(smarthost.received[0]!.raw).toContain('Subject: Your invoice');
    await until(() => /status=sent/.test(example.output()), 'the delivery log line');
    expect(example.output()).toMatch(
      new RegExp(
        `postern/smtp\\[\\d+\\]: \\w+: to=<customer@example\\.net>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${smarthost.port}, .*status=sent`,
      ),
    );
    expect(await example.stop()).toBe(0);
  });

  it('inbound-webhook.mjs posts each message to the HTTP endpoint', async () => {
    const posts: { headers: Record<string, unknown>; body: string }[] = [];
    let answer = 503;
    const http = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        posts.push({ headers: req.headers, body: Buffer.concat(chunks).toString() });
        res.writeHead(answer).end();
      });
    });
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    cleanups.push(() => new Promise((r) => http.close(r)));
    const example = await startExample('inbound-webhook.mjs', {
      WEBHOOK_URL: `http://127.0.0.1:${(http.address() as AddressInfo).port}/inbound`,
      DOMAIN: 'inbound.example.test',
      QUEUE_DIR: join(await tempDir(), 'queue'),
    });
    const mailer = nodemailer.createTransport({
      host: '127.0.0.1',
      port: example.port,
      ignoreTLS: true,
    });
    // The endpoint fails at first: the message is deferred, not lost.
    await mailer.sendMail({
      from: 'someone@example.org',
      to: 'support@inbound.example.test',
      subject: 'Help',
      text: 'Please.',
    });
    await until(
      () => posts.length === 1 && /status=deferred/.test(example.output()),
      'a deferred POST',
    );
    answer = 204;
    await mailer.sendMail({
      from: 'someone@example.org',
      to: 'sales@inbound.example.test',
      subject: 'Quote',
      text: 'How much?',
    });
    await until(() => posts.length === 2, 'the second POST');
    const post = posts[1]!;
    expect(post.headers['content-type']).toBe('message/rfc822');
    expect(post.headers['x-envelope-from']).toBe('someone@example.org');
    expect(post.headers['x-envelope-to']).toBe('sales@inbound.example.test');
    expect(post.body).toMatch(/^Subject: Quote\r$/m);
    expect(post.body).toContain('How much?');
    await until(
      () => /to=<sales@inbound\.example\.test>.*status=sent/.test(example.output()),
      'the sent line',
    );
    expect(await example.stop()).toBe(0);
  });

  it('content-filter-gateway.mjs rejects by header, body and the async scanner, and relays the rest', async () => {
    const internal = await recordingSmtpServer();
    const example = await startExample('content-filter-gateway.mjs', {
      DOWNSTREAM: `127.0.0.1:${internal.port}`,
      DOMAIN: 'example.test',
      QUEUE_DIR: join(await tempDir(), 'queue'),
    });
    const mailer = nodemailer.createTransport({
      host: '127.0.0.1',
      port: example.port,
      ignoreTLS: true,
    });
    const send = (subject: string, text: string) =>
      mailer.sendMail({ from: 'sender@example.org', to: 'staff@example.test', subject, text });

    await expect(send('make money fast', 'hello')).rejects.toMatchObject({
      responseCode: 550,
      response: expect.stringContaining('Looks like spam'),
    });
    await expect(send('offer', 'BUY NOW\nplease')).rejects.toMatchObject({
      responseCode: 550,
      response: expect.stringContaining('Message content rejected'),
    });
    await expect(
      send('attachment', 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'),
    ).rejects.toMatchObject({
      responseCode: 554,
      response: expect.stringContaining('Virus found'),
    });
    // Mail for another domain is not relayed.
    await expect(
      mailer.sendMail({
        from: 'sender@example.org',
        to: 'x@elsewhere.test',
        subject: 'hi',
        text: 'hi',
      }),
    ).rejects.toMatchObject({ responseCode: 554 });
    await send('Meeting notes', 'See you at ten.');

    await until(() => internal.received.length === 1, 'the clean message downstream');
    expect(internal.received[0]!.to).toEqual(['staff@example.test']);
    expect(internal.received[0]!.raw).toMatch(/^X-Scanned-By: postern-gateway \(\w+\)\r$/m);
    expect(internal.received[0]!.raw).toContain('See you at ten.');
    expect(internal.received).toHaveLength(1);
    expect(await example.stop()).toBe(0);
  });

  it('local-mailboxes.mjs delivers into Maildirs of several domains and refuses unknown addresses', async () => {
    const dir = await tempDir();
    const example = await startExample('local-mailboxes.mjs', {
      MAIL_DIR: join(dir, 'vmail'),
      QUEUE_DIR: join(dir, 'queue'),
    });
    const mailer = nodemailer.createTransport({
      host: '127.0.0.1',
      port: example.port,
      ignoreTLS: true,
    });
    for (const to of [
      'alice@example.com',
      'info@example.org',
      'anyone@example.net',
      'postmaster@example.com',
    ])
      await mailer.sendMail({ from: 'friend@example.org', to, subject: `to ${to}`, text: 'hello' });
    await expect(
      mailer.sendMail({
        from: 'friend@example.org',
        to: 'carol@example.com',
        subject: 'x',
        text: 'x',
      }),
    ).rejects.toMatchObject({ responseCode: 550 });

    const box = (path: string) => join(dir, 'vmail', path, 'new');
    const count = async (path: string) => (await readdir(box(path)).catch(() => [])).length;
    await until(async () => (await count('example.com/alice')) === 2, "alice's two messages");
    expect(await count('example.org/info')).toBe(1);
    expect(await count('example.net/catchall')).toBe(1);
    const [file] = await readdir(box('example.org/info'));
    expect(await readFile(join(box('example.org/info'), file!), 'utf8')).toMatch(
      /^Delivered-To: info@example\.org\r?$/m,
    );
    expect(await example.stop()).toBe(0);
  });

  it('ci-testing.test.mjs passes under vitest', async () => {
    const { stdout } = await run('npx', ['vitest', 'run'], {
      cwd: join(root, 'examples'),
      env: plain,
      timeout: 60_000,
    });
    expect(stdout).toMatch(/ci-testing\.test\.mjs/);
    expect(stdout).toMatch(/Tests\s+\S*1 passed/);
  });

  describe('examples/testing', () => {
    const dir = join(root, 'examples/testing');
    it('vitest', async () => {
      const { stdout } = await run('npx', ['vitest', 'run'], {
        cwd: dir,
        env: plain,
        timeout: 60_000,
      });
      expect(stdout).toMatch(/vitest\.test\.mjs/);
      expect(stdout).toMatch(/Tests\s+\S*1 passed/);
    });
    it('jest (CommonJS)', async () => {
      const { stderr } = await run('npx', ['jest', '--config', join(dir, 'jest.config.cjs')], {
        env: plain,
        cwd: root,
        timeout: 60_000,
      });
      expect(stderr).toMatch(/PASS .*jest\.test\.cjs/);
      expect(stderr).toMatch(/Tests:\s+1 passed, 1 total/);
    });
    it('node:test', async () => {
      const { stdout } = await run(process.execPath, ['--test', join(dir, 'node.test.mjs')], {
        cwd: root,
        timeout: 60_000,
      });
      expect(stdout).toMatch(/^# pass 1$/m);
      expect(stdout).toMatch(/^# fail 0$/m);
    });
  });
});
