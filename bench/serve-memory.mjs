#!/usr/bin/env node
// Memory of `postern serve` over its life against another build of it: the resident set
// once it has started and gone idle, and its peak (VmHWM, since the start: nothing is
// reset) after loads of Postfix's smtp-source; with the server's CPU per message over
// those loads.
//
// Method (cold, one server per round and contender): each round starts this checkout's
// `postern serve` and the one of --before DIR (e.g. a checkout of the commit before a
// change) in turn, in the default configuration with delivery to discard, the order
// swapped every round (A B, B A, ...) so that a drift of the machine falls on both. Each
// is measured alone: started, left until its CPU is quiet, its VmRSS (RssAnon, RssFile)
// read; then --loads loads of --messages x --size bytes over --sessions sessions, each
// until the server is idle again (the queue drained to discard); then its VmHWM, and the
// CPU of its process tree from the first load's first connection until the last is
// drained (bench/lib/cpu.mjs), per message. The peak counts the start too, as a server in
// service pays for it.
//
// Usage: npm run bench:memory -- --before DIR [--rounds 5] [--loads 2] [--messages 4000]
//        [--sessions 20] [--size 4096] [--port N (and N+1)]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { groupMembers } from '../test/peers/host.mjs';
import { cpuMeter, settle } from './lib/cpu.mjs';
import { freePort, median, waitForPort } from './lib/net.mjs';
import { requirePeers, stopOnSignals } from './lib/peers.mjs';
import { sourceLoad } from './lib/smtp-source.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    before: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    loads: { type: 'string', default: '2' },
    messages: { type: 'string', default: '4000' },
    sessions: { type: 'string', default: '20' },
    size: { type: 'string', default: '4096' },
    port: { type: 'string' },
  },
});
if (!opt.before) {
  process.stderr.write(
    'npm run bench:memory: give the build to compare with: -- --before DIR (a checkout with dist/ built)\n',
  );
  process.exit(64);
}
const ROUNDS = Number(opt.rounds);
const LOADS = Number(opt.loads);
const MESSAGES = Number(opt.messages);
const SESSIONS = Number(opt.sessions);
const SIZE = Number(opt.size);
requirePeers('npm run bench:memory', { commands: ['smtp-source'] });
stopOnSignals();

/** A status field of each process of `pids`, summed, in MiB. */
function statusMiB(pids, field) {
  let kib = 0;
  for (const pid of pids) {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
      readFileSync(`/proc/${pid}/status`, 'utf8'),
    );
    kib += m ? Number(m[1]) : 0;
  }
  return kib / 1024;
}

/** Starts, measures and stops the `postern serve` of `checkout` on `port`. */
async function measure(checkout, port) {
  const dir = mkdtempSync(join(tmpdir(), 'postern-bench-memory-'));
  writeFileSync(
    join(dir, 'postern.json'),
    JSON.stringify({
      myhostname: 'mx.bench.test',
      smtpd: [{ listen: `127.0.0.1:${port}` }],
      defaultTransport: 'discard',
      queueDirectory: join(dir, 'queue'),
    }),
  );
  const p = spawn(
    process.execPath,
    [join(checkout, 'bin/postern.mjs'), 'serve', '--config', join(dir, 'postern.json')],
    // Its own process group: every process of the server is counted.
    { stdio: 'ignore', cwd: dir, detached: true },
  );
  const died = () =>
    p.exitCode !== null || p.signalCode !== null
      ? `${checkout}: postern serve exited (${p.exitCode ?? p.signalCode})`
      : undefined;
  try {
    await waitForPort(port, 15_000, died);
    const pids = () => groupMembers(p.pid);
    const started = cpuMeter(p.pid, { cgroup: false });
    await settle(started, { windowMs: 500 });
    started.close();
    const idle = {
      rss: statusMiB(pids(), 'VmRSS'),
      anon: statusMiB(pids(), 'RssAnon'),
      file: statusMiB(pids(), 'RssFile'),
    };
    const meter = cpuMeter(p.pid);
    const rates = [];
    for (let i = 0; i < LOADS; i++) {
      const t0 = process.hrtime.bigint();
      await sourceLoad(port, { sessions: SESSIONS, messages: MESSAGES, size: SIZE }).catch(
        (err) => {
          throw died() ? new Error(`${died()}; ${err.message}`) : err;
        },
      );
      rates.push(MESSAGES / (Number(process.hrtime.bigint() - t0) / 1e9));
      await settle(meter);
    }
    const cpuMsPerMsg = meter.usageUs() / 1000 / (MESSAGES * LOADS);
    meter.close();
    return { ...idle, hwm: statusMiB(pids(), 'VmHWM'), cpuMsPerMsg, rate: median(rates) };
  } finally {
    if (!died()) {
      await new Promise((r) => {
        p.once('exit', r);
        p.kill('SIGTERM');
      });
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

const basePort = opt.port ? Number(opt.port) : undefined;
const contenders = [
  { name: 'postern', checkout: root, port: basePort },
  { name: 'postern-before', checkout: resolve(opt.before), port: basePort && basePort + 1 },
];
const results = Object.fromEntries(contenders.map((c) => [c.name, []]));
const FIELDS = ['rss', 'anon', 'file', 'hwm', 'cpuMsPerMsg', 'rate'];
const show = (r) =>
  `idle VmRSS ${r.rss.toFixed(1)} MiB (anon ${r.anon.toFixed(1)}, file ${r.file.toFixed(1)}), VmHWM ${r.hwm.toFixed(1)} MiB, CPU ${r.cpuMsPerMsg.toFixed(3)} ms/msg, ${r.rate.toFixed(0)} msg/s`;

console.log(
  `memory: each round starts each server, reads its idle resident set, gives it ${LOADS} loads of ${MESSAGES} x ${SIZE} bytes over ${SESSIONS} sessions (smtp-source), then reads its peak since the start; ${ROUNDS} rounds, the order swapped each round`,
);
for (let round = 1; round <= ROUNDS; round++) {
  const order = round % 2 === 1 ? contenders : [...contenders].reverse();
  for (const c of order) {
    const r = await measure(c.checkout, c.port ?? (await freePort()));
    results[c.name].push(r);
    console.log(`round ${round} ${c.name.padEnd(15)} ${show(r)}`);
  }
}

const medians = (name) =>
  Object.fromEntries(FIELDS.map((f) => [f, median(results[name].map((r) => r[f]))]));
console.log('\nmedians');
for (const c of contenders) console.log(`  ${c.name.padEnd(15)} ${show(medians(c.name))}`);
console.log('\npostern - postern-before, per round (MiB; CPU in ms/msg)');
const diffs = results.postern.map((r, i) => {
  const b = results['postern-before'][i];
  return Object.fromEntries(FIELDS.map((f) => [f, r[f] - b[f]]));
});
for (const [i, d] of diffs.entries()) {
  console.log(
    `  round ${i + 1}: idle VmRSS ${d.rss.toFixed(1)} (anon ${d.anon.toFixed(1)}, file ${d.file.toFixed(1)}), VmHWM ${d.hwm.toFixed(1)}, CPU ${d.cpuMsPerMsg.toFixed(3)}`,
  );
}
const md = Object.fromEntries(FIELDS.map((f) => [f, median(diffs.map((d) => d[f]))]));
console.log(
  `  median:  idle VmRSS ${md.rss.toFixed(1)} (anon ${md.anon.toFixed(1)}, file ${md.file.toFixed(1)}), VmHWM ${md.hwm.toFixed(1)}, CPU ${md.cpuMsPerMsg.toFixed(3)}`,
);
