#!/usr/bin/env node
/**
 * What writing with the recipient's rights costs: local delivery throughput into a
 * home Maildir (`homeMailbox: "Maildir/"`) as root, through LocalDeliveryAgent, three
 * ways, alternated over ROUNDS rounds:
 * - server: the server writes the Maildir itself (a user database entry without a
 *   uid, so no helper is involved: what every delivery did before rights existed);
 * - pooled: a real passwd user, so the .forward lookup and the Maildir write run in a
 *   helper process with the user's rights, reused between deliveries (maxIdle 100s);
 * - spawned: the same with maxIdle 0, one helper process started per delivery.
 * The agents live for the whole run, as in a server, so pooled helpers start once.
 * Every round lists msg/s and CPU per message (this process, its live helpers and
 * the helpers it has reaped, from /proc); the medians and ratios come last.
 *
 * Needs root (it creates a user named ptloc... and removes it). Run with
 * `npm run bench:local` (builds dist first). Environment: ROUNDS (default 5),
 * MESSAGES (per round, default 400; spawned runs a quarter), CONCURRENCY (default 2,
 * local_destination_concurrency_limit), SIZE (bytes, default 4096).
 */

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { LocalDeliveryAgent, resolveParameters } from '../dist/index.js';
import { median } from './lib/net.mjs';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const MESSAGES = Number(process.env.MESSAGES ?? 400);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 2);
const SIZE = Number(process.env.SIZE ?? 4096);

if (process.getuid?.() !== 0) {
  console.error('bench/local-delivery.mjs measures deliveries as root: run it as root');
  process.exit(1);
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

function ticksOf(stat) {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    ppid: Number(fields[1]),
    own: Number(fields[11]) + Number(fields[12]),
    children: Number(fields[13]) + Number(fields[14]),
  };
}

/**
 * CPU seconds of this process, of its live helpers, and of the children it has
 * reaped (/proc: utime, stime, cutime, cstime).
 */
function cpuSeconds() {
  const self = ticksOf(readFileSync('/proc/self/stat', 'utf8'));
  let ticks = self.own + self.children;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const t = ticksOf(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      // A helper that has ended but is not reaped yet still shows its times here.
      if (t.ppid === process.pid) ticks += t.own;
    } catch {
      // Ended meanwhile: its time is in cutime/cstime once reaped.
    }
  }
  return ticks / CLK_TCK;
}

function message(i) {
  const head = `From: a@example.org\r\nTo: u@example.com\r\nSubject: bench ${i}\r\n\r\n`;
  const line = 'x'.repeat(76);
  let body = '';
  while (head.length + body.length < SIZE) body += `${line}\r\n`;
  return Buffer.from(head + body);
}

function request(address, bytes, i) {
  return {
    queueId: `BENCH${i}`,
    transport: 'local',
    nexthop: 'example.com',
    sender: 'a@example.org',
    recipients: [{ id: 0, address, originalAddress: address }],
    size: bytes.length,
    bodyType: '7BIT',
    smtputf8: false,
    eightBit: false,
    arrivalTime: Date.now(),
    source: { component: 'smtpd', protocol: 'ESMTP' },
    openContent: () => Readable.from([bytes]),
    signal: new AbortController().signal,
  };
}

/** A LocalDeliveryAgent for `kind`, kept for every round as a server keeps it. */
function makeAgent(kind, user) {
  const params = resolveParameters({
    myhostname: 'mx.example.com',
    mydestination: ['example.com'],
    myorigin: 'example.com',
    homeMailbox: 'Maildir/',
    localUserDatabase: 'passwd',
    maxIdle: kind === 'spawned' ? 0 : 100_000,
  });
  const users =
    kind === 'server'
      ? { lookup: async (name) => (name === user.name ? { name, home: user.home } : undefined) }
      : undefined;
  return new LocalDeliveryAgent({ params, ...(users ? { users } : {}) });
}

async function round(agent, kind, user, count) {
  const bytes = message(0);
  const address = `${user.name}@example.com`;
  let next = 0;
  let failed = 0;
  const cpu0 = cpuSeconds();
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) {
        const i = next++;
        await agent.deliver(request(address, bytes, i), {
          recipient: (_id, r) => {
            if (r.status !== 'sent') failed++;
          },
          destination: () => undefined,
        });
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = cpuSeconds() - cpu0;
  if (failed > 0) throw new Error(`${kind}: ${failed} deliveries failed`);
  await fs.rm(path.join(user.home, 'Maildir'), { recursive: true, force: true });
  return { rate: count / seconds, cpuMs: (cpu * 1000) / count };
}

async function main() {
  const base = await fs.mkdtemp(path.join(os.tmpdir(), 'postern-bench-local-'));
  await fs.chmod(base, 0o755);
  const name = `ptloc${[...randomBytes(5)].map((b) => String.fromCharCode(97 + (b % 26))).join('')}`;
  const home = path.join(base, name);
  execFileSync('useradd', ['-M', '-U', '-d', home, '-s', '/usr/sbin/nologin', name]);
  let agents = {};
  try {
    const uid = Number(execFileSync('id', ['-u', name]).toString());
    const gid = Number(execFileSync('id', ['-g', name]).toString());
    await fs.mkdir(home, { mode: 0o755 });
    await fs.chown(home, uid, gid);
    const user = { name, home };
    console.log(
      `local delivery into ~/Maildir as root: ${MESSAGES} x ${SIZE} B per round (spawned: ${Math.ceil(MESSAGES / 4)}), concurrency ${CONCURRENCY}, ${ROUNDS} rounds after a warm-up`,
    );
    const kinds = ['server', 'pooled', 'spawned'];
    agents = Object.fromEntries(kinds.map((k) => [k, makeAgent(k, user)]));
    for (const k of kinds) await round(agents[k], k, user, 20);
    const results = { server: [], pooled: [], spawned: [] };
    for (let r = 1; r <= ROUNDS; r++) {
      const line = [];
      for (const kind of kinds) {
        const count = kind === 'spawned' ? Math.ceil(MESSAGES / 4) : MESSAGES;
        const res = await round(agents[kind], kind, user, count);
        results[kind].push(res);
        line.push(`${kind} ${res.rate.toFixed(0)} msg/s ${res.cpuMs.toFixed(2)} ms CPU/msg`);
      }
      const ratio = (k) => (results[k][r - 1].rate / results.server[r - 1].rate).toFixed(2);
      console.log(
        `round ${r}: ${line.join(' | ')} | pooled/server ${ratio('pooled')}x, spawned/server ${ratio('spawned')}x`,
      );
    }
    const med = (k, f) => median(results[k].map(f));
    const ratios = (k) => median(results[k].map((x, i) => x.rate / results.server[i].rate));
    console.log('medians:');
    for (const k of kinds)
      console.log(
        `  ${k.padEnd(8)} ${med(k, (x) => x.rate).toFixed(0)} msg/s, ${med(k, (x) => x.cpuMs).toFixed(2)} ms CPU/msg${k === 'server' ? '' : `, throughput ratio to server ${ratios(k).toFixed(2)}x (median of per-round ratios)`}`,
      );
  } finally {
    // The helpers run as the user: they end before the user goes.
    await Promise.all(Object.values(agents).map((a) => a.close()));
    execFileSync('userdel', [name]);
    await fs.rm(base, { recursive: true, force: true });
  }
}

await main();
