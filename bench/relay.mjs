#!/usr/bin/env node
// End-to-end relay throughput: smtp-source → MTA (queue, fsync) → SMTP client → smtp-sink.
//
// Contenders, alternated in one run (A B A B ...), both relaying to the same smtp-sink:
//   postern   an in-process Mta (FileQueueStore, SmtpDeliveryAgent with relayhost)
//   postfix   a private Postfix instance (test/peers/postfix.mjs) relaying everything to
//             the sink (relayhost = the sink, default_transport = smtp)
// A run is timed from the first connection until the last message was delivered (the
// MTA's own "status=sent" count reaches the message count). Reported: medians, the
// ratio of medians, and the connection reuse rate of each MTA's SMTP client (Postern:
// the agent's counters; Postfix: delivery lines with conn_use= over all deliveries).
//
// Needs Postfix's tools, root for the Postfix contender (--without-postfix runs Postern
// alone) and a build (dist/), which `npm run bench:relay` makes when it is stale.
// Usage: npm run bench:relay [-- --messages 2000 --sessions 20 --size 4096 --runs 3]
//        [--without-postfix]
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PostfixInstance } from '../test/peers/postfix.mjs';
import { startSmtpSink } from '../test/peers/smtp-sink.mjs';
import { median } from './lib/net.mjs';
import { requirePeers, stopOnSignals } from './lib/peers.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    sessions: { type: 'string', default: '20' },
    runs: { type: 'string', default: '3' },
    size: { type: 'string', default: '4096' },
    'without-postfix': { type: 'boolean', default: false },
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

// The sink both MTAs relay to.
const sink = await startSmtpSink();
const sinkHop = `[127.0.0.1]:${sink.port}`;

// Postfix, relaying to the sink.
const postfix = withPostfix ? await PostfixInstance.create({ relayhost: sinkHop }) : undefined;
await postfix?.start();
const pfSent = () => postfix.delivered('smtp');

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
    relayhost: sinkHop,
    smtpTlsSecurityLevel: 'none',
    mydestination: [],
  },
  { logger },
);
await mta.start();
const pnPort = mta.listeners[0].port;

const contenders = withPostfix ? ['postern', 'postfix'] : ['postern'];
const results = { postern: [], postfix: [] };
try {
  for (let run = 0; run <= RUNS; run++) {
    for (const name of contenders) {
      const sent = async () => (name === 'postern' ? pnSent : await pfSent());
      const before = await sent();
      const count = async () => (await sent()) - before;
      const t0 = process.hrtime.bigint();
      await source(name === 'postern' ? pnPort : postfix.port);
      await waitUntil(async () => (await count()) >= MESSAGES);
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
  const lines = ((await postfix?.logLines()) ?? []).filter((l) =>
    /postfix\/smtp\[.*status=sent/.test(l),
  );
  const pfReuse = lines.filter((l) => /conn_use=\d+/.test(l)).length / Math.max(1, lines.length);
  await postfix?.stop();
  await sink.stop();
  rmSync(pnDir, { recursive: true, force: true });
  if (results.postern.length > 0) {
    const a = median(results.postern);
    const pnReuse = stats.reused / Math.max(1, stats.reused + stats.opened);
    console.log(`\n${MESSAGES} x ${SIZE} B, ${SESSIONS} sessions, ${RUNS} counted runs each`);
    console.log(
      `postern: median ${a.toFixed(0)} msg/s; connection reuse ${(pnReuse * 100).toFixed(1)}% (${stats.reused} reused, ${stats.opened} opened)`,
    );
    if (results.postfix.length > 0) {
      const b = median(results.postfix);
      console.log(
        `postfix: median ${b.toFixed(0)} msg/s; connection reuse ${(pfReuse * 100).toFixed(1)}% (deliveries with conn_use=)`,
      );
      console.log(`ratio postern/postfix: ${(a / b).toFixed(2)}x`);
    }
  }
}
