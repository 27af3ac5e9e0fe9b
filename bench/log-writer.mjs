#!/usr/bin/env node
/**
 * The cost of writing log lines: `postern serve`'s old sink (process.stdout.write of
 * each line, a synchronous write(2) per line on Linux for a file or a pipe) against
 * LogWriter (lines queued, one asynchronous fs.write per event-loop turn on the thread
 * pool). Run with `npm run bench:logs`.
 *
 * Each round is a child process writing LINES realistic syslog lines to its standard
 * output, BURST lines per event-loop turn (what a busy server logs between two turns),
 * into a regular file or into a pipe the parent drains. The contenders alternate
 * (old new old new ...) over ROUNDS counted rounds after one warm-up of each, per
 * destination. Reported per round and as medians: lines per second (until the last
 * line is written), process CPU per line (user + system of every thread, from
 * process.cpuUsage) and main-thread CPU per line (/proc/self/task/PID/stat: the time
 * the event loop itself spends, what limits a server's throughput).
 *
 * Environment: ROUNDS (default 5), LINES (default 200000), BURST (default 20).
 */

import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const LINES = Number(process.env.LINES ?? 200_000);
const BURST = Number(process.env.BURST ?? 20);
const HERE = fileURLToPath(import.meta.url);

/** Main-thread CPU seconds from /proc (clock ticks of 10 ms). */
function mainThreadCpu() {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function child(mode) {
  const { formatLogLine } = await import(pathToFileURL(join(HERE, '../../dist/index.js')).href);
  const { LogWriter } = await import(process.env.LOG_WRITER_MODULE);
  const opts = { hostname: 'mx.example.com' };
  const sample = [
    { component: 'smtpd', text: 'connect from mail.example.org[192.0.2.17]' },
    { component: 'smtpd', queueId: '8E9Ph00CFYN4wG', text: 'client=mail.example.org[192.0.2.17]' },
    {
      component: 'cleanup',
      queueId: '8E9Ph00CFYN4wG',
      text: 'message-id=<20261206115629.014875@mail.example.org>',
    },
    {
      component: 'qmgr',
      queueId: '8E9Ph00CFYN4wG',
      text: 'from=<sender@example.org>, size=4312, nrcpt=1 (queue active)',
    },
    {
      component: 'smtp',
      queueId: '8E9Ph00CFYN4wG',
      text: 'to=<rcpt@example.net>, relay=mx.example.net[198.51.100.25]:25, delay=0.12, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4XYZ)',
    },
    { component: 'qmgr', queueId: '8E9Ph00CFYN4wG', text: 'removed' },
    {
      component: 'smtpd',
      text: 'disconnect from mail.example.org[192.0.2.17] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5',
    },
  ];
  const lines = sample.map(
    (e) => `${formatLogLine({ time: Date.now(), level: 'info', ...e }, opts)}\n`,
  );
  const writer = mode === 'new' ? new LogWriter({ fd: 1 }) : undefined;
  const write = writer ? (l) => writer.write(l) : (l) => process.stdout.write(l);
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadCpu();
  const t0 = process.hrtime.bigint();
  let i = 0;
  await new Promise((resolve) => {
    const turn = () => {
      for (let n = 0; n < BURST && i < LINES; n++, i++) write(lines[i % lines.length]);
      if (i < LINES) setImmediate(turn);
      else resolve();
    };
    turn();
  });
  if (writer) await writer.close();
  else await new Promise((resolve) => process.stdout.write('', resolve));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const main = mainThreadCpu() - main0;
  process.stderr.write(
    `${JSON.stringify({
      linesPerSecond: LINES / seconds,
      cpuPerLineUs: (cpu.user + cpu.system) / LINES,
      mainPerLineUs: (main * 1e6) / LINES,
    })}\n`,
  );
}

function round(mode, destination, dir, env) {
  return new Promise((resolve, reject) => {
    const file = join(dir, `${mode}.log`);
    const out = destination === 'file' ? openSync(file, 'w') : 'pipe';
    const c = spawn(process.execPath, [HERE, '--child', mode], {
      env,
      stdio: ['ignore', out, 'pipe'],
    });
    if (typeof out === 'number') closeSync(out);
    // The reader of a pipe keeps up and discards.
    c.stdout?.on('data', () => {});
    let err = '';
    c.stderr.on('data', (d) => {
      err += d;
    });
    c.on('exit', (code) => {
      if (destination === 'file') rmSync(file, { force: true });
      if (code !== 0) reject(new Error(`child ${mode} exited ${code}: ${err}`));
      else resolve(JSON.parse(err.trim().split('\n').pop()));
    });
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'postern-logbench-'));
  // LogWriter is not a public export: bundle it from the source for the children.
  const { build } = await import('esbuild');
  const module = join(dir, 'log-writer.mjs');
  await build({
    entryPoints: [join(HERE, '../../src/cli/log-writer.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: module,
    logLevel: 'error',
  });
  const env = { ...process.env, LOG_WRITER_MODULE: pathToFileURL(module).href };
  console.log(
    `log writing: ${LINES} lines per round, ${BURST} per event-loop turn, ${ROUNDS} alternated rounds after a warm-up`,
  );
  for (const destination of ['file', 'pipe']) {
    await round('old', destination, dir, env);
    await round('new', destination, dir, env);
    const runs = { old: [], new: [] };
    for (let r = 0; r < ROUNDS; r++) {
      for (const mode of ['old', 'new']) runs[mode].push(await round(mode, destination, dir, env));
    }
    console.log(`\n${destination}:`);
    console.log(
      'round  old lines/s  new lines/s  ratio   old cpu µs/line  new cpu µs/line  old main µs/line  new main µs/line',
    );
    for (let r = 0; r < ROUNDS; r++) {
      const o = runs.old[r];
      const n = runs.new[r];
      console.log(
        `${String(r + 1).padStart(5)}  ${o.linesPerSecond.toFixed(0).padStart(11)}  ${n.linesPerSecond.toFixed(0).padStart(11)}  ${(n.linesPerSecond / o.linesPerSecond).toFixed(2).padStart(5)}x  ${o.cpuPerLineUs.toFixed(2).padStart(15)}  ${n.cpuPerLineUs.toFixed(2).padStart(15)}  ${o.mainPerLineUs.toFixed(2).padStart(16)}  ${n.mainPerLineUs.toFixed(2).padStart(16)}`,
      );
    }
    const m = (mode, key) => median(runs[mode].map((x) => x[key]));
    console.log(
      `median ${m('old', 'linesPerSecond').toFixed(0).padStart(11)}  ${m('new', 'linesPerSecond').toFixed(0).padStart(11)}  ${(m('new', 'linesPerSecond') / m('old', 'linesPerSecond')).toFixed(2).padStart(5)}x  ${m('old', 'cpuPerLineUs').toFixed(2).padStart(15)}  ${m('new', 'cpuPerLineUs').toFixed(2).padStart(15)}  ${m('old', 'mainPerLineUs').toFixed(2).padStart(16)}  ${m('new', 'mainPerLineUs').toFixed(2).padStart(16)}`,
    );
  }
  rmSync(dir, { recursive: true, force: true });
}

if (process.argv[2] === '--child') await child(process.argv[3]);
else await main();
