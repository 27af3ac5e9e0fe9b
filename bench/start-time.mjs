#!/usr/bin/env node
// Start-up time: from the `npm start` command to its SMTP port accepting a connection,
// against Postfix's from `postfix start` to its smtpd accepting (a private instance,
// test/peers/postfix.mjs), alternated over --runs rounds; every round's figures, the
// medians and their ratio.
//
// `npm start` runs as a user would run it, in this checkout, with a config that only
// moves the listener to a free port and the queue and mailboxes to a temporary
// directory. --first-run removes dist/ before each start (a checkout just after npm ci);
// otherwise dist/ is built once before the first round (a warm checkout).
//
// Usage: npm run bench:start [-- --runs 5] [--first-run] [--without-postfix]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freshDist, ROOT } from '../scripts/fresh-dist.mjs';
import { groupMembers, stopGroup } from '../test/peers/host.mjs';
import { accepts, freePort } from '../test/peers/loopback.mjs';
import { PostfixInstance } from '../test/peers/postfix.mjs';
import { median } from './lib/net.mjs';
import { requirePeers, stopOnSignals } from './lib/peers.mjs';

const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    'first-run': { type: 'boolean', default: false },
    'without-postfix': { type: 'boolean', default: false },
  },
});
const RUNS = Number(opt.runs);
const withPostfix = !opt['without-postfix'];
requirePeers('npm run bench:start', { postfix: withPostfix });
stopOnSignals();

/** Seconds from `start()` until 127.0.0.1:`port` accepts, polled every 5 ms. */
async function timeUntilAccepting(port, start, gaveUp) {
  const t0 = process.hrtime.bigint();
  await start();
  for (;;) {
    if (await accepts(port)) return Number(process.hrtime.bigint() - t0) / 1e9;
    const reason = gaveUp();
    if (reason) throw new Error(reason);
    if (Number(process.hrtime.bigint() - t0) > 120e9) throw new Error('not listening after 120 s');
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function npmStart() {
  if (opt['first-run']) rmSync(join(ROOT, 'dist'), { recursive: true, force: true });
  const dir = mkdtempSync(join(tmpdir(), 'postern-start-'));
  const port = await freePort();
  const config = join(dir, 'postern.json');
  writeFileSync(
    config,
    JSON.stringify({
      smtpd: [{ listen: `127.0.0.1:${port}` }],
      queueDirectory: join(dir, 'queue'),
      mailSpoolDirectory: join(dir, 'mail/'),
    }),
  );
  let child;
  let output = '';
  try {
    const secs = await timeUntilAccepting(
      port,
      async () => {
        // Its own process group: npm, the shell and node are stopped together.
        child = spawn('npm', ['start', '--', '--config', config], {
          cwd: ROOT,
          detached: true,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        child.stdout.on('data', (c) => (output += c));
        child.stderr.on('data', (c) => (output += c));
      },
      () =>
        child.exitCode !== null ? `npm start exited (${child.exitCode}):\n${output}` : undefined,
    );
    return secs;
  } finally {
    if (child?.pid && groupMembers(child.pid).length > 0) await stopGroup(child.pid);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function postfixStart() {
  const pf = await PostfixInstance.create({ log: false });
  try {
    return await timeUntilAccepting(
      pf.port,
      () => pf.start(),
      () => undefined,
    );
  } finally {
    await pf.stop();
  }
}

if (!opt['first-run']) await freshDist();
const contenders = {
  'npm start': npmStart,
  ...(withPostfix ? { 'postfix start': postfixStart } : {}),
};
const results = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
console.log(
  `start-up: command to port accepting, ${RUNS} alternated rounds, ${opt['first-run'] ? 'first run (no dist/)' : 'warm checkout'}`,
);
for (let round = 1; round <= RUNS; round++) {
  const line = [];
  for (const [name, fn] of Object.entries(contenders)) {
    const secs = await fn();
    results[name].push(secs);
    line.push(`${name} ${secs.toFixed(2)} s`);
  }
  console.log(`  round ${round}  ${line.join('   ')}`);
}
console.log('medians');
for (const [name, xs] of Object.entries(results)) {
  console.log(`  ${name.padEnd(14)} ${median(xs).toFixed(2)} s`);
}
if (withPostfix) {
  const ratio = median(results['npm start']) / median(results['postfix start']);
  console.log(`  ratio npm start/postfix start: ${ratio.toFixed(2)}x`);
}
