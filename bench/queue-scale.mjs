#!/usr/bin/env node
/**
 * Queue scale benchmark: N messages (default 200 000) queued to D destinations
 * (default 2 000) in a FileQueueStore, then:
 * - resident memory of this process (peak RSS sampled every 200 ms, and VmHWM);
 * - `postern queue shape --config FILE` run as a separate process against this
 *   process's control socket: wall time until it answers;
 * - the scheduler's per-message overhead: CPU per message of the Scheduler alone
 *   (add, dispatch, complete with feedback) over every message, and of the whole
 *   QueueManager (claim, route, schedule, record, remove) delivering `--deliver`
 *   messages (default 20 000) through an agent that accepts at once.
 *
 * Usage: node bench/queue-scale.mjs [--messages N] [--destinations D] [--deliver K]
 *        [--no-journal] (a file per message instead of the queue journal)
 *        [--v8-defaults]
 * Heap sizing: the queue is measured under the heap policy `postern serve` runs with
 * (bin/postern.mjs: the old generation collected when it has grown by half, 4 MiB semi-spaces),
 * since the daemon is what holds a queue this size; the bench re-runs itself with those
 * flags. --v8-defaults measures with V8's own sizing instead (what an embedding
 * application gets unless it sets them), which lets the heap grow to several times its
 * live size before a full collection.
 * Sources are bundled with esbuild into a temporary directory (dist/ is untouched).
 */

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '200000' },
    destinations: { type: 'string', default: '2000' },
    deliver: { type: 'string', default: '20000' },
    'no-journal': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    'v8-defaults': { type: 'boolean', default: false },
  },
});

const SERVE_HEAP_FLAGS = ['--heap-growing-percent=50', '--max-semi-space-size=4'];
if (!values['v8-defaults'] && !process.execArgv.includes(SERVE_HEAP_FLAGS[0])) {
  const r = spawnSync(
    process.execPath,
    [...SERVE_HEAP_FLAGS, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: 'inherit' },
  );
  process.exit(r.status ?? 1);
}
const N = Number(values.messages);
const D = Number(values.destinations);
const K = Math.min(N, Number(values.deliver));

const work = mkdtempSync(join(tmpdir(), 'postern-qscale-'));
// Bundles live under node_modules/.cache so their npm imports resolve; packages stay
// external. esbuild runs as a child process so it adds nothing to this process's memory.
mkdirSync(join(root, 'node_modules/.cache'), { recursive: true }); // absent after a fresh npm ci
const bundles = mkdtempSync(join(root, 'node_modules/.cache/postern-qscale-'));
const lib = join(bundles, 'lib.mjs');
const cli = join(bundles, 'cli.mjs');
const esbuildBin = join(root, 'node_modules/.bin/esbuild');
const common = [
  '--bundle',
  '--platform=node',
  '--format=esm',
  '--packages=external',
  '--log-level=error',
];
const libEntry = `
  export { FileQueueStore } from './src/queue/stores/file-store.js';
  export { QueueManager } from './src/queue/qmgr/queue-manager.js';
  export { Scheduler } from './src/queue/qmgr/scheduler.js';
  export { QueueIdGenerator } from './src/queue-id.js';
  export { AgentRegistry } from './src/deliver/agent-registry.js';
  export { resolveParameters } from './src/mta/main-parameters.js';
  export { QueueControlServer, directQueueOperations } from './src/queue/queue-control.js';
  export { silentLogger } from './src/log.js';
  export { SmtpReply } from './src/smtp-reply.js';
`;
for (const [args, input] of [
  [[...common, '--loader=ts', '--sourcefile=entry.ts', `--outfile=${lib}`], libEntry],
  [[...common, join(root, 'src/cli/main.ts'), `--outfile=${cli}`], undefined],
]) {
  const r = spawnSync(esbuildBin, args, {
    cwd: root,
    input,
    stdio: ['pipe', 'inherit', 'inherit'],
  });
  if (r.status !== 0) throw new Error('esbuild failed');
}
const m = await import(pathToFileURL(lib).href);

let peakRss = 0;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
}, 200);
sampler.unref();
const mb = (b) => `${(b / 1048576).toFixed(1)} MB`;
let overallPeak = 0;
/** Prints the peak RSS of the phase that just ended and starts the next phase's. */
const phasePeak = (label) => {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  console.log(`  peak RSS during ${label}: ${mb(peakRss)}`);
  overallPeak = Math.max(overallPeak, peakRss);
  peakRss = process.memoryUsage.rss();
};
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const directory = join(work, 'queue');
const store = new m.FileQueueStore({
  directory,
  ...(values['no-journal'] ? { journal: false } : {}),
});
await store.open();
const ids = new m.QueueIdGenerator('Bench');
const body = Buffer.from(
  `From: a@example.org\r\nTo: b@example.net\r\nSubject: bench\r\n\r\n${'x'.repeat(900)}\r\n`,
);

// 1. Queue N messages, 64 commits in flight (the store shares directory fsyncs).
let t = performance.now();
let next = 0;
async function commitWorker() {
  while (next < N) {
    const i = next++;
    const queueId = ids.next();
    const w = await store.create(queueId);
    w.content.end(body);
    const rcpt = `user${i}@d${i % D}.example`;
    await w.commit({
      queueId,
      sender: 'sender@example.org',
      recipients: [{ id: 1, address: rcpt, originalAddress: rcpt }],
      bodyType: '7BIT',
      smtputf8: false,
      eightBit: false,
      size: body.length,
      headerSize: 70,
      arrivalTime: Date.now() - (i % 1000) * 60_000,
      warnTime: 0,
      source: { component: 'bench', protocol: 'ESMTP' },
    });
  }
}
await Promise.all(Array.from({ length: 64 }, commitWorker));
const queueSecs = (performance.now() - t) / 1000;
console.log(
  `queued ${N} messages to ${D} destinations in ${queueSecs.toFixed(1)} s (${(N / queueSecs).toFixed(0)} msg/s)`,
);
phasePeak('queueing');
console.log(
  `RSS after queueing: ${mb(process.memoryUsage.rss())} (heap ${mb(process.memoryUsage().heapUsed)})`,
);

// 2. `postern queue shape` from another process, through this process's control socket.
const control = new m.QueueControlServer({
  directory,
  operations: m.directQueueOperations(store),
  log: m.silentLogger.for('bench'),
});
await control.listen();
const config = join(work, 'config.json');
writeFileSync(config, JSON.stringify({ queueStore: { type: 'file', directory } }));
const shapeRuns = [];
for (let run = 0; run < 3; run++) {
  t = performance.now();
  const child = await new Promise((resolveChild) => {
    import('node:child_process').then(({ execFile }) => {
      execFile(
        process.execPath,
        [cli, 'queue', 'shape', '--top', '5', '--config', config],
        { maxBuffer: 1 << 26 },
        (err, stdout, stderr) => resolveChild({ err, stdout, stderr }),
      );
    });
  });
  if (child.err) throw new Error(`queue shape failed: ${child.stderr}`);
  shapeRuns.push((performance.now() - t) / 1000);
  if (run === 0) process.stdout.write(child.stdout);
}
shapeRuns.sort((a, b) => a - b);
// The floor: starting node and loading the CLI, without asking the queue anything.
const floor = [];
for (let run = 0; run < 3; run++) {
  const t0 = performance.now();
  spawnSync(process.execPath, [cli, 'queue', '--help']);
  floor.push((performance.now() - t0) / 1000);
}
floor.sort((a, b) => a - b);
console.log(`CLI start-up alone (postern queue --help): median ${floor[1].toFixed(2)} s`);
console.log(
  `postern queue shape (separate process, 3 runs): median ${shapeRuns[1].toFixed(2)} s, runs ${shapeRuns.map((s) => s.toFixed(2)).join(' ')}`,
);
await control.close();
phasePeak('queue shape');

// 3a. Scheduler alone: every message as one job, completed with positive feedback.
{
  let running = [];
  const scheduler = new m.Scheduler({
    clock: {
      now: () => Date.now(),
      setTimeout: (fn, ms) => {
        const h = setTimeout(fn, ms);
        h.unref();
        return { cancel: () => clearTimeout(h) };
      },
    },
    processLimit: 100,
    settings: () => ({
      concurrencyLimit: 20,
      initialConcurrency: 5,
      positiveFeedback: 1,
      negativeFeedback: 1,
      failedCohortLimit: 1,
      rateDelay: 0,
      deadMs: 300_000,
    }),
    start: (job) => running.push(job),
    dead: () => undefined,
  });
  const c0 = cpuMs();
  t = performance.now();
  // Jobs enter in windows of qmgrMessageActiveLimit (20 000), as the active window feeds them.
  let done = 0;
  for (let base = 0; base < N; base += 20_000) {
    for (let i = base; i < Math.min(N, base + 20_000); i++)
      scheduler.add({
        messageId: `m${i}`,
        destination: `smtp\u0000d${i % D}.example`,
        transport: 'smtp',
      });
    scheduler.dispatch();
    while (running.length > 0) {
      const batch = running;
      running = [];
      for (const job of batch) {
        scheduler.completed(job, { ok: true });
        done++;
      }
    }
  }
  const cpu = cpuMs() - c0;
  phasePeak('scheduler alone');
  console.log(
    `scheduler alone: ${done} jobs, ${((cpu * 1000) / done).toFixed(2)} µs CPU per message (${((performance.now() - t) / 1000).toFixed(2)} s)`,
  );
}

// 3b. The whole queue manager delivering K of the queued messages.
{
  const params = m.resolveParameters({ myhostname: 'bench.example' });
  const agents = new m.AgentRegistry();
  let delivered = 0;
  const ok = new m.SmtpReply(250, '2.0.0', 'ok');
  agents.register('smtp', {
    async deliver(request, reporter) {
      for (const r of request.recipients)
        reporter.recipient(r.id, { status: 'sent', reply: ok, relay: 'bench' });
      reporter.destination({ ok: true });
      delivered++;
    },
  });
  const resolver = {
    async resolve(address) {
      return {
        addressClass: 'default',
        transport: 'smtp',
        nexthop: address.slice(address.indexOf('@') + 1),
        recipient: address,
        routed: false,
      };
    },
  };
  const qmgr = new m.QueueManager({
    store,
    resolver,
    agents,
    bounce: { notify: async () => undefined },
    params,
  });
  const c0 = cpuMs();
  t = performance.now();
  qmgr.start();
  while (delivered < K) await new Promise((r) => setTimeout(r, 50));
  await qmgr.stop();
  const secs = (performance.now() - t) / 1000;
  const cpu = cpuMs() - c0;
  phasePeak('queue manager delivery');
  console.log(
    `queue manager: delivered ${delivered} messages in ${secs.toFixed(1)} s (${(delivered / secs).toFixed(0)} msg/s), ${(cpu / delivered).toFixed(3)} ms CPU per message (store file I/O included)`,
  );
}

await store.close();
clearInterval(sampler);
overallPeak = Math.max(overallPeak, peakRss, process.memoryUsage.rss());
peakRss = overallPeak;
const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
console.log(
  `heap policy: ${values['v8-defaults'] ? 'V8 defaults' : `postern serve's (${SERVE_HEAP_FLAGS.join(' ')})`}\npeak RSS: ${mb(peakRss)} sampled, VmHWM ${hwm ? mb(Number(hwm[1]) * 1024) : 'n/a'} (limit 256 MB: ${Math.max(peakRss, hwm ? Number(hwm[1]) * 1024 : 0) < 256 * 1048576 ? 'OK' : 'EXCEEDED'})`,
);
rmSync(bundles, { recursive: true, force: true });
if (!values.keep) rmSync(work, { recursive: true, force: true });
else console.log(`kept ${work}`);
