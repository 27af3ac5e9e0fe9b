/**
 * `postern serve` with its smtpd worker in a thread (`smtpdWorkerThreads: 1`), end to
 * end: a real process, real sockets, a real SMTP sink (smtp-server) counting deliveries
 * by recipient.
 *
 * What must hold: it stays one process; every message is delivered exactly once under a
 * unique queue ID, all from the thread's queue ID generator; SIGHUP reloads the thread's
 * listeners; SIGTERM ends it, exit 0; kill -9 mid-load loses no acknowledged message; a
 * 100 MB message streams through the thread with bounded memory; a config asking for
 * more than one thread, or for threads and processes, is refused saying what to do.
 *
 * @module
 */

import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, describe, expect, it } from 'vitest';
import { runPostern } from '../helpers/postern-cli.js';
import { type PosternProcess, startPostern } from '../helpers/postern-process.js';
import { type SinkServer, startSink } from '../helpers/sink-server.js';
import { SmtpDialogue } from '../helpers/smtp-dialogue.js';
import { BODY, childrenOf, load, poll, statusKiB } from '../helpers/worker-load.js';

const HOST = 'mx.example.test';

describe('postern serve with an smtpd worker thread', () => {
  const dirs: string[] = [];
  const running: PosternProcess[] = [];
  const sinks: SinkServer[] = [];
  afterAll(async () => {
    await Promise.all(running.map((p) => p.stop('SIGKILL')));
    await Promise.all(sinks.map((s) => s.close()));
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  async function setUp(extra: object = {}): Promise<{
    dir: string;
    sink: SinkServer;
    config: object;
    server: PosternProcess;
  }> {
    const dir = await mkdtemp(join(tmpdir(), 'postern-thread-'));
    dirs.push(dir);
    const sink = await startSink();
    sinks.push(sink);
    const config = {
      myhostname: HOST,
      smtpd: [{ listen: '127.0.0.1:0' }],
      relayhost: `[127.0.0.1]:${sink.port}`,
      smtpTlsSecurityLevel: 'none',
      smtpdWorkerThreads: 1,
      ...extra,
    };
    const server = await startPostern(dir, config);
    running.push(server);
    return { dir, sink, config, server };
  }

  async function refused(config: object): Promise<{ code: number | null; stderr: string }> {
    const dir = await mkdtemp(join(tmpdir(), 'postern-thread-'));
    dirs.push(dir);
    const file = join(dir, 'postern.json');
    writeFileSync(
      file,
      JSON.stringify({
        myhostname: HOST,
        smtpd: [{ listen: '127.0.0.1:0' }],
        queueDirectory: join(dir, 'queue'),
        ...config,
      }),
    );
    return runPostern(['serve', '--config', file], { cwd: dir });
  }

  it('serves SMTP in a thread of the one process: every message from nodemailer delivered exactly once under a unique queue ID; SIGHUP reloads the thread; SIGTERM ends it', {
    timeout: 60_000,
  }, async () => {
    const { dir, sink, config, server } = await setUp({
      smtpdBanner: 'mx.example.test ESMTP before',
    });
    const primary = server.child.pid!;
    expect(childrenOf(primary)).toEqual([]);

    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: server.port,
      secure: false,
      ignoreTLS: true,
      pool: true,
      maxConnections: 8,
      maxMessages: 10,
    });
    const recipients = Array.from({ length: 160 }, (_, i) => `n${i}@remote.example`);
    const infos = await Promise.all(
      recipients.map((to) =>
        transport.sendMail({ from: 'app@client.example', to, subject: to, text: BODY }),
      ),
    );
    transport.close();
    const ids = infos.map((info) => /queued as ([0-9A-Za-z]+)/.exec(info.response)?.[1] ?? '');
    expect(new Set(ids).size).toBe(recipients.length);
    // One queue ID generator made them all (the last 5 characters name it): the thread's,
    // not the main thread's, which names what Pickup queues.
    const tags = new Set(ids.map((id) => id.slice(-5)));
    expect(tags.size).toBe(1);
    const sent = await runPostern(['sendmail', 'local@remote.example'], {
      cwd: dir,
      input: 'Subject: from sendmail\n\nhello\n',
    });
    expect(sent.code).toBe(0);
    const picked = await server.waitForLine(/postern\/pickup\[\d+\]: [0-9A-Za-z]+: uid=/);
    const pickupId = /pickup\[\d+\]: ([0-9A-Za-z]+):/.exec(picked)![1]!;
    expect(tags.has(pickupId.slice(-5))).toBe(false);
    recipients.push('local@remote.example');
    expect(await sink.waitFor(recipients, 30_000)).toBe(true);
    expect(recipients.filter((r) => sink.byRecipient.get(r) !== 1)).toEqual([]);
    const syslogLine = /^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ postern\/[\w-]+\[\d+\]: \S/;
    expect(server.output.filter((l) => !syslogLine.test(l))).toEqual([]);

    writeFileSync(
      join(dir, 'postern.json'),
      JSON.stringify({
        ...config,
        smtpdBanner: 'mx.example.test ESMTP after',
        smtpd: [{ listen: '127.0.0.1:0' }, { listen: '127.0.0.1:0' }],
      }),
    );
    server.child.kill('SIGHUP');
    const reloaded = await server.waitForLine(/reload: listening on/);
    const ports = [...reloaded.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
    expect(ports).toHaveLength(2);
    expect(ports[0]).toBe(server.port);
    for (const port of ports) {
      const c = await SmtpDialogue.open(port);
      expect((await c.read()).text).toBe(`${HOST} ESMTP after`);
      await c.expect('QUIT', 221);
      c.close();
    }
    expect(childrenOf(primary)).toEqual([]);
    expect(await server.stop('SIGTERM')).toBe(0);
  });

  it('kill -9 mid-load: the restarted server delivers every acknowledged message', {
    timeout: 120_000,
  }, async () => {
    const { dir, sink, config, server } = await setUp({ defaultDestinationConcurrencyLimit: 2 });
    sink.slow(HOST, 50);
    const acked = new Set<string>();
    const traffic = load(server.port, 't', 10, 100, acked);
    expect(await poll(() => acked.size >= 150, 30_000)).toBe(true);
    await server.stop('SIGKILL');
    traffic.stop();
    await traffic.done;
    expect([...acked].filter((r) => !sink.byRecipient.has(r)).length).toBeGreaterThan(0);

    sink.slow(HOST, 0);
    const second = await startPostern(dir, config);
    running.push(second);
    expect(await sink.waitFor(acked, 60_000)).toBe(true);
    expect([...acked].filter((r) => (sink.byRecipient.get(r) ?? 0) < 1)).toEqual([]);
    expect(await second.stop('SIGTERM')).toBe(0);
  });

  it('streams a 100 MB message through the thread with bounded memory', {
    timeout: 120_000,
  }, async () => {
    const { server } = await setUp({ messageSizeLimit: 200_000_000, defaultTransport: 'discard' });
    const pid = server.child.pid!;
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    const before = statusKiB(pid, 'VmRSS');

    const c = await SmtpDialogue.open(server.port);
    await c.read();
    await c.expect('EHLO big.example', 250);
    await c.expect('MAIL FROM:<big@client.example>', 250);
    await c.expect('RCPT TO:<big@remote.example>', 250);
    await c.expect('DATA', 354);
    const chunk = Buffer.from(`${'y'.repeat(998)}\r\n`.repeat(1024)); // 1 MB
    c.write('Subject: big\r\n\r\n');
    for (let i = 0; i < 100; i++) {
      if (!c.socket.write(chunk)) await new Promise((r) => c.socket.once('drain', r));
    }
    const reply = await c.command('.');
    expect(reply.code).toBe(250);
    await c.command('QUIT');
    c.close();
    const id = /queued as ([0-9A-Za-z]+)/.exec(reply.text)?.[1];
    await server.waitForLine(new RegExp(`${id}: removed`), 60_000);

    // Neither thread held the message: the process's peak stays far below its 100 MB.
    const grew = statusKiB(pid, 'VmHWM') - before;
    expect(grew, `the process grew by ${grew} KiB`).toBeLessThan(64 * 1024);
    const queued = server.output.find((l) => l.includes(`${id}: from=<big@client.example>`));
    expect(Number(/size=(\d+)/.exec(queued ?? '')?.[1])).toBeGreaterThan(102_400_000);
    expect(await server.stop('SIGTERM')).toBe(0);
  });

  it('refuses more than one thread, and threads with processes, saying what to do, exit 78', async () => {
    const two = await refused({ smtpdWorkerThreads: 2 });
    expect(two.code).toBe(78);
    expect(two.stderr).toBe(
      'postern: configuration error: smtpdWorkerThreads 2 is more than 1: threads of one process cannot share a listening port; for more workers use smtpdWorkerProcesses\n',
    );
    const both = await refused({ smtpdWorkerThreads: 1, smtpdWorkerProcesses: 2 });
    expect(both.code).toBe(78);
    expect(both.stderr).toBe(
      'postern: configuration error: smtpdWorkerProcesses 2 and smtpdWorkerThreads 1 cannot both be used: set one of them to 0\n',
    );
  });
});
