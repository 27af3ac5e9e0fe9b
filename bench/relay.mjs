#!/usr/bin/env node
// End-to-end relay throughput: smtp-source → MTA (queue, fsync) → SMTP client → smtp-sink.
//
// Contenders, alternated in one run (A B A B ...), both relaying to the same smtp-sink:
//   postern   `postern serve` (its own process; default store, relayhost = the sink)
//   postfix   a private Postfix instance (test/peers/postfix.mjs) relaying everything to
//             the sink (relayhost = the sink, default_transport = smtp)
// A run is timed from the first connection until the last message was delivered (the
// MTA's own "status=sent" count in its maillog reaches the message count). Reported per
// run and as medians: msg/s, server CPU per message (bench/lib/cpu.mjs: the MTA's whole
// process tree, in a cgroup as root so that exited processes count, from the first
// connection until the MTA is idle again after the last delivery), peak resident memory
// (bench/lib/memory.mjs: VmHWM of postern serve; the peak sum over Postfix's processes),
// the ratio of medians, and the connection reuse rate of Postfix's SMTP client
// (deliveries logged with conn_use=).
//
// Needs Postfix's tools, root for the Postfix contender (--without-postfix runs Postern
// alone) and a build (dist/), which `npm run bench:relay` makes when it is stale.
// --cpu-prof DIR writes a V8 CPU profile of postern serve to DIR (node --cpu-prof).
// Usage: npm run bench:relay [-- --messages 2000 --sessions 20 --size 4096 --runs 5]
//        [--without-postfix] [--cpu-prof DIR]
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PostfixInstance } from '../test/peers/postfix.mjs';
import { startSmtpSink } from '../test/peers/smtp-sink.mjs';
import { cpuMeter, settle } from './lib/cpu.mjs';
import { mib, watchPeak } from './lib/memory.mjs';
import { median } from './lib/net.mjs';
import { requirePeers, stopOnSignals } from './lib/peers.mjs';
import { startPosternServe } from './lib/postern-serve.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    sessions: { type: 'string', default: '20' },
    runs: { type: 'string', default: '5' },
    size: { type: 'string', default: '4096' },
    'without-postfix': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
  },
});
const MESSAGES = Number(opt.messages);
const SESSIONS = Number(opt.sessions);
const RUNS = Number(opt.runs);
const SIZE = Number(opt.size);

const withPostfix = !opt['without-postfix'];
requirePeers('npm run bench:relay', {
  commands: ['smtp-source', 'smtp-sink'],
  postfix: withPostfix,
});
if (!existsSync(join(root, 'dist/index.js'))) {
  console.error('npm run bench:relay: no build in dist/; run it through npm, which builds first');
  process.exit(69);
}
stopOnSignals();

function source(port) {
  return new Promise((res, rej) => {
    const p = spawn(
      'smtp-source',
      [
        '-s',
        String(SESSIONS),
        '-m',
        String(MESSAGES),
        '-l',
        String(SIZE),
        '-f',
        'load@client.example',
        '-t',
        'sink@remote.example',
        `127.0.0.1:${port}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) =>
      code === 0 ? res() : rej(new Error(`smtp-source exited ${code}: ${err}`)),
    );
  });
}

async function waitUntil(fn, timeoutMs = 300_000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('timed out waiting for deliveries');
}

/** Share of `status=sent` log lines that say the connection was reused (conn_use=N). */
function reuseRate(lines) {
  const sent = lines.filter((l) => / status=sent /.test(l));
  return sent.filter((l) => /conn_use=\d+/.test(l)).length / Math.max(1, sent.length);
}

// The sink both MTAs relay to.
const sink = await startSmtpSink();
const sinkHop = `[127.0.0.1]:${sink.port}`;

const postfix = withPostfix ? await PostfixInstance.create({ relayhost: sinkHop }) : undefined;
await postfix?.start();
const postern = await startPosternServe(
  { myhostname: 'postern.bench.test', relayhost: sinkHop, smtpTlsSecurityLevel: 'none' },
  { nodeArgs: opt['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', resolve(opt['cpu-prof'])] : [] },
);

const servers = {
  postern: {
    port: postern.port,
    pids: () => [postern.pid],
    root: postern.pid,
    sent: () => postern.sent(),
  },
  postfix: postfix && {
    port: postfix.port,
    pids: () => postfix.processes(),
    root: postfix.masterPid,
    sent: () => postfix.delivered('smtp'),
  },
};
const contenders = withPostfix ? ['postern', 'postfix'] : ['postern'];
const results = { postern: [], postfix: [] };

try {
  for (let run = 0; run <= RUNS; run++) {
    for (const name of contenders) {
      const server = servers[name];
      const before = await server.sent();
      const meter = cpuMeter(server.root);
      const peak = watchPeak(server.pids);
      const t0 = process.hrtime.bigint();
      await source(server.port);
      await waitUntil(async () => (await server.sent()) - before >= MESSAGES);
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      await settle(meter);
      const r = {
        rate: MESSAGES / secs,
        cpu: meter.usageUs() / 1000 / MESSAGES,
        ...peak.stop(),
      };
      meter.close();
      if (run === 0) console.log(`${name}: server CPU counted by ${meter.method}`);
      if (run > 0) results[name].push(r); // run 0 is the warm-up
      console.log(
        `${run === 0 ? 'warm-up' : `run ${run}`} ${name.padEnd(7)} ${r.rate.toFixed(0).padStart(5)} msg/s end-to-end (${secs.toFixed(2)} s)  ${r.cpu.toFixed(2)} ms CPU/msg  peak RSS ${mib(r.hwm)} MiB (Pss ${mib(r.pss)})`,
      );
    }
  }
} finally {
  await postern.stop();
  const pfLines = (await postfix?.logLines()) ?? [];
  await postfix?.stop();
  await sink.stop();
  if (results.postern.length > 0) {
    console.log(`\n${MESSAGES} x ${SIZE} B, ${SESSIONS} sessions, ${RUNS} counted runs each`);
    const med = {};
    for (const name of contenders) {
      const rs = results[name];
      med[name] = {
        rate: median(rs.map((r) => r.rate)),
        cpu: median(rs.map((r) => r.cpu)),
        hwm: median(rs.map((r) => r.hwm)),
        pss: median(rs.map((r) => r.pss)),
      };
      // Postern's delivery lines carry no conn_use= yet: its reuse is not in its log.
      const reuse =
        name === 'postfix'
          ? `; connection reuse ${(reuseRate(pfLines.filter(isPostfixSmtp)) * 100).toFixed(1)}%`
          : '';
      console.log(
        `${name}: median ${med[name].rate.toFixed(0)} msg/s, ${med[name].cpu.toFixed(2)} ms CPU/msg, peak RSS ${mib(med[name].hwm)} MiB (Pss ${mib(med[name].pss)})${reuse}`,
      );
    }
    if (med.postfix) {
      const perRound = results.postern.map((r, i) => (r.rate / results.postfix[i].rate).toFixed(2));
      console.log(
        `ratio postern/postfix: ${(med.postern.rate / med.postfix.rate).toFixed(2)}x (per round ${perRound.join(' / ')}), ${(med.postern.cpu / med.postfix.cpu).toFixed(2)}x CPU per message`,
      );
    }
  }
}

function isPostfixSmtp(line) {
  return /postfix\/smtp\[/.test(line);
}
