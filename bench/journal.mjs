#!/usr/bin/env node
/**
 * Durable commit throughput on this machine's disk: 4 KB messages committed through
 * the queue journal (group commit: one pwritev and one fdatasync per batch) against
 * FileQueueStore with a file per message (`journal: false`; per message: open, write,
 * fdatasync, close, rename, and a share of a directory fsync), from 1 and from 20
 * concurrent writers.
 *
 * Both go through the MessageWriter interface Cleanup uses (create or construct a
 * writer, write the content, commit the record), run in this process in alternated
 * order (A B, then B A, ...) for every round, each round in fresh directories. Every
 * round is printed, then medians and the ratio of medians, fdatasyncs (plus directory
 * fsyncs) per message, and CPU per message of this process.
 *
 * Then recovery: `--recover` messages (default 100 000 of 1 KB) are journalled and the
 * journal is opened again: time, MB/s read, and heap held per live message.
 *
 * Usage: npm run bench:journal [-- --rounds 5 --messages 2000 --size 4096 --dir DIR
 *        --recover 100000 --recover-size 1024]
 * Sources are bundled with esbuild into a temporary directory (dist/ is untouched).
 */

import { spawnSync } from 'node:child_process';
import { promises as fs, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './lib/net.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    messages: { type: 'string', default: '2000' },
    size: { type: 'string', default: '4096' },
    writers: { type: 'string', default: '1,20' },
    gather: { type: 'string', default: '0' },
    recover: { type: 'string', default: '100000' },
    'recover-size': { type: 'string', default: '1024' },
    dir: { type: 'string' },
  },
});
const ROUNDS = Number(values.rounds);
const MESSAGES = Number(values.messages);
const SIZE = Number(values.size);
const WRITERS = values.writers.split(',').map(Number);
const GATHER_MS = Number(values.gather);
const RECOVER = Number(values.recover);
const RECOVER_SIZE = Number(values['recover-size']);

// Bundles live under node_modules/.cache so their npm imports resolve.
mkdirSync(join(root, 'node_modules/.cache'), { recursive: true });
const bundles = mkdtempSync(join(root, 'node_modules/.cache/postern-journal-bench-'));
const lib = join(bundles, 'lib.mjs');
const entry = `
  export { FileQueueStore } from './src/queue/stores/file-store.js';
  export { Journal } from './src/queue/stores/journal/journal.js';
  export { JournalMessageWriter } from './src/queue/stores/journal/journal-message-writer.js';
  export { nodeJournalIo } from './src/queue/stores/journal/journal-io.js';
  export { QueueIdGenerator } from './src/queue-id.js';
`;
const built = spawnSync(
  join(root, 'node_modules/.bin/esbuild'),
  [
    '--bundle',
    '--platform=node',
    '--format=esm',
    '--packages=external',
    '--log-level=error',
    '--loader=ts',
    '--sourcefile=entry.ts',
    `--outfile=${lib}`,
  ],
  { cwd: root, input: entry, stdio: ['pipe', 'inherit', 'inherit'] },
);
if (built.status !== 0) throw new Error('esbuild failed');
const m = await import(pathToFileURL(lib).href);

const work = values.dir ? resolve(values.dir) : mkdtempSync(join(tmpdir(), 'postern-jbench-'));
await fs.mkdir(work, { recursive: true });
const fsType = spawnSync('stat', ['-f', '-c', '%T', work], { encoding: 'utf8' }).stdout.trim();
if (fsType === 'tmpfs') {
  console.error(`bench: ${work} is on tmpfs, where fsync costs nothing; pass --dir on a disk`);
  process.exit(64);
}

const ids = new m.QueueIdGenerator('JBnch');
const content = Buffer.alloc(SIZE, 0x61);
Buffer.from('Subject: bench\r\n\r\n').copy(content);
for (let i = 78; i < SIZE; i += 80) content.write('\r\n', i - 2);

function recordFor(queueId) {
  return {
    queueId,
    sender: 'bench@client.example',
    recipients: [{ id: 1, address: 'sink@remote.example', originalAddress: 'sink@remote.example' }],
    bodyType: '8BITMIME',
    smtputf8: false,
    eightBit: false,
    size: SIZE,
    headerSize: 18,
    arrivalTime: Date.now(),
    warnTime: 0,
    source: { component: 'smtpd', protocol: 'ESMTP', client: { address: '127.0.0.1' } },
  };
}

/** The journal's file-system layer, counting fdatasyncs and directory fsyncs. */
function countingIo(counts) {
  const io = m.nodeJournalIo;
  return {
    ...io,
    async open(path, flags) {
      const h = await io.open(path, flags);
      return {
        writev: (b, p) => h.writev(b, p),
        read: (b, o, l, p) => h.read(b, o, l, p),
        async datasync() {
          counts.syncs++;
          await h.datasync();
        },
        truncate: (l) => h.truncate(l),
        stat: () => h.stat(),
        close: () => h.close(),
      };
    },
    async syncDirectory(path) {
      counts.syncs++;
      await io.syncDirectory(path);
    },
  };
}

/** Runs `writers` loops committing MESSAGES messages through `make(queueId)`. */
async function drive(writers, make) {
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (next < MESSAGES) {
        next++;
        const queueId = ids.next();
        const writer = await make(queueId);
        writer.content.end(content);
        await writer.commit(recordFor(queueId));
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { rate: MESSAGES / secs, cpuMs: (cpu.user + cpu.system) / 1000 / MESSAGES };
}

const contenders = {
  async journal(writers) {
    const dir = await fs.mkdtemp(join(work, 'journal-'));
    const counts = { syncs: 0 };
    const journal = await m.Journal.open({
      directory: dir,
      io: countingIo(counts),
      gatherMs: GATHER_MS,
      handoffBudget: 0,
    });
    const base = counts.syncs;
    const host = {
      journal,
      committed: () => {},
      spill: () => {
        throw new Error('a bench message spilled');
      },
      done: () => {},
    };
    const r = await drive(writers, async (id) => new m.JournalMessageWriter(id, host));
    const syncs = counts.syncs - base;
    const stats = journal.stats();
    await journal.close();
    await fs.rm(dir, { recursive: true, force: true });
    return { ...r, syncsPerMsg: syncs / MESSAGES, batch: stats.durableFrames / stats.syncs };
  },
  async 'file store'(writers) {
    const dir = await fs.mkdtemp(join(work, 'files-'));
    const store = new m.FileQueueStore({ directory: dir, journal: false });
    await store.open();
    const dirSyncs = store.directorySyncCount;
    const r = await drive(writers, (id) => store.create(id));
    // One fdatasync per message (FileMessageWriter) plus the shared directory fsyncs.
    const syncs = MESSAGES + store.directorySyncCount - dirSyncs;
    await store.close();
    await fs.rm(dir, { recursive: true, force: true });
    return { ...r, syncsPerMsg: syncs / MESSAGES, batch: undefined };
  },
};

const fmt = (x, d = 0) => (x === undefined ? '-' : x.toFixed(d));
console.log(
  `journal bench: ${MESSAGES} messages of ${SIZE} bytes per run, ${ROUNDS} rounds, ` +
    `writers ${WRITERS.join(' and ')}, gatherMs ${GATHER_MS}, in ${work} (${fsType})`,
);
const results = {};
const names = Object.keys(contenders);
// Warm-up (not counted): JIT, page cache, directory creation.
for (const name of names) await contenders[name](Math.max(...WRITERS));
for (let round = 1; round <= ROUNDS; round++) {
  for (const writers of WRITERS) {
    const order = round % 2 === 1 ? names : [...names].reverse();
    const line = [];
    for (const name of order) {
      const r = await contenders[name](writers);
      const key = `${writers}:${name}`;
      results[key] = [...(results[key] ?? []), r];
      line.push(
        `${name} ${fmt(r.rate)} msg/s (${fmt(r.syncsPerMsg, 3)} syncs/msg, ${fmt(r.cpuMs, 3)} ms CPU/msg` +
          `${r.batch === undefined ? '' : `, ${fmt(r.batch, 1)} msgs/fdatasync`})`,
      );
    }
    const [a, b] = order.map((n) => results[`${writers}:${n}`].at(-1).rate);
    const ratio = order[0] === 'journal' ? a / b : b / a;
    console.log(`round ${round}, ${writers} writer(s): ${line.join(' | ')} -> ${fmt(ratio, 2)}x`);
  }
}

console.log('\nmedians');
console.log(
  '| writers | journal msg/s | file store msg/s | ratio | syncs/msg journal | syncs/msg file store | CPU ms/msg journal | CPU ms/msg file store |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const writers of WRITERS) {
  const j = results[`${writers}:journal`];
  const f = results[`${writers}:file store`];
  const med = (xs, k) => median(xs.map((x) => x[k]));
  const ratios = j.map((x, i) => x.rate / f[i].rate);
  console.log(
    `| ${writers} | ${fmt(med(j, 'rate'))} | ${fmt(med(f, 'rate'))} | ${fmt(med(j, 'rate') / med(f, 'rate'), 2)}x (per round ${ratios.map((r) => fmt(r, 2)).join(' / ')}) | ` +
      `${fmt(med(j, 'syncsPerMsg'), 3)} | ${fmt(med(f, 'syncsPerMsg'), 3)} | ${fmt(med(j, 'cpuMs'), 3)} | ${fmt(med(f, 'cpuMs'), 3)} |`,
  );
}

/** Journals RECOVER messages, then measures opening the journal again. */
async function recovery() {
  const dir = await fs.mkdtemp(join(work, 'recover-'));
  const body = Buffer.alloc(RECOVER_SIZE, 0x62);
  const journal = await m.Journal.open({ directory: dir, handoffBudget: 0 });
  let next = 0;
  await Promise.all(
    Array.from({ length: 256 }, async () => {
      while (next < RECOVER) {
        next++;
        const queueId = ids.next();
        await journal.appendMessage({ ...recordFor(queueId), formatVersion: 1 }, [body]);
      }
    }),
  );
  const bytes = journal.stats().segmentBytes;
  await journal.close();
  const heap = () => {
    globalThis.gc?.();
    return process.memoryUsage().heapUsed;
  };
  const before = heap();
  const t0 = performance.now();
  const reopened = await m.Journal.open({ directory: dir, handoffBudget: 0 });
  const ms = performance.now() - t0;
  const held = heap() - before;
  console.log(
    `\nrecovery: ${reopened.recovery.messages} live messages in ${reopened.recovery.segments} segments ` +
      `(${(bytes / 1048576).toFixed(0)} MB) read in ${ms.toFixed(0)} ms ` +
      `(${(bytes / 1048576 / (ms / 1000)).toFixed(0)} MB/s, ${((ms * 1000) / RECOVER).toFixed(1)} µs per message); ` +
      (globalThis.gc
        ? `heap held: ${(held / 1048576).toFixed(1)} MB, ${(held / RECOVER).toFixed(0)} bytes per message`
        : 'run node with --expose-gc for the heap held'),
  );
  await reopened.close();
  await fs.rm(dir, { recursive: true, force: true });
}
if (RECOVER > 0) await recovery();

if (!values.dir) rmSync(work, { recursive: true, force: true });
rmSync(bundles, { recursive: true, force: true });
