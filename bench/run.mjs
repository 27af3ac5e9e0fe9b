#!/usr/bin/env node
// Acceptance throughput: Postfix's smtp-source drives each server in turn with 4 KB
// messages; reported per round and as medians, ratios of medians and per-round ratios,
// server CPU per message and peak resident memory.
//
// Method (warm, long-lived contenders): every contender is started once and given one
// uncounted warm-up load of the same shape (so the counted rounds meet a warmed V8 and
// warm caches, as a server in service would be); then the contenders alternate round by
// round (A B C A B C ...) against their running servers. Per round: each process of the
// contender gets its peak resident set reset (5 written to /proc/PID/clear_refs) and the
// peaks of the summed VmHWM and of the summed Pss (bench/lib/memory.mjs: shared pages
// counted once, the fairer total for Postfix's dozens of processes) are sampled while
// the round lasts; server CPU is that of the contender's whole process tree
// (bench/lib/cpu.mjs: a cgroup as root, exited processes included) from the first
// connection until the server is idle again, so the queue draining to discard after the
// load counts too; Postfix's queue is drained before the next contender runs, so that no
// work of one round spills into another.
//
// Contenders (each on 127.0.0.1, a free port):
//   smtp-sink  Postfix's protocol-only sink: the upper bound (no disk)
//   postfix    Postfix itself (smtpd + cleanup fsync before 250, delivery to discard): a
//              private instance (test/peers/postfix.mjs); needs Postfix and root
//   postern    `postern serve`, its default durable store (durable before 250), delivery
//              to discard
//
// Large messages: --size 10000000 --sessions 4 --messages 16 adds MB/s to the report.
// Usage: npm run bench [-- --messages 4000 --sessions 20 --runs 3 --size 4096]
//        [--only postern,postfix] [--without-postfix] [--before DIR] [--cpu-prof DIR]
//        [--set KEY=VALUE ...]
// --before DIR adds `postern-before`: the build (dist/) of another checkout, e.g. the commit
// before a change, run in the same rounds. --cpu-prof DIR writes a V8 CPU profile of each
// `postern serve` there when it stops (the warm-up included). --set KEY=VALUE (repeatable)
// adds a parameter to the config of `postern` (not `postern-before`), e.g.
// --set smtpdWorkerProcesses=2; a VALUE that parses as JSON is taken as such;
// --set-before KEY=VALUE does the same for `postern-before`. With smtpd worker processes
// each process writes its own profile, into DIR/CONTENDER.
// Without Postfix (or not as root) it stops and says what is missing, unless
// --without-postfix asks for the Node figures alone.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { findCommand, groupMembers } from '../test/peers/host.mjs';
import { PostfixInstance } from '../test/peers/postfix.mjs';
import { startSmtpSink } from '../test/peers/smtp-sink.mjs';
import { paramsOf } from './lib/config-params.mjs';
import { cpuMeter, settle } from './lib/cpu.mjs';
import { watchPeak } from './lib/memory.mjs';
import { freePort, median, waitForPort } from './lib/net.mjs';
import { requirePeers, stopOnSignals } from './lib/peers.mjs';
import { sourceLoad } from './lib/smtp-source.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    messages: { type: 'string', default: '4000' },
    sessions: { type: 'string', default: '20' },
    runs: { type: 'string', default: '3' },
    size: { type: 'string', default: '4096' },
    only: { type: 'string' },
    'without-postfix': { type: 'boolean', default: false },
    before: { type: 'string' },
    'cpu-prof': { type: 'string' },
    set: { type: 'string', multiple: true, default: [] },
    'set-before': { type: 'string', multiple: true, default: [] },
  },
});
/** The --set parameters, for the `postern` contender's config. */
const extraParams = paramsOf('set', opt.set);
/** The --set-before parameters, for the `postern-before` contender's config. */
const beforeParams = paramsOf('set-before', opt['set-before']);
const MESSAGES = Number(opt.messages);
const SESSIONS = Number(opt.sessions);
const RUNS = Number(opt.runs);
const SIZE = Number(opt.size);

const wanted = (name) => !opt.only || opt.only.split(',').includes(name);
const withPostfix = !opt['without-postfix'] && wanted('postfix');
requirePeers('npm run bench', { commands: ['smtp-source', 'smtp-sink'], postfix: withPostfix });
stopOnSignals();

let cpuMethod;

/**
 * One round against a running server: msg/s, server CPU per message, and the peaks of
 * the contender's summed VmHWM and summed Pss (shared pages counted once: the fairer
 * figure for Postfix's many processes).
 */
async function drive(server, tool) {
  const peak = watchPeak(server.pids);
  const meter = cpuMeter(server.root);
  cpuMethod = meter.method;
  const t0 = process.hrtime.bigint();
  let failure;
  await sourceLoad(server.port, {
    sessions: SESSIONS,
    messages: MESSAGES,
    size: SIZE,
    tool,
  }).catch((err) => (failure = err));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await settle(meter);
  const cpuUs = meter.usageUs();
  meter.close();
  const { hwm, pss } = peak.stop();
  if (failure) throw server.died?.() ? new Error(`${server.died()}; ${failure.message}`) : failure;
  await server.drain?.();
  return {
    rate: MESSAGES / secs,
    cpuMsPerMsg: cpuUs / 1000 / MESSAGES,
    rssMiB: hwm / 1024,
    pssMiB: pss / 1024,
  };
}

const contenders = [];

contenders.push({
  name: 'smtp-sink',
  async start() {
    const sink = await startSmtpSink();
    return { port: sink.port, pids: () => [sink.pid], root: sink.pid, stop: sink.stop };
  },
});

if (withPostfix) {
  contenders.push({
    name: 'postfix',
    async start() {
      const pf = await PostfixInstance.create({ log: false });
      await pf.start();
      return {
        port: pf.port,
        pids: () => pf.processes(),
        root: pf.masterPid,
        // Until the queue has drained to discard, so that no work of a round spills into
        // the next contender's.
        drain: async () => {
          for (let i = 0; i < 600 && (await pf.queued()) > 0; i++) {
            await new Promise((r) => setTimeout(r, 100));
          }
        },
        stop: () => pf.stop(),
      };
    },
  });
}

function posternContender(name, protocol, checkout = root, params = {}) {
  const profile = opt['cpu-prof']
    ? [
        '--cpu-prof',
        // One directory per contender, Node's default names (with the pid) within it: the
        // smtpd worker processes inherit these flags and write profiles of their own.
        '--cpu-prof-dir',
        join(resolve(opt['cpu-prof']), name),
      ]
    : [];
  return {
    name,
    tool: protocol === 'qmqp' ? 'qmqp-source' : 'smtp-source',
    async start() {
      const port = await freePort();
      const dir = mkdtempSync(join(tmpdir(), 'postern-bench-'));
      const listen = { listen: `127.0.0.1:${port}` };
      writeFileSync(
        join(dir, 'postern.json'),
        JSON.stringify({
          myhostname: 'mx.bench.test',
          smtpd: protocol === 'smtp' ? [listen] : [],
          qmqpd: protocol === 'qmqp' ? [listen] : [],
          qmqpdAuthorizedClients: ['127.0.0.1'],
          defaultTransport: 'discard',
          queueDirectory: join(dir, 'queue'),
          ...params,
        }),
      );
      const p = spawn(
        process.execPath,
        [
          ...profile,
          join(checkout, 'bin/postern.mjs'),
          'serve',
          '--config',
          join(dir, 'postern.json'),
        ],
        // Its own process group: every process of the server (smtpd workers too) is counted.
        { stdio: 'ignore', cwd: dir, detached: true },
      );
      // A server that dies (an exit code, or a signal such as V8's abort) is said by name.
      const died = () =>
        p.exitCode !== null || p.signalCode !== null
          ? `${name}: postern serve exited (${p.exitCode ?? p.signalCode})`
          : undefined;
      await waitForPort(port, 15_000, died);
      return {
        port,
        pids: () => groupMembers(p.pid),
        root: p.pid,
        died,
        stop: async () => {
          if (!died()) {
            await new Promise((r) => {
              p.once('exit', r);
              p.kill('SIGTERM');
            });
          }
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

contenders.push(posternContender('postern', 'smtp', root, extraParams));
if (opt.before)
  contenders.push(posternContender('postern-before', 'smtp', resolve(opt.before), beforeParams));
if (findCommand('qmqp-source')) contenders.push(posternContender('postern-qmqp', 'qmqp'));

const selected = contenders.filter((c) => wanted(c.name));
const results = Object.fromEntries(selected.map((c) => [c.name, []]));

console.log(
  `acceptance: ${MESSAGES} messages x ${SIZE} bytes, ${SESSIONS} sessions, smtp-source; each server started once and warmed with one uncounted load, then ${RUNS} counted rounds, alternating`,
);
const servers = new Map();
try {
  for (const c of selected) servers.set(c.name, await c.start());
  for (let run = 0; run <= RUNS; run++) {
    for (const c of selected) {
      const r = await drive(servers.get(c.name), c.tool ?? 'smtp-source');
      if (run > 0) results[c.name].push(r);
      console.log(
        `  ${run === 0 ? 'warm-up' : `run ${run}`}  ${c.name.padEnd(14)} ${r.rate.toFixed(0).padStart(6)} msg/s  ${r.cpuMsPerMsg.toFixed(2)} ms CPU/msg  ${r.rssMiB.toFixed(0)} MiB peak RSS (Pss ${r.pssMiB.toFixed(0)})`,
      );
    }
  }
} finally {
  for (const server of servers.values()) await server.stop();
}

console.log(`\nserver CPU counted by ${cpuMethod}\nmedians`);
const med = {};
for (const c of selected) {
  const rs = results[c.name];
  med[c.name] = {
    rate: median(rs.map((r) => r.rate)),
    cpu: median(rs.map((r) => r.cpuMsPerMsg)),
    rss: Math.max(...rs.map((r) => r.rssMiB)),
    pss: Math.max(...rs.map((r) => r.pssMiB)),
  };
  console.log(
    `  ${c.name.padEnd(14)} ${med[c.name].rate.toFixed(0).padStart(6)} msg/s  ${med[c.name].cpu.toFixed(2)} ms CPU/msg  ${med[c.name].rss.toFixed(0)} MiB peak RSS (Pss ${med[c.name].pss.toFixed(0)}; highest round)`,
  );
}
if (med.postern) {
  for (const peer of ['smtp-sink', 'postfix', 'postern-before', 'postern-qmqp']) {
    if (med[peer]) {
      const perRound = results.postern.map((r, i) => (r.rate / results[peer][i].rate).toFixed(2));
      console.log(
        `  ratio postern/${peer}: ${(med.postern.rate / med[peer].rate).toFixed(2)}x throughput (per round ${perRound.join(' / ')}), ${(med.postern.cpu / med[peer].cpu).toFixed(2)}x CPU per message`,
      );
    }
  }
}

// Large messages (--size 10000000): throughput in MB/s, each round and the median.
if (SIZE >= 1_000_000) {
  console.log('\nMB/s (rounds; median)');
  for (const c of selected) {
    const mbs = (rate) => ((rate * SIZE) / 1e6).toFixed(1);
    const rounds = results[c.name].map((r) => mbs(r.rate)).join(' / ');
    console.log(`  ${c.name.padEnd(10)} ${rounds}; median ${mbs(med[c.name].rate)} MB/s`);
  }
}
