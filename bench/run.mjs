#!/usr/bin/env node
// Acceptance throughput: Postfix's smtp-source drives each server in turn (A B C A B C ...)
// with 4 KB messages; reported as medians, ratios of medians, server CPU per message and
// peak resident memory (VmHWM, summed over the contender's processes). Server CPU is that
// of the contender's whole process tree (bench/lib/cpu.mjs: a cgroup as root, exited
// processes included) from the first connection until the server is idle again, so the
// queue draining to discard after the load counts too.
//
// Contenders (each on 127.0.0.1, a free port):
//   smtp-sink  Postfix's protocol-only sink: the upper bound (no disk)
//   postfix    Postfix itself (smtpd + cleanup fsync before 250, delivery to discard): a
//              private instance (test/peers/postfix.mjs); needs Postfix and root
//   postern    `postern serve`, FileQueueStore (durable before 250), delivery to discard
//
// Large messages: --size 10000000 --sessions 4 --messages 16 adds MB/s to the report.
// Usage: npm run bench [-- --messages 4000 --sessions 20 --runs 3 --size 4096]
//        [--only postern,postfix] [--without-postfix] [--before DIR]
// --before DIR adds `postern-before`: the build (dist/) of another checkout, e.g. the commit
// before a change, run in the same rounds.
// Without Postfix (or not as root) it stops and says what is missing, unless
// --without-postfix asks for the Node figures alone.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { findCommand } from '../test/peers/host.mjs';
import { PostfixInstance } from '../test/peers/postfix.mjs';
import { startSmtpSink } from '../test/peers/smtp-sink.mjs';
import { cpuMeter, settle } from './lib/cpu.mjs';
import { peakKiB } from './lib/memory.mjs';
import { freePort, median, waitForPort } from './lib/net.mjs';
import { requirePeers, stopOnSignals } from './lib/peers.mjs';

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
  },
});
const MESSAGES = Number(opt.messages);
const SESSIONS = Number(opt.sessions);
const RUNS = Number(opt.runs);
const SIZE = Number(opt.size);

const wanted = (name) => !opt.only || opt.only.split(',').includes(name);
const withPostfix = !opt['without-postfix'] && wanted('postfix');
requirePeers('npm run bench', { commands: ['smtp-source', 'smtp-sink'], postfix: withPostfix });
stopOnSignals();

let cpuMethod;

async function drive(port, pidsFn, root, tool = 'smtp-source') {
  const meter = cpuMeter(root);
  cpuMethod = meter.method;
  const t0 = process.hrtime.bigint();
  const r = spawnSync(
    tool,
    [
      '-s',
      String(SESSIONS),
      '-m',
      String(MESSAGES),
      '-l',
      String(SIZE),
      '-f',
      'bench@client.example',
      '-t',
      'sink@remote.example',
      `127.0.0.1:${port}`,
    ],
    { encoding: 'utf8', timeout: 600_000 },
  );
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await settle(meter);
  const cpuUs = meter.usageUs();
  meter.close();
  if (r.status !== 0) throw new Error(`${tool} failed (${r.status}): ${r.stderr}`);
  return {
    rate: MESSAGES / secs,
    cpuMsPerMsg: cpuUs / 1000 / MESSAGES,
    // VmHWM summed: each process's high-water mark since it started (a server is
    // started afresh for every run).
    rssMiB: peakKiB(pidsFn()) / 1024,
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
        stop: async () => {
          // Let the queue drain to discard, so that no work of this run spills into the next.
          for (let i = 0; i < 600 && (await pf.queued()) > 0; i++) {
            await new Promise((r) => setTimeout(r, 100));
          }
          await pf.stop();
        },
      };
    },
  });
}

function posternContender(name, protocol, checkout = root) {
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
        }),
      );
      const p = spawn(
        process.execPath,
        [join(checkout, 'bin/postern.mjs'), 'serve', '--config', join(dir, 'postern.json')],
        {
          stdio: 'ignore',
          cwd: dir,
        },
      );
      await waitForPort(port);
      return {
        port,
        pids: () => [p.pid],
        root: p.pid,
        stop: async () => {
          await new Promise((r) => {
            p.once('exit', r);
            p.kill('SIGTERM');
          });
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

contenders.push(posternContender('postern', 'smtp'));
if (opt.before) contenders.push(posternContender('postern-before', 'smtp', resolve(opt.before)));
if (findCommand('qmqp-source')) contenders.push(posternContender('postern-qmqp', 'qmqp'));

const selected = contenders.filter((c) => wanted(c.name));
const results = Object.fromEntries(selected.map((c) => [c.name, []]));

console.log(
  `acceptance: ${MESSAGES} messages x ${SIZE} bytes, ${SESSIONS} sessions, smtp-source, ${RUNS} counted runs after a warm-up, alternating`,
);
for (let run = 0; run <= RUNS; run++) {
  for (const c of selected) {
    const server = await c.start();
    try {
      const r = await drive(server.port, server.pids, server.root, c.tool);
      if (run > 0) results[c.name].push(r);
      console.log(
        `  ${run === 0 ? 'warm-up' : `run ${run}`}  ${c.name.padEnd(10)} ${r.rate.toFixed(0).padStart(6)} msg/s  ${r.cpuMsPerMsg.toFixed(2)} ms CPU/msg  ${r.rssMiB.toFixed(0)} MiB peak RSS`,
      );
    } finally {
      await server.stop();
    }
  }
}

console.log(`\nserver CPU counted by ${cpuMethod}\nmedians`);
const med = {};
for (const c of selected) {
  const rs = results[c.name];
  med[c.name] = {
    rate: median(rs.map((r) => r.rate)),
    cpu: median(rs.map((r) => r.cpuMsPerMsg)),
    rss: Math.max(...rs.map((r) => r.rssMiB)),
  };
  console.log(
    `  ${c.name.padEnd(10)} ${med[c.name].rate.toFixed(0).padStart(6)} msg/s  ${med[c.name].cpu.toFixed(2)} ms CPU/msg  ${med[c.name].rss.toFixed(0)} MiB peak RSS (highest run)`,
  );
}
if (med.postern) {
  for (const peer of ['smtp-sink', 'postfix', 'postern-before', 'postern-qmqp']) {
    if (med[peer]) {
      console.log(
        `  ratio postern/${peer}: ${(med.postern.rate / med[peer].rate).toFixed(2)}x throughput, ${(med.postern.cpu / med[peer].cpu).toFixed(2)}x CPU per message`,
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
