import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPostern } from '../helpers/postern-cli.js';
import { startPostern } from '../helpers/postern-process.js';
import { SmtpDialogue } from '../helpers/smtp-dialogue.js';

const BIN = fileURLToPath(new URL('../../bin/postern.mjs', import.meta.url));

/** Resolves when `file` holds a line matching `pattern` (the log is written asynchronously). */
async function lineIn(file: string, pattern: RegExp, child: ChildProcess): Promise<string> {
  const end = Date.now() + 20_000;
  for (;;) {
    const text = await readFile(file, 'utf8').catch(() => '');
    const hit = text.split('\n').find((l) => pattern.test(l));
    if (hit !== undefined) return hit;
    if (Date.now() > end || child.exitCode !== null)
      throw new Error(`no line matching ${pattern} in ${file}:\n${text}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((r) => child.once('exit', (code) => r(code)));
}

async function banner(port: number): Promise<string> {
  const c = await SmtpDialogue.open(port);
  const text = (await c.read()).text;
  await c.expect('QUIT', 221);
  return text;
}

describe('postern serve operations', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-ops-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('SIGHUP reloads the config file instead of ending the process; a broken one is refused in one line', async () => {
    const config = {
      myhostname: 'mx.example.test',
      smtpd: [{ listen: '127.0.0.1:0' }],
      queueDirectory: join(dir, 'q-hup'),
      smtpdBanner: 'mx.example.test ESMTP before',
    };
    const cwd = await mkdtemp(join(dir, 'hup-'));
    const server = await startPostern(cwd, config);
    try {
      expect(await banner(server.port)).toBe('mx.example.test ESMTP before');
      await writeFile(
        join(cwd, 'postern.json'),
        JSON.stringify({
          ...config,
          smtpdBanner: 'mx.example.test ESMTP after',
          myorigin: 'example.test',
        }),
      );
      server.child.kill('SIGHUP');
      await server.waitForLine(
        /postern\/master\[\d+\]: reload: listening on .*changed: smtpdBanner/,
      );
      await server.waitForLine(
        /warning: reload: myorigin changed; restart postern serve to apply it/,
      );
      expect(await banner(server.port)).toBe('mx.example.test ESMTP after');

      await writeFile(join(cwd, 'postern.json'), '{ "myhostname": "mx.example.test", ');
      server.child.kill('SIGHUP');
      const refused = await server.waitForLine(/reload failed/);
      expect(refused).toMatch(
        /postern\/master\[\d+\]: error: reload failed: .*not valid JSON.*; the running configuration stays$/,
      );
      expect(await banner(server.port)).toBe('mx.example.test ESMTP after');
      expect(server.child.exitCode).toBeNull();
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  it('SIGHUP without a config file keeps the embedded default: no setting reported changed, every local part still accepted', async () => {
    // The embedded default listens on 127.0.0.1:2525; this is the one test that binds it.
    const cwd = await mkdtemp(join(dir, 'embedded-'));
    const server = await startPostern(cwd, undefined);
    try {
      expect(server.port).toBe(2525);
      const rcpt = async (): Promise<void> => {
        const c = await SmtpDialogue.open(server.port);
        expect((await c.read()).code).toBe(220);
        await c.expect('HELO client.example.test', 250);
        await c.expect('MAIL FROM:<app@example.test>', 250);
        await c.expect('RCPT TO:<no-such-account-here@localhost>', 250);
        await c.expect('QUIT', 221);
      };
      await rcpt();
      server.child.kill('SIGHUP');
      await server.waitForLine(/reload: listening on 127\.0\.0\.1:2525/);
      await rcpt();
      expect(server.output.filter((l) => /warning|error/.test(l))).toEqual([]);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  it('maillogFile: log lines go to the file, and SIGHUP opens a new one after logrotate moved it', async () => {
    const log = join(dir, 'maillog');
    const configFile = join(dir, 'maillog.json');
    await writeFile(
      configFile,
      JSON.stringify({
        myhostname: 'mx.example.test',
        smtpd: [{ listen: '127.0.0.1:0' }],
        queueDirectory: join(dir, 'q-maillog'),
        maillogFile: log,
      }),
    );
    const child = spawn(process.execPath, [BIN, 'serve', '--config', configFile], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    try {
      const started = await lineIn(log, /daemon started/, child);
      expect(started).toMatch(/^[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d mx postern\/master\[\d+\]: /);
      const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(started)?.[1]);
      await rename(log, `${log}.1`);
      child.kill('SIGHUP');
      await lineIn(log, /reload -- configuration/, child);
      await banner(port);
      await lineIn(log, /disconnect from unknown\[127\.0\.0\.1\] quit=1 commands=1/, child);
      expect(await readFile(`${log}.1`, 'utf8')).not.toMatch(/connect from/);
    } finally {
      child.kill('SIGTERM');
      expect(await exited(child)).toBe(0);
    }
    expect(await readFile(log, 'utf8')).toMatch(/terminating on signal or request\n$/);
    expect(stdout).toBe('');
  });

  it('expected errors print one line without a stack trace: a locked queue, a database that is down, a bad config', async () => {
    const cwd = await mkdtemp(join(dir, 'locked-'));
    const queueDirectory = join(dir, 'q-locked');
    const first = await startPostern(cwd, {
      myhostname: 'mx.example.test',
      smtpd: [{ listen: '127.0.0.1:0' }],
      queueDirectory,
    });
    try {
      const second = join(dir, 'second.json');
      await writeFile(
        second,
        JSON.stringify({
          myhostname: 'mx.example.test',
          smtpd: [{ listen: '127.0.0.1:0' }],
          queueDirectory,
        }),
      );
      const r = await runPostern(['serve', '--config', second], { cwd: dir });
      expect(r.code).toBe(75);
      expect(r.stderr).toMatch(
        /^postern: another process \(pid \d+\) uses the queue directory .*\n$/,
      );
      expect(r.stdout).toMatch(
        /postern\/master\[\d+\]: fatal: another process \(pid \d+\) uses the queue/,
      );
    } finally {
      await first.stop();
    }

    const down = join(dir, 'down.json');
    await writeFile(
      down,
      JSON.stringify({
        myhostname: 'mx.example.test',
        smtpd: [{ listen: '127.0.0.1:0' }],
        queueStore: { type: 'postgres', url: 'postgres://postern@127.0.0.1:1/postern' },
      }),
    );
    for (const args of [['serve'], ['queue', 'list']]) {
      const r = await runPostern([...args, '--config', down], { cwd: dir });
      expect(r.code).toBe(75);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/ECONNREFUSED 127\.0\.0\.1:1/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }

    const bad = join(dir, 'bad.json');
    await writeFile(
      bad,
      JSON.stringify({ smtpd: [{ listen: '127.0.0.1:0' }], smtpdTimeout: 'soon' }),
    );
    const r = await runPostern(['serve', '--config', bad], { cwd: dir });
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/^postern: configuration error: smtpdTimeout: .*\n$/);
  });

  /**
   * `postern serve` with a restriction whose bug throws outside any promise, in the main
   * thread (`smtpdWorkerThreads` 0) or the smtpd thread; a client brought to RCPT, where
   * the hook runs (smtpdDelayReject).
   */
  async function crashAtRcpt(threads: number): Promise<{
    child: ChildProcess;
    text: () => { out: string; err: string };
    port: number;
  }> {
    // A port of its own, not 0: a thread started again binds the same one.
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = probe.address() as AddressInfo;
        probe.close(() => resolve(free));
      });
    });
    const configFile = join(dir, `crash-${threads}.mjs`);
    await writeFile(
      configFile,
      `export default {
        myhostname: 'mx.example.test',
        smtpd: [{ listen: '127.0.0.1:${port}' }],
        queueDirectory: ${JSON.stringify(join(dir, `q-crash-${threads}`))},
        smtpdWorkerThreads: ${threads},
        smtpdClientRestrictions: [async () => { setImmediate(() => { throw new Error('boom in a hook'); }); return undefined; }],
      };\n`,
    );
    const child = spawn(process.execPath, [BIN, 'serve', '--config', configFile], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const end = Date.now() + 20_000;
    while (!/daemon started/.test(out) && Date.now() < end)
      await new Promise((r) => setTimeout(r, 25));
    const c = await SmtpDialogue.open(port);
    await c.read();
    await c.expect('EHLO client.example', 250);
    await c.expect('MAIL FROM:<a@client.example>', 250);
    await c.command('RCPT TO:<root@localhost>').catch(() => undefined);
    return { child, text: () => ({ out, err }), port };
  }

  it('an uncaught exception is logged as fatal, every log line before it is written, exit 70', async () => {
    const { child, text } = await crashAtRcpt(0);
    expect(await exited(child)).toBe(70);
    const { out, err } = text();
    expect(out).toMatch(/postern\/smtpd\[\d+\]: connect from unknown\[127\.0\.0\.1\]\n/);
    expect(out).toMatch(/postern\/master\[\d+\]: fatal: uncaught exception: boom in a hook\n/);
    expect(err).toMatch(/boom in a hook/);
  });

  it('an uncaught exception in the smtpd thread is logged as its fatal, after every line it logged before; the thread is started again and serves', async () => {
    const { child, text, port } = await crashAtRcpt(1);
    const end = Date.now() + 20_000;
    while (!/warning: thread postern\/smtpd 1 of pid \d+ exit status 70\n/.test(text().out)) {
      expect(child.exitCode, text().out).toBeNull();
      expect(Date.now(), text().out).toBeLessThan(end);
      await new Promise((r) => setTimeout(r, 25));
    }
    const { out, err } = text();
    // The thread's last lines reach the log before its death is reported.
    const connect = out.search(/postern\/smtpd\[\d+\]: connect from unknown\[127\.0\.0\.1\]\n/);
    const fatal = out.search(/postern\/smtpd\[\d+\]: fatal: uncaught exception: boom in a hook\n/);
    const death = out.search(/postern\/master\[\d+\]: warning: thread postern\/smtpd 1/);
    expect([connect >= 0, fatal > connect, death > fatal], out).toEqual([true, true, true]);
    expect(err).toMatch(/boom in a hook/);
    // Started again on the same listener.
    let greeting: string | undefined;
    while (greeting === undefined) {
      expect(Date.now(), text().out).toBeLessThan(end);
      greeting = await banner(port).catch(() => undefined);
    }
    expect(greeting).toBe('mx.example.test ESMTP Postern');
    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
  });
});
