#!/usr/bin/env node
/**
 * What preallocated journal segments save on this machine's disk: 4 KB messages
 * committed one at a time (each waits for its own fdatasync, as with one SMTP client)
 * or from `--writers` concurrent writers, into a journal that zero-fills its next
 * segment in the background (the default) against one whose segments grow as they are
 * written (`preallocate: false`).
 *
 * Each journal is opened once and kept open, as in a server: every message is removed
 * after its commit, so finished segments are deleted and new ones made as in service.
 * One uncounted warm-up round each, then alternated rounds (A B, B A, ...). Every round
 * is printed (msg/s, median and 90th percentile commit latency, CPU per message of this
 * process), then medians and the per-round ratios. Run it on a disk, not tmpfs.
 *
 * Usage: node bench/journal-preallocation.mjs [--rounds 7 --messages 2000 --writers 1 --dir DIR]
 * Sources are bundled with esbuild into a temporary directory (dist/ is untouched).
 */

import { promises as fs, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { median } from './lib/net.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '7' },
    messages: { type: 'string', default: '2000' },
    writers: { type: 'string', default: '1' },
    dir: { type: 'string' },
  },
});
const ROUNDS = Number(values.rounds);
const MESSAGES = Number(values.messages);
const WRITERS = Number(values.writers);

mkdirSync(join(root, 'node_modules/.cache'), { recursive: true });
const bundles = mkdtempSync(join(root, 'node_modules/.cache/postern-prealloc-bench-'));
const lib = join(bundles, 'lib.mjs');
await build({
  stdin: {
    contents: `export { Journal } from './src/queue/stores/journal/journal.js';
      export { QueueIdGenerator } from './src/queue-id.js';`,
    resolveDir: root,
    loader: 'ts',
  },
  bundle: true,
  platform: 'node',
  format: 'esm',
  packages: 'external',
  outfile: lib,
  logLevel: 'error',
});
const m = await import(pathToFileURL(lib).href);

const work = values.dir ? resolve(values.dir) : mkdtempSync(join(tmpdir(), 'postern-prealloc-'));
const ids = new m.QueueIdGenerator('PAbch');
const body = Buffer.alloc(4096, 0x61);
const recordFor = (queueId) => ({
  queueId,
  formatVersion: 1,
  sender: 'bench@client.example',
  recipients: [{ id: 1, address: 'sink@remote.example', originalAddress: 'sink@remote.example' }],
  bodyType: '8BITMIME',
  smtputf8: false,
  eightBit: false,
  size: body.length,
  headerSize: 0,
  arrivalTime: Date.now(),
  warnTime: 0,
  source: { component: 'smtpd', protocol: 'ESMTP', client: { address: '127.0.0.1' } },
});

const journals = {};
for (const [name, preallocate] of [
  ['preallocated', true],
  ['growing', false],
]) {
  const directory = await fs.mkdtemp(join(work, `${name}-`));
  journals[name] = await m.Journal.open({ directory, handoffBudget: 0, preallocate });
}

/** One round: MESSAGES commits from WRITERS writers, each message removed after. */
async function round(journal) {
  const latencies = [];
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: WRITERS }, async () => {
      while (next < MESSAGES) {
        next++;
        const id = ids.next();
        const start = performance.now();
        await journal.appendMessage(recordFor(id), [body]);
        latencies.push(performance.now() - start);
        void journal.markRemoved(id);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  return {
    rate: MESSAGES / secs,
    p50: latencies[latencies.length >> 1],
    p90: latencies[Math.floor(latencies.length * 0.9)],
    cpuMs: (cpu.user + cpu.system) / 1000 / MESSAGES,
  };
}

console.log(
  `journal preallocation: ${MESSAGES} commits of 4 KB per round from ${WRITERS} writer(s), ${ROUNDS} alternated rounds, in ${work}`,
);
const names = Object.keys(journals);
for (const name of names) await round(journals[name]);
const results = Object.fromEntries(names.map((n) => [n, []]));
const show = (r) =>
  `${r.rate.toFixed(0)} msg/s, latency p50 ${r.p50.toFixed(3)} ms p90 ${r.p90.toFixed(3)} ms, ${r.cpuMs.toFixed(3)} ms CPU/msg`;
for (let i = 1; i <= ROUNDS; i++) {
  const order = i % 2 === 1 ? names : [...names].reverse();
  const line = [];
  for (const name of order) {
    const r = await round(journals[name]);
    results[name].push(r);
    line.push(`${name} ${show(r)}`);
  }
  console.log(`round ${i}: ${line.join(' | ')}`);
}
console.log('\nmedians');
for (const name of names) {
  const rs = results[name];
  const med = (k) => median(rs.map((r) => r[k]));
  const s = journals[name].stats();
  console.log(
    `  ${name.padEnd(12)} ${show({ rate: med('rate'), p50: med('p50'), p90: med('p90'), cpuMs: med('cpuMs') })} ` +
      `(segments made ${s.segmentsCreated}, spares filled ${s.segmentsPreallocated})`,
  );
}
const ratios = results.preallocated.map((r, i) => r.rate / results.growing[i].rate);
console.log(
  `  ratio preallocated/growing: ${(median(results.preallocated.map((r) => r.rate)) / median(results.growing.map((r) => r.rate))).toFixed(2)}x throughput (per round ${ratios.map((r) => r.toFixed(2)).join(' / ')})`,
);
for (const j of Object.values(journals)) await j.close();
if (!values.dir) rmSync(work, { recursive: true, force: true });
rmSync(bundles, { recursive: true, force: true });
