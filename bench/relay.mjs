#!/usr/bin/env node
// End-to-end relay throughput: smtp-source → MTA (queue, fsync) → SMTP client → smtp-sink.
//
// Contenders, alternated in one run (A B A B ...), both relaying to the same smtp-sink:
//   postern   an in-process Mta (FileQueueStore, SmtpDeliveryAgent with relayhost)
//   postfix   a private Postfix set up by ../shared/tools/postfix-anchor.sh, then switched
//             from discard to relaying with postconf -c (relayhost = the sink,
//             default_transport = smtp)
// A run is timed from the first connection until the last message was delivered (the
// MTA's own "status=sent" count reaches the message count). Reported: medians, the
// ratio of medians, and the connection reuse rate of each MTA's SMTP client (Postern:
// the agent's counters; Postfix: delivery lines with conn_use= over all deliveries).
//
// Needs root (the anchor), Postfix's tools, and a build (dist/): npm run build.
// Usage: node bench/relay.mjs [--messages 2000 --sessions 20 --size 4096 --runs 3]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, median, waitForPort } from './lib/net.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const anchor = resolve(root, '../shared/tools/postfix-anchor.sh');
const { values: opt } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    sessions: { type: 'string', default: '20' },
    runs: { type: 'string', default: '3' },
    size: { type: 'string', default: '4096' },
  },
});
const MESSAGES = Number(opt.messages);
const SESSIONS = Number(opt.sessions);
const RUNS = Number(opt.runs);
const SIZE = Number(opt.size);

for (const cmd of ['smtp-source', 'smtp-sink', 'postconf']) {
  if (spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0) {
    console.error(`relay bench: ${cmd} not found; apt-get install -y postfix`);
    process.exit(69);
  }
}
if (!existsSync(join(root, 'dist/index.js'))) {
  console.error('relay bench: no build found; run npm run build first');
  process.exit(69);
}
const { Mta, Logger } = await import(join(root, 'dist/index.js'));

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

// The shared sink.
const sinkPort = await freePort();
const sink = spawn('smtp-sink', ['-u', 'nobody', `127.0.0.1:${sinkPort}`, '1024'], {
  stdio: 'ignore',
});
await waitForPort(sinkPort);

// Postfix, relaying to the sink.
const pfBase = mkdtempSync(join(tmpdir(), 'relay-bench-pf-'));
chmodSync(pfBase, 0o755);
const pfPort = await freePort();
const pfEnv = { ...process.env, PF_BASE: pfBase, PF_LISTEN: `127.0.0.1:${pfPort}` };
execFileSync(anchor, ['setup'], { env: pfEnv, stdio: 'ignore' });
execFileSync('postconf', [
  '-c',
  join(pfBase, 'etc'),
  '-e',
  `relayhost = [127.0.0.1]:${sinkPort}`,
  'default_transport = smtp',
  'relay_transport = smtp',
  'smtp_tls_security_level = none',
]);
execFileSync(anchor, ['start'], { env: pfEnv, stdio: 'ignore' });
await waitForPort(pfPort);
const pfLog = join(pfBase, 'log/maillog');
const pfLines = () => (existsSync(pfLog) ? readFileSync(pfLog, 'utf8').split('\n') : []);
const pfSent = () => pfLines().filter((l) => /postfix\/smtp\[.*status=sent/.test(l)).length;

// Postern, relaying to the sink.
const pnDir = mkdtempSync(join(tmpdir(), 'relay-bench-pn-'));
let pnSent = 0;
const logger = new Logger([
  (e) => {
    if (e.component === 'smtp' && e.text.includes('status=sent')) pnSent++;
  },
]);
const mta = new Mta(
  {
    myhostname: 'postern.bench.test',
    smtpd: [{ listen: '127.0.0.1:0' }],
    queueDirectory: join(pnDir, 'queue'),
    relayhost: `[127.0.0.1]:${sinkPort}`,
    smtpTlsSecurityLevel: 'none',
    mydestination: [],
  },
  { logger },
);
await mta.start();
const pnPort = mta.listeners[0].port;

const results = { postern: [], postfix: [] };
try {
  for (let run = 0; run <= RUNS; run++) {
    for (const name of ['postern', 'postfix']) {
      const before = name === 'postern' ? pnSent : pfSent();
      const count = () => (name === 'postern' ? pnSent : pfSent()) - before;
      const t0 = process.hrtime.bigint();
      await source(name === 'postern' ? pnPort : pfPort);
      await waitUntil(() => count() >= MESSAGES);
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const rate = MESSAGES / secs;
      if (run > 0) results[name].push(rate); // run 0 is the warm-up
      console.log(
        `${run === 0 ? 'warm-up' : `run ${run}`} ${name}: ${rate.toFixed(0)} msg/s end-to-end (${secs.toFixed(2)} s)`,
      );
    }
  }
} finally {
  const stats = mta.agents.get('smtp')?.stats ?? { opened: 0, reused: 0 };
  await mta.stop();
  const lines = pfLines().filter((l) => /postfix\/smtp\[.*status=sent/.test(l));
  const pfReuse = lines.filter((l) => /conn_use=\d+/.test(l)).length / Math.max(1, lines.length);
  execFileSync(anchor, ['stop'], { env: pfEnv, stdio: 'ignore' });
  sink.kill('SIGTERM');
  rmSync(pfBase, { recursive: true, force: true });
  rmSync(pnDir, { recursive: true, force: true });
  if (results.postern.length > 0 && results.postfix.length > 0) {
    const a = median(results.postern);
    const b = median(results.postfix);
    const pnReuse = stats.reused / Math.max(1, stats.reused + stats.opened);
    console.log(`\n${MESSAGES} x ${SIZE} B, ${SESSIONS} sessions, ${RUNS} counted runs each`);
    console.log(
      `postern: median ${a.toFixed(0)} msg/s; connection reuse ${(pnReuse * 100).toFixed(1)}% (${stats.reused} reused, ${stats.opened} opened)`,
    );
    console.log(
      `postfix: median ${b.toFixed(0)} msg/s; connection reuse ${(pfReuse * 100).toFixed(1)}% (deliveries with conn_use=)`,
    );
    console.log(`ratio postern/postfix: ${(a / b).toFixed(2)}x`);
  }
}
