#!/usr/bin/env node
// Queue store throughput: `postern serve` nodes relaying smtp-source → node(s) → smtp-sink,
// with FileQueueStore (one node) and PostgresQueueStore (one node, then three nodes on
// one PostgreSQL) in the same run, alternated over --runs rounds.
//
// Acceptance: messages / time until every smtp-source has finished (each message got its
// 250 after its COMMIT or file fsync). Delivery: messages / time from the first
// connection until the last "status=sent" line of the nodes. The sessions are split
// evenly over the nodes. CPU per message of the nodes and of the PostgreSQL server
// (postmaster and its backends, from /proc) says where the time goes.
//
// PostgreSQL: POSTERN_TEST_PG_URL if set, else a durable (fsync on) server started here
// as in test/helpers/postgres-server.ts (initdb into a temp dir, pg_ctl on a free port).
// Needs Postfix's tools and a build (npm run build).
// Usage: node bench/postgres.mjs [--messages 3000 --sessions 12 --size 4096 --runs 2]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, median, waitForPort } from './lib/net.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(root, 'bin/postern.mjs');
const { values: opt } = parseArgs({
  options: {
    messages: { type: 'string', default: '3000' },
    sessions: { type: 'string', default: '12' },
    size: { type: 'string', default: '4096' },
    runs: { type: 'string', default: '2' },
  },
});
const MESSAGES = Number(opt.messages);
const SESSIONS = Number(opt.sessions);
const SIZE = Number(opt.size);
const RUNS = Number(opt.runs);

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

function startNode(dir, config) {
  writeFileSync(join(dir, 'postern.json'), JSON.stringify(config));
  const child = spawn(process.execPath, [BIN, 'serve', '--config', join(dir, 'postern.json')], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let sent = 0;
  let partial = '';
  let port = 0;
  let ready;
  const started = new Promise((r) => (ready = r));
  child.stdout.setEncoding('utf8').on('data', (t) => {
    partial += t;
    const lines = partial.split('\n');
    partial = lines.pop();
    for (const l of lines) {
      if (l.includes('status=sent')) sent++;
      const m = /daemon started.*listening on [^,]*?:(\d+)/.exec(l);
      if (m) {
        port = Number(m[1]);
        ready();
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (t) => process.stderr.write(t));
  return {
    child,
    started,
    get port() {
      return port;
    },
    get sent() {
      return sent;
    },
  };
}

async function scenario(name, nodesWanted, pg, schemaN) {
  const work = mkdtempSync(join(tmpdir(), 'postern-bench-q-'));
  const sinkPort = await freePort();
  const sink = spawn('smtp-sink', ['-u', 'nobody', `127.0.0.1:${sinkPort}`, '1000'], {
    stdio: 'ignore',
  });
  await waitForPort(sinkPort);
  const queueStore =
    name === 'file' ? undefined : { type: 'postgres', url: pg.url, schema: `bench_${schemaN}` };
  const nodes = [];
  for (let n = 0; n < nodesWanted; n++) {
    const dir = join(work, `n${n}`);
    mkdirSync(dir);
    const node = startNode(dir, {
      myhostname: `n${n}.bench`,
      nodeId: `bench-${n}`,
      queueDirectory: join(dir, 'queue'),
      smtpd: [{ listen: '127.0.0.1:0' }],
      ...(queueStore ? { queueStore } : {}),
      relayhost: `[127.0.0.1]:${sinkPort}`,
      smtpTlsSecurityLevel: 'none',
    });
    await node.started;
    nodes.push(node);
  }
  const cpu0 = nodes.reduce((a, n) => a + cpuOf(n.child.pid), 0);
  const pg0 = pgCpu(pg.pid);
  const t0 = performance.now();
  const per = Math.floor(MESSAGES / nodesWanted);
  const sessions = Math.max(1, Math.floor(SESSIONS / nodesWanted));
  await Promise.all(
    nodes.map(
      (node, i) =>
        new Promise((res, rej) => {
          const m = i === nodesWanted - 1 ? MESSAGES - per * (nodesWanted - 1) : per;
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
  const accepted = performance.now();
  const deadline = Date.now() + 600_000;
  while (nodes.reduce((a, n) => a + n.sent, 0) < MESSAGES && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
  const delivered = performance.now();
  const nodeCpu = nodes.reduce((a, n) => a + cpuOf(n.child.pid), 0) - cpu0;
  const dbCpu = pgCpu(pg.pid) - pg0;
  for (const n of nodes) n.child.kill('SIGTERM');
  await Promise.all(
    nodes.map(
      (n) => new Promise((r) => (n.child.exitCode !== null ? r() : n.child.once('exit', r))),
    ),
  );
  sink.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
  return {
    accept: MESSAGES / ((accepted - t0) / 1000),
    deliver: MESSAGES / ((delivered - t0) / 1000),
    nodeMs: (nodeCpu * 1000) / MESSAGES,
    dbMs: (dbCpu * 1000) / MESSAGES,
  };
}

const pg = await startPg();
const results = { file: [], 'pg-1': [], 'pg-3': [] };
let schemaN = 0;
try {
  for (let r = 0; r < RUNS; r++) {
    results.file.push(await scenario('file', 1, pg, schemaN++));
    results['pg-1'].push(await scenario('pg', 1, pg, schemaN++));
    results['pg-3'].push(await scenario('pg', 3, pg, schemaN++));
  }
} finally {
  pg.stop();
}
console.log(
  `${MESSAGES} messages of ${SIZE} bytes, ${SESSIONS} sessions split over the nodes, ${RUNS} runs (medians)`,
);
console.log('store        accept msg/s  deliver msg/s  node CPU ms/msg  PostgreSQL CPU ms/msg');
const row = {};
for (const [name, rs] of Object.entries(results)) {
  row[name] = {
    accept: median(rs.map((x) => x.accept)),
    deliver: median(rs.map((x) => x.deliver)),
    nodeMs: median(rs.map((x) => x.nodeMs)),
    dbMs: median(rs.map((x) => x.dbMs)),
  };
  const v = row[name];
  console.log(
    `${name.padEnd(12)} ${v.accept.toFixed(0).padStart(12)}  ${v.deliver.toFixed(0).padStart(13)}  ${v.nodeMs.toFixed(2).padStart(15)}  ${v.dbMs.toFixed(2).padStart(21)}`,
  );
}
for (const name of ['pg-1', 'pg-3']) {
  console.log(
    `${name} / file: accept ${(row[name].accept / row.file.accept).toFixed(2)}x, deliver ${(row[name].deliver / row.file.deliver).toFixed(2)}x`,
  );
}
