/**
 * What the tests of `postern serve` with smtpd workers (processes or a thread) share: the
 * state of its processes read from /proc, and an SMTP load whose acknowledged messages
 * are recorded.
 *
 * @module
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, expect } from 'vitest';
import { type PosternRun, runPostern } from './postern-cli.js';
import { type PosternProcess, startPostern } from './postern-process.js';
import { type SinkServer, startSink } from './sink-server.js';
import { SmtpDialogue } from './smtp-dialogue.js';

/** The host name the servers of these tests use. */
export const HOST = 'mx.example.test';

/** A message body of about 4 KB. */
export const BODY = `${'x'.repeat(76)}\r\n`.repeat(52);

/** The live child processes of `pid` (its smtpd workers). */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
      .filter(alive);
  } catch {
    return [];
  }
}

/** Whether `pid` runs (a zombie does not). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** A process's status field in KiB (VmHWM, VmRSS). */
export function statusKiB(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
    readFileSync(`/proc/${pid}/status`, 'utf8'),
  );
  return m ? Number(m[1]) : 0;
}

/**
 * Resolves once `done()` holds, checking every 50 ms (process states have no event to
 * wait on); false after `ms`.
 */
export async function poll(done: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** The pids in `postern/NAME[pid]` log lines of `output`. */
export function pidsOf(output: readonly string[], name: string): Set<number> {
  const re = new RegExp(`postern/${name}\\[(\\d+)\\]`);
  return new Set(output.flatMap((l) => re.exec(l)?.[1] ?? []).map(Number));
}

/**
 * `sessions` SMTP sessions, each sending up to `perSession` messages to recipients of
 * their own (`PREFIX-sS-mI@remote.example`); the recipients of every message that got
 * its 250 go into `acked`. A session whose server dies ends; `stop()` ends them all
 * after the message in progress. `body` (CRLF lines, no line of a lone dot) follows a
 * Subject header naming the recipient.
 */
export function load(
  port: number,
  prefix: string,
  sessions: number,
  perSession: number,
  acked: Set<string>,
  body = BODY,
): { done: Promise<void>; stop(): void } {
  let stopped = false;
  const session = async (s: number): Promise<void> => {
    let c: SmtpDialogue | undefined;
    try {
      c = await SmtpDialogue.open(port);
      if ((await c.read()).code !== 220) return;
      await c.expect('EHLO load.example', 250);
      for (let i = 0; i < perSession && !stopped; i++) {
        const rcpt = `${prefix}-s${s}-m${i}@remote.example`;
        await c.expect('MAIL FROM:<load@client.example>', 250);
        await c.expect(`RCPT TO:<${rcpt}>`, 250);
        await c.expect('DATA', 354);
        const r = await c.command(`Subject: ${rcpt}\r\n\r\n${body}.`);
        if (r.code !== 250) return;
        acked.add(rcpt);
      }
      await c.command('QUIT');
    } catch {
      // The process serving this session died: what it acknowledged is recorded.
    } finally {
      c?.close();
    }
  };
  return {
    done: Promise.all(Array.from({ length: sessions }, (_, s) => session(s))).then(() => {}),
    stop: () => {
      stopped = true;
    },
  };
}

/** A running `postern serve` relaying to its own SMTP sink. */
export interface WorkerServer {
  readonly dir: string;
  readonly sink: SinkServer;
  readonly config: object;
  readonly server: PosternProcess;
}

/**
 * Servers for one describe block, each with `layout` (its worker parameters) in its
 * config; what they leave is removed after the block. `refused` runs `postern serve` on
 * a config that must not start.
 */
export function workerServers(layout: object): {
  setUp(extra?: object): Promise<WorkerServer>;
  refused(config: object): Promise<PosternRun>;
  refusedOnTakenPort(): Promise<{ run: PosternRun; port: number }>;
  track(server: PosternProcess): void;
} {
  const dirs: string[] = [];
  const running: PosternProcess[] = [];
  const sinks: SinkServer[] = [];
  afterAll(async () => {
    await Promise.all(running.map((p) => p.stop('SIGKILL')));
    await Promise.all(sinks.map((s) => s.close()));
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });
  const newDir = async (): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), 'postern-workers-'));
    dirs.push(dir);
    return dir;
  };
  const refused = async (config: object): Promise<PosternRun> => {
    const dir = await newDir();
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
  };
  return {
    async setUp(extra = {}) {
      const dir = await newDir();
      const sink = await startSink();
      sinks.push(sink);
      const config = {
        myhostname: HOST,
        smtpd: [{ listen: '127.0.0.1:0' }],
        relayhost: `[127.0.0.1]:${sink.port}`,
        smtpTlsSecurityLevel: 'none',
        ...layout,
        ...extra,
      };
      const server = await startPostern(dir, config);
      running.push(server);
      return { dir, sink, config, server };
    },
    refused,
    /** A start whose SMTP port another process listens on. */
    async refusedOnTakenPort() {
      const taken = createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      const port = (taken.address() as AddressInfo).port;
      try {
        const run = await refused({ ...layout, smtpd: [{ listen: `127.0.0.1:${port}` }] });
        return { run, port };
      } finally {
        await new Promise<void>((resolve) => taken.close(() => resolve()));
      }
    },
    track(server) {
      running.push(server);
    },
  };
}

/**
 * Sends one message of `megabytes` MB (1000-byte lines) on `port`; resolves with its
 * queue ID once the 250 came.
 */
export async function sendMegabytes(port: number, megabytes: number): Promise<string> {
  const c = await SmtpDialogue.open(port);
  await c.read();
  await c.expect('EHLO big.example', 250);
  await c.expect('MAIL FROM:<big@client.example>', 250);
  await c.expect('RCPT TO:<big@remote.example>', 250);
  await c.expect('DATA', 354);
  const chunk = Buffer.from(`${'y'.repeat(998)}\r\n`.repeat(1024)); // 1 MB
  c.write('Subject: big\r\n\r\n');
  for (let i = 0; i < megabytes; i++) {
    if (!c.socket.write(chunk)) await new Promise((r) => c.socket.once('drain', r));
  }
  const reply = await c.command('.');
  await c.command('QUIT');
  c.close();
  const id = /queued as ([0-9A-Za-z]+)/.exec(reply.text)?.[1];
  if (reply.code !== 250 || !id)
    throw new Error(`the ${megabytes} MB message was refused: ${reply.text}`);
  return id;
}

/**
 * Sends one message of `megabytes` MB on `server`'s port and waits until it is removed
 * (delivered or discarded); resolves with its queue ID and how far each of `pids` (the
 * server's own process unless given) peaked above its resident set before, in KiB.
 */
export async function peakGrowth(
  server: PosternProcess,
  megabytes: number,
  pids: readonly number[] = [server.child.pid!],
): Promise<{ id: string; grewKiB: number[] }> {
  // Peak resident set from now on (as root, or as the owner of the processes).
  for (const pid of pids) writeFileSync(`/proc/${pid}/clear_refs`, '5');
  const before = pids.map((pid) => statusKiB(pid, 'VmRSS'));
  const id = await sendMegabytes(server.port, megabytes);
  await server.waitForLine(new RegExp(`${id}: removed`), 60_000);
  return { id, grewKiB: pids.map((pid, i) => statusKiB(pid, 'VmHWM') - before[i]!) };
}

/**
 * The end of a kill -9 under `traffic`: ends the traffic, checks that some acknowledged
 * mail was still undelivered (else the kill proved nothing), makes the sink fast again
 * and starts the server again on the same queue; resolves with the new server once every
 * acknowledged recipient has been delivered at least once.
 */
export async function restartDelivers(
  killed: WorkerServer,
  traffic: { done: Promise<void>; stop(): void },
  acked: ReadonlySet<string>,
  track: (server: PosternProcess) => void,
): Promise<PosternProcess> {
  const { dir, sink, config } = killed;
  traffic.stop();
  await traffic.done;
  expect([...acked].filter((r) => !sink.byRecipient.has(r)).length).toBeGreaterThan(0);
  sink.slow(HOST, 0);
  const second = await startPostern(dir, config);
  track(second);
  expect(await sink.waitFor(acked, 60_000)).toBe(true);
  expect([...acked].filter((r) => (sink.byRecipient.get(r) ?? 0) < 1)).toEqual([]);
  return second;
}

/**
 * Sends a 4 KB message to each of `recipients` through a pool of nodemailer connections;
 * resolves with the queue IDs of the 250 replies, in order. Throws on a reply without one.
 */
export async function sendThroughNodemailer(
  port: number,
  recipients: readonly string[],
): Promise<string[]> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    ignoreTLS: true,
    pool: true,
    maxConnections: 8,
    maxMessages: 10,
  });
  try {
    const infos = await Promise.all(
      recipients.map((to) =>
        transport.sendMail({ from: 'app@client.example', to, subject: to, text: BODY }),
      ),
    );
    return infos.map((info) => {
      const id = /queued as ([0-9A-Za-z]+)/.exec(info.response)?.[1];
      if (!id) throw new Error(`no queue ID in the reply: ${info.response}`);
      return id;
    });
  } finally {
    transport.close();
  }
}

/** The banner `reloadWithSecondListener` gives the server. */
export const RELOADED_BANNER = `${HOST} ESMTP after`;

/**
 * postfix reload with a new banner (RELOADED_BANNER) and a second SMTP listener: writes
 * them over the server's config file (`config` and these two) and sends SIGHUP;
 * resolves with the two SMTP ports once the reload is logged as done (the primary's
 * line comes once every worker has applied it), the first still the server's own.
 */
export async function reloadWithSecondListener(
  server: PosternProcess,
  dir: string,
  config: object,
): Promise<number[]> {
  writeFileSync(
    join(dir, 'postern.json'),
    JSON.stringify({
      ...config,
      smtpdBanner: RELOADED_BANNER,
      smtpd: [{ listen: '127.0.0.1:0' }, { listen: '127.0.0.1:0' }],
    }),
  );
  server.child.kill('SIGHUP');
  const reloaded = await server.waitForLine(/reload: listening on/);
  const ports = [...reloaded.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
  expect(ports).toHaveLength(2);
  expect(ports[0]).toBe(server.port);
  return ports;
}

/** The lines of `output` that are not each one whole syslog-format line of Postern's. */
export function brokenLogLines(output: readonly string[]): string[] {
  const syslogLine = /^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ postern\/[\w-]+\[\d+\]: \S/;
  return output.filter((l) => !syslogLine.test(l));
}
