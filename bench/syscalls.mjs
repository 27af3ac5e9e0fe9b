#!/usr/bin/env node
// System calls per message of `postern serve`: Postfix's smtp-source sends a fixed run
// (default 2000 x 4 KB over 20 sessions) to a server delivering to discard, while
// `strace -c -f` counts every system call of the server's threads, from before the first
// connection until the last message was removed from the queue. Reported: calls per
// message in total and for the busiest calls, and strace's whole table in a file.
//
// strace slows the server down several times over: the counts are the result, not the
// time. Run it on two builds to compare them (`--root` points at another checkout whose
// dist/ is built).
//
// --relay delivers over SMTP to Postfix's smtp-sink instead (relayhost, no TLS): the
// relay path, SMTP client included.
//
// Usage: npm run bench:syscalls [-- --messages 2000 --sessions 20 --size 4096]
//        [--root DIR] [--top 15] [--keep] [--relay] [--set KEY=VALUE ...]
// --set adds a parameter to the server's config, e.g. --set smtpdWorkerThreads=1.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { findCommand } from '../test/peers/host.mjs';
import { startSmtpSink } from '../test/peers/smtp-sink.mjs';
import { paramsOf } from './lib/config-params.mjs';
import { freePort, waitForPort } from './lib/net.mjs';
import { requirePeers, stopOnSignals } from './lib/peers.mjs';

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    sessions: { type: 'string', default: '20' },
    size: { type: 'string', default: '4096' },
    root: { type: 'string', default: here },
    top: { type: 'string', default: '15' },
    keep: { type: 'boolean', default: false },
    relay: { type: 'boolean', default: false },
    set: { type: 'string', multiple: true, default: [] },
  },
});
const MESSAGES = Number(opt.messages);
const SESSIONS = Number(opt.sessions);
const SIZE = Number(opt.size);
const ROOT = resolve(opt.root);

requirePeers('npm run bench:syscalls', {
  commands: opt.relay ? ['smtp-source', 'smtp-sink'] : ['smtp-source'],
});
if (!findCommand('strace')) {
  process.stderr.write('npm run bench:syscalls: strace not found; apt-get install -y strace\n');
  process.exit(69);
}
stopOnSignals();

const sink = opt.relay ? await startSmtpSink() : undefined;
const delivery = sink
  ? { relayhost: `[127.0.0.1]:${sink.port}`, smtpTlsSecurityLevel: 'none' }
  : { defaultTransport: 'discard' };
const dir = mkdtempSync(join(tmpdir(), 'postern-syscalls-'));
const port = await freePort();
const logFile = join(dir, 'maillog');
writeFileSync(
  join(dir, 'postern.json'),
  JSON.stringify({
    myhostname: 'mx.bench.test',
    smtpd: [{ listen: `127.0.0.1:${port}` }],
    ...delivery,
    queueDirectory: join(dir, 'queue'),
    maillogFile: logFile,
    ...paramsOf('set', opt.set),
  }),
);
const server = spawn(
  process.execPath,
  [join(ROOT, 'bin/postern.mjs'), 'serve', '--config', join(dir, 'postern.json')],
  { stdio: 'ignore', cwd: dir },
);
await waitForPort(port);

/** Lines of the mail log that say a message left the queue. */
function removedCount() {
  let text = '';
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return 0;
  }
  let n = 0;
  for (let at = text.indexOf(': removed\n'); at >= 0; at = text.indexOf(': removed\n', at + 1)) n++;
  return n;
}

const table = join(dir, 'strace.txt');
const tracer = spawn('strace', ['-c', '-f', '-o', table, '-p', String(server.pid)], {
  stdio: ['ignore', 'ignore', 'pipe'],
});
// strace says it attached (one line per thread) before it counts anything.
await new Promise((res, rej) => {
  let said = '';
  tracer.stderr.on('data', (d) => {
    said += d;
    if (/attached/.test(said)) res();
  });
  tracer.once('exit', (code) => rej(new Error(`strace exited (${code}): ${said}`)));
});
await new Promise((r) => setTimeout(r, 300));

const t0 = Date.now();
const source = spawnSync(
  'smtp-source',
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
  { encoding: 'utf8', timeout: 900_000 },
);
if (source.status !== 0) throw new Error(`smtp-source failed (${source.status}): ${source.stderr}`);
// Until every message was delivered and removed (bounded: 10 minutes).
for (let i = 0; i < 6000 && removedCount() < MESSAGES; i++)
  await new Promise((r) => setTimeout(r, 100));
const removed = removedCount();
const secs = (Date.now() - t0) / 1000;
await new Promise((r) => {
  tracer.once('exit', r);
  tracer.kill('SIGINT');
});
await new Promise((r) => {
  server.once('exit', r);
  server.kill('SIGTERM');
});
await sink?.stop();

// strace -c: "% time seconds usecs/call calls errors syscall", then a total line.
const rows = [];
let total = 0;
for (const line of readFileSync(table, 'utf8').split('\n')) {
  const f = line.trim().split(/\s+/);
  if (f.length < 5 || !/^\d/.test(f[0])) continue;
  const name = f.at(-1);
  const calls = Number(f[3]);
  if (name === 'total') total = calls;
  else rows.push({ name, calls, errors: f.length === 6 ? Number(f[4]) : 0 });
}
rows.sort((a, b) => b.calls - a.calls);
const per = (n) => (n / MESSAGES).toFixed(2).padStart(7);
console.log(
  `postern serve (${ROOT}): ${MESSAGES} x ${SIZE} bytes, ${SESSIONS} sessions, delivery ${sink ? 'over SMTP to smtp-sink' : 'to discard'}; ${removed} removed in ${secs.toFixed(1)} s under strace`,
);
console.log(`  system calls per message: ${per(total)} (total ${total})`);
for (const r of rows.slice(0, Number(opt.top))) {
  console.log(
    `  ${r.name.padEnd(18)} ${per(r.calls)}${r.errors > 0 ? `   (${r.errors} failed)` : ''}`,
  );
}
if (removed < MESSAGES) console.log(`  warning: only ${removed} of ${MESSAGES} were removed`);
if (opt.keep) console.log(`  strace table and log kept in ${dir} (${statSync(table).size} bytes)`);
else rmSync(dir, { recursive: true, force: true });
