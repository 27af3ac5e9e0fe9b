#!/usr/bin/env node
// Queue store throughput: `postern serve` nodes relaying smtp-source → node(s) → smtp-sink,
// with FileQueueStore (one node) and PostgresQueueStore (one node, then three nodes on
// one PostgreSQL) in the same run, alternated over --runs rounds.
//
// Acceptance: messages / time until every smtp-source has finished (each message got its
// 250 after its COMMIT or file fsync). Delivery: messages / time from the first
// connection until the nodes' logs have a `status=sent` line for every message (the
// logs go to files: a pipe the harness reads late would block the nodes' writes). The
// sessions are split evenly over the nodes. CPU per message of the nodes and of the PostgreSQL server
// (postmaster and its backends, from /proc) says where the time goes. Database round
// trips per message are the nodes' own count (postern_queue_store_round_trips_total on
// their metrics endpoints), taken over the load only. Every round is printed, then the
// medians.
//
// PostgreSQL: POSTERN_TEST_PG_URL if set, else a durable (fsync on) server started here
// as in test/helpers/postgres-server.ts (initdb into a temp dir, pg_ctl on a free port).
// Needs Postfix's tools and a build (npm run build).
// Before the counted load, each node relays --warm messages of its own (not counted),
// so that every process has compiled its hot paths: three cold processes would
// otherwise pay three warm-ups against one. A node's CPU per message falls for its
// first ~1500 messages (batches of 500 through one node at 4 sessions: 2.6, 2.0-2.1,
// 1.7, 1.2-1.4, then 1.1-1.4 ms of user CPU), hence the default; with 200, each of three
// nodes spent most of its 667 counted messages still warming up, one node few of its 2000.
// Under each result, the CPU of each node process (user+system, all its threads) and
// its wakeups (voluntary context switches) per message of the whole load.
// --profile DIR: the nodes write V8 CPU profiles there (node --cpu-prof).
// --before DIR: another built checkout (a git worktree of the commit before a change,
// after npm ci and npx tsup) runs every scenario too, as "NAME before", in the same
// alternated rounds, so a change is judged against its own baseline on the same
// machine at the same moment; its pg-3 / pg-1 ratios are printed beside this build's.
// Usage: node bench/postgres.mjs [--messages 2000 --sessions 12 --size 4096 --runs 5]
//        [--warm 1500] [--only file,pg-1,pg-3,file-3] [--profile DIR] [--before DIR]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startSmtpSink } from '../test/peers/smtp-sink.mjs';
import { freePort, median } from './lib/net.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(root, 'bin/postern.mjs');
const { values: opt } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    sessions: { type: 'string', default: '12' },
    size: { type: 'string', default: '4096' },
    runs: { type: 'string', default: '5' },
    only: { type: 'string' },
    warm: { type: 'string', default: '1500' },
    profile: { type: 'string' },
    before: { type: 'string' },
  },
});
const MESSAGES = Number(opt.messages);
const SESSIONS = Number(opt.sessions);
const SIZE = Number(opt.size);
const RUNS = Number(opt.runs);
const WARM = Number(opt.warm);

for (const cmd of ['smtp-source', 'smtp-sink']) {
  if (spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0) {
    console.error(`postgres bench: ${cmd} not found; apt-get install -y postfix`);
    process.exit(69);
  }
}
if (!existsSync(join(root, 'dist/cli/main.js'))) {
  console.error('postgres bench: no build found; run npm run build first');
  process.exit(69);
}
const BEFORE = opt.before ? resolve(opt.before) : undefined;
if (BEFORE && !existsSync(join(BEFORE, 'dist/cli/main.js'))) {
  console.error(
    `postgres bench: no build in ${BEFORE}; run npm ci and npx tsup --silent there first`,
  );
  process.exit(69);
}
/** The CLI each contender runs: this checkout's, or the --before one's. */
const binOf = (label) => (label.endsWith(' before') ? join(BEFORE, 'bin/postern.mjs') : BIN);

/** utime+stime of a process in seconds (0 when gone). */
function cpuOf(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return 0;
  }
}

/** utime, stime (seconds) and voluntary context switches of a process. */
function usageOf(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const woke = /^voluntary_ctxt_switches:\s+(\d+)/m.exec(status);
    return [Number(rest[11]) / 100, Number(rest[12]) / 100, Number(woke?.[1] ?? 0)];
  } catch {
    return [0, 0, 0];
  }
}

/** CPU seconds of the postmaster and its children, counting ones that exited (cutime). */
function pgCpu(postmaster) {
  if (!postmaster) return 0;
  let total = 0;
  try {
    const f = readFileSync(`/proc/${postmaster}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    total += (Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14])) / 100;
  } catch {}
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const f = readFileSync(`/proc/${name}/stat`, 'utf8');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[1]) === postmaster) total += (Number(rest[11]) + Number(rest[12])) / 100;
    } catch {}
  }
  return total;
}

async function startPg() {
  if (process.env.POSTERN_TEST_PG_URL)
    return { url: process.env.POSTERN_TEST_PG_URL, stop() {}, pid: 0 };
  const bin = ['17', '16', '15', '14']
    .map((v) => `/usr/lib/postgresql/${v}/bin`)
    .find((d) => existsSync(join(d, 'pg_ctl')));
  if (!bin) throw new Error('no PostgreSQL binaries; set POSTERN_TEST_PG_URL');
  const base = mkdtempSync(join(tmpdir(), 'postern-bench-pg-'));
  chmodSync(base, 0o755);
  const data = join(base, 'data');
  mkdirSync(data, { mode: 0o700 });
  const root = process.getuid() === 0;
  if (root) execFileSync('chown', ['postgres:postgres', data]);
  const as = (file, args) =>
    root
      ? execFileSync('runuser', ['-u', 'postgres', '--', file, ...args])
      : execFileSync(file, args);
  as(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8']);
  const port = await freePort();
  as(join(bin, 'pg_ctl'), [
    '-D',
    data,
    '-l',
    join(data, 'log'),
    '-o',
    `-p ${port} -k ${data} -c listen_addresses=127.0.0.1 -c max_connections=200`,
    '-w',
    'start',
  ]);
  const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    pid,
    stop() {
      try {
        as(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']);
      } catch {}
      rmSync(base, { recursive: true, force: true });
    },
  };
}

/**
 * Starts a node whose log goes to a file, not a pipe: a pipe the harness reads late
 * blocks the node's synchronous stdout writes and would measure the harness.
 */
async function startNode(dir, config, bin) {
  writeFileSync(join(dir, 'postern.json'), JSON.stringify(config));
  const logFile = join(dir, 'postern.log');
  const log = openSync(logFile, 'w');
  const profile = opt.profile ? ['--cpu-prof', `--cpu-prof-dir=${resolve(opt.profile)}`] : [];
  const child = spawn(
    process.execPath,
    [...profile, bin, 'serve', '--config', join(dir, 'postern.json')],
    {
      cwd: dir,
      stdio: ['ignore', log, log],
    },
  );
  closeSync(log);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const text = readFileSync(logFile, 'utf8');
    const m = /daemon started.*listening on [^,]*?:(\d+)/.exec(text);
    const mu = /metrics on (http:\/\/\S+)/.exec(text);
    if (m && mu)
      return {
        child,
        port: Number(m[1]),
        metricsUrl: mu[1],
        logFile,
        logRead: 0,
        logTail: '',
        sentLines: 0,
      };
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`postgres bench: a node did not start:\n${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A counter of the node's metrics, summed over its labels. */
async function metric(node, name) {
  const text = await (await fetch(node.metricsUrl)).text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)$`, 'gm')))
    sum += Number(m[1]);
  return sum;
}

/**
 * Recipients the node has delivered: `status=sent` lines its log file has gained
 * (read incrementally; asking the node's metrics this often would load the node).
 */
function sent(node) {
  const size = statSync(node.logFile).size;
  if (size > node.logRead) {
    const fd = openSync(node.logFile, 'r');
    const buf = Buffer.alloc(size - node.logRead);
    readSync(fd, buf, 0, buf.length, node.logRead);
    closeSync(fd);
    const text = node.logTail + buf.toString('latin1');
    const cut = text.lastIndexOf('\n') + 1;
    node.sentLines += text.slice(0, cut).split('status=sent').length - 1;
    node.logTail = text.slice(cut);
    node.logRead = size;
  }
  return node.sentLines;
}

/** The node's count of database round trips (0 for a store without one). */
function roundTrips(node) {
  return metric(node, 'postern_queue_store_round_trips_total');
}

/** smtp-source: `total` messages split evenly over the nodes and their sessions. */
function inject(nodes, total, sessionsAll) {
  const per = Math.floor(total / nodes.length);
  const sessions = Math.max(1, Math.floor(sessionsAll / nodes.length));
  return Promise.all(
    nodes.map(
      (node, i) =>
        new Promise((res, rej) => {
          const m = i === nodes.length - 1 ? total - per * (nodes.length - 1) : per;
          const p = spawn(
            'smtp-source',
            [
              '-s',
              String(sessions),
              '-m',
              String(m),
              '-l',
              String(SIZE),
              '-f',
              'b@bench.example',
              '-t',
              'r@sink.example',
              `127.0.0.1:${node.port}`,
            ],
            { stdio: 'ignore' },
          );
          p.once('exit', (code) =>
            code === 0 ? res() : rej(new Error(`smtp-source exited ${code}`)),
          );
        }),
    ),
  );
}

/** Resolves once the nodes have logged `count` deliveries in all (bounded). */
async function delivered(nodes, count) {
  const deadline = Date.now() + 600_000;
  while (Date.now() < deadline) {
    const done = nodes.map(sent).reduce((a, b) => a + b, 0);
    if (done >= count) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function scenario(name, nodesWanted, pg, schemaN, bin) {
  const work = mkdtempSync(join(tmpdir(), 'postern-bench-q-'));
  const sink = await startSmtpSink({ backlog: 1000 });
  const sinkPort = sink.port;
  const queueStore =
    name === 'file' ? undefined : { type: 'postgres', url: pg.url, schema: `bench_${schemaN}` };
  const nodes = [];
  for (let n = 0; n < nodesWanted; n++) {
    const dir = join(work, `n${n}`);
    mkdirSync(dir);
    const node = await startNode(
      dir,
      {
        myhostname: `n${n}.bench`,
        nodeId: `bench-${n}`,
        queueDirectory: join(dir, 'queue'),
        smtpd: [{ listen: '127.0.0.1:0' }],
        ...(queueStore ? { queueStore } : {}),
        relayhost: `[127.0.0.1]:${sinkPort}`,
        smtpTlsSecurityLevel: 'none',
        metrics: { listen: '127.0.0.1:0' },
      },
      bin,
    );
    nodes.push(node);
  }
  // Warm-up: every node process compiles its hot paths on mail that is not counted.
  if (WARM > 0) {
    await inject(nodes, WARM * nodesWanted, SESSIONS);
    await delivered(nodes, WARM * nodesWanted);
  }
  const sent0 = nodes.map(sent).reduce((a, b) => a + b, 0);
  const trips0 = (await Promise.all(nodes.map(roundTrips))).reduce((a, b) => a + b, 0);
  const cpu0 = nodes.reduce((a, n) => a + cpuOf(n.child.pid), 0);
  const use0 = nodes.map((n) => usageOf(n.child.pid));
  const pg0 = pgCpu(pg.pid);
  const t0 = performance.now();
  await inject(nodes, MESSAGES, SESSIONS);
  const accepted = performance.now();
  await delivered(nodes, sent0 + MESSAGES);
  const done = performance.now();
  const nodeCpu = nodes.reduce((a, n) => a + cpuOf(n.child.pid), 0) - cpu0;
  const use = nodes.map((n, i) => usageOf(n.child.pid).map((v, k) => v - use0[i][k]));
  const dbCpu = pgCpu(pg.pid) - pg0;
  const trips = (await Promise.all(nodes.map(roundTrips))).reduce((a, b) => a + b, 0) - trips0;
  for (const n of nodes) n.child.kill('SIGTERM');
  await Promise.all(
    nodes.map(
      (n) => new Promise((r) => (n.child.exitCode !== null ? r() : n.child.once('exit', r))),
    ),
  );
  await sink.stop();
  rmSync(work, { recursive: true, force: true });
  return {
    accept: MESSAGES / ((accepted - t0) / 1000),
    deliver: MESSAGES / ((done - t0) / 1000),
    nodeMs: (nodeCpu * 1000) / MESSAGES,
    dbMs: (dbCpu * 1000) / MESSAGES,
    trips: trips / MESSAGES,
    // The machine's 1-minute load average as the load ended: other work competes too.
    load: loadavg()[0],
    perNode: use.map(([user, sys, woke]) => ({
      user: (user * 1000) / MESSAGES,
      sys: (sys * 1000) / MESSAGES,
      woke: woke / MESSAGES,
    })),
  };
}

/** The CPU of each node process, per message of the whole load. */
function showNodes(v) {
  const each = v.perNode.map(
    (n) =>
      `${(n.user + n.sys).toFixed(2)} (user ${n.user.toFixed(2)}, sys ${n.sys.toFixed(2)}, wakeups ${n.woke.toFixed(2)})`,
  );
  console.log(
    `  node CPU ms/msg by process: ${each.join('; ')}; load average ${v.load.toFixed(1)}`,
  );
}

function show(name, v) {
  console.log(
    `${name.padEnd(16)} ${v.accept.toFixed(0).padStart(12)}  ${v.deliver.toFixed(0).padStart(13)}  ${v.nodeMs.toFixed(2).padStart(15)}  ${v.dbMs.toFixed(2).padStart(21)}  ${v.trips.toFixed(2).padStart(12)}`,
  );
}

const HEAD =
  'store            accept msg/s  deliver msg/s  node CPU ms/msg  PostgreSQL CPU ms/msg  round trips/msg';

const pg = await startPg();
// file-3 (three nodes, each with a file queue of its own) is a control, run only when
// asked (--only ...,file-3): what three processes cost on this machine without a
// shared store.
const BASE = ['file', 'file-3', 'pg-1', 'pg-3'].filter((n) =>
  opt.only ? opt.only.split(',').includes(n) : n !== 'file-3',
);
/** Every contender: each scenario of this build, and of the --before build if given. */
const LABELS = BEFORE ? BASE.flatMap((n) => [n, `${n} before`]) : BASE;
const results = Object.fromEntries(LABELS.map((l) => [l, []]));
/** Delivery ratios worth printing, for each build: [label, numerator, denominator]. */
const RATIOS = ['', ' before']
  .filter((b) => b === '' || BEFORE)
  .flatMap((b) => [
    [`pg-1${b} / file${b}`, `pg-1${b}`, `file${b}`],
    [`pg-3${b} / pg-1${b}`, `pg-3${b}`, `pg-1${b}`],
    [`file-3${b} / file${b}`, `file-3${b}`, `file${b}`],
  ]);
let schemaN = 0;
try {
  for (let r = 0; r < RUNS; r++) {
    // Alternate the order too, so no contender always runs on a warmer machine.
    const order = r % 2 === 0 ? LABELS : [...LABELS].reverse();
    console.log(`round ${r + 1} of ${RUNS}\n${HEAD}`);
    for (const label of order) {
      const name = label.replace(/ before$/, '');
      const res = await scenario(
        name.startsWith('file') ? 'file' : 'pg',
        name.endsWith('-3') ? 3 : 1,
        pg,
        schemaN++,
        binOf(label),
      );
      results[label].push(res);
      show(label, res);
      showNodes(res);
    }
    const last = (n) => results[n]?.[r]?.deliver;
    const ratios = RATIOS.filter(([, a, b]) => last(a) && last(b)).map(
      ([label, a, b]) => `${label} ${(last(a) / last(b)).toFixed(2)}x`,
    );
    if (ratios.length > 0) console.log(`delivery ratios this round: ${ratios.join(', ')}`);
  }
} finally {
  pg.stop();
}
console.log(
  `${MESSAGES} messages of ${SIZE} bytes, ${SESSIONS} sessions split over the nodes, ${RUNS} runs (medians)`,
);
console.log(HEAD);
const row = {};
for (const [name, rs] of Object.entries(results)) {
  if (rs.length === 0) continue;
  row[name] = {
    accept: median(rs.map((x) => x.accept)),
    deliver: median(rs.map((x) => x.deliver)),
    nodeMs: median(rs.map((x) => x.nodeMs)),
    dbMs: median(rs.map((x) => x.dbMs)),
    trips: median(rs.map((x) => x.trips)),
  };
  show(name, row[name]);
}
for (const [label, a, b] of RATIOS) {
  if (!row[a] || !row[b]) continue;
  // The ratio of the medians, and the median of each round's ratio.
  const perRound = median(results[a].map((x, i) => x.deliver / results[b][i].deliver));
  console.log(
    `${label}: accept ${(row[a].accept / row[b].accept).toFixed(2)}x, deliver ${(row[a].deliver / row[b].deliver).toFixed(2)}x (median of the rounds' ratios ${perRound.toFixed(2)}x)`,
  );
}
if (BEFORE)
  for (const name of BASE)
    console.log(
      `${name} / ${name} before: deliver ${(row[name].deliver / row[`${name} before`].deliver).toFixed(2)}x, node CPU ${(row[name].nodeMs / row[`${name} before`].nodeMs).toFixed(2)}x, PostgreSQL CPU ${row[`${name} before`].dbMs > 0 ? (row[name].dbMs / row[`${name} before`].dbMs).toFixed(2) : '-'}x`,
    );
