#!/usr/bin/env node
// Entry point of the `postern` command: the built CLI lives in dist/.

/**
 * A young generation of 4 MiB (V8's new space: two semi-spaces of 2 MiB): under load
 * every message leaves ~70 KB of garbage, and each scavenge costs about what is alive
 * at that moment (the sessions in flight), so the size of the young generation sets how
 * often that cost is paid. At 20 sessions, 4 MiB takes ~20% less CPU per message than
 * the initial 1 MiB for ~6 MiB more resident memory; V8's own limit (16 MiB semi-spaces)
 * would take ~25 MiB more for little further gain.
 */
const YOUNG_TARGET = 4 * 1024 * 1024;

/**
 * The main thread's young generation once an smtpd worker thread runs beside it
 * (smtpdWorkerThreads): the thread then takes the sessions, and the main thread's own
 * garbage per message (queue, delivery, log) is less than half of it, so V8's initial
 * 2 MiB costs about 3% more CPU per message than 4 MiB and gives back 2 MiB of the
 * process's peak memory.
 */
const YOUNG_TARGET_BESIDE_THREAD = 2 * 1024 * 1024;

/**
 * V8 grows the semi-spaces by `--semi-space-growth-factor` when scavenges find much
 * alive, and shrinks them back when allocation goes quiet. Every STEER_MS the factor is
 * set so that the next growth lands on YOUNG_TARGET, and to 1 once there: the young
 * generation reaches its target under load and goes no further. (A growth needs more
 * than the semi-space's size to survive scavenges since the last one: at 4 MiB, well
 * over STEER_MS at any load this process can take.) A timer rather than a GC observer:
 * observing GC makes an entry object per collection, which costs more than it saves.
 *
 * V8 raises the factor to at least 2 whenever it makes a heap, and the factor is the
 * process's: an smtpd worker thread's start (smtpdWorkerThreads) would put it back to 2
 * under a steer that believes it is 1, and both heaps' young generations would double
 * at every growth up to V8's limit (16 MiB semi-spaces, some 50 MiB more resident at
 * 20 sessions). So the factor is set again as soon as a thread is running.
 */
const STEER_MS = 100;

/** The young generation's steer, given the heap's spaces every STEER_MS. */
function youngGenerationSteer(v8) {
  // Held where it is while the server starts: loading its modules is one long run of
  // code that no timer interrupts, during which V8 could grow it past the target.
  let factor = 1;
  let target = YOUNG_TARGET;
  const hold = (next) => {
    factor = next;
    v8.setFlagsFromString(`--semi-space-growth-factor=${next}`);
  };
  hold(1);
  // 'online' comes once the thread runs, so once its heap is made.
  process.on('worker', (worker) =>
    worker.once('online', () => {
      target = YOUNG_TARGET_BESIDE_THREAD;
      hold(factor);
    }),
  );
  return (spaces) => {
    const young = spaces.find((s) => s.space_name === 'new_space');
    const size = young?.space_size ?? target;
    const next = size < target ? Math.max(2, Math.floor(target / size)) : 1;
    if (next !== factor) hold(next);
  };
}

/**
 * While a heap is small, V8 lets its old generation grow by its least step, 8 MiB, before
 * a full collection, and starts that collection's marking only a young generation's
 * worth before the limit, so the heap peaks at the limit. Started once MARKING_START
 * percent of the step is used (`--incremental-marking-hard-trigger`), marking ends well
 * before: each heap peaks some 4 MiB lower (8 MiB for the process with its smtpd thread,
 * at 20 sessions) for about 3% more CPU per message. Once the main thread's old
 * generation holds more than SMALL_OLD_GENERATION (a queue of many thousand messages),
 * the step is half of what is alive and an early start would only add collections (half
 * as much CPU again per message for the scheduler of a 200 000-message queue), so V8's
 * own start applies again. The flag is read at each allocation step of either heap.
 */
const MARKING_START = 40;
const SMALL_OLD_GENERATION = 24 * 1024 * 1024;

/**
 * The marking start's steer, given the heap's spaces every STEER_MS; set at once, for a
 * heap that starts small.
 */
function markingStartSteer(v8) {
  let start = MARKING_START;
  v8.setFlagsFromString(`--incremental-marking-hard-trigger=${start}`);
  return (spaces) => {
    const old = spaces.find((s) => s.space_name === 'old_space');
    const next = (old?.space_used_size ?? 0) < SMALL_OLD_GENERATION ? MARKING_START : 0;
    if (next === start) return;
    start = next;
    v8.setFlagsFromString(`--incremental-marking-hard-trigger=${next}`);
  };
}

/** Gives every steer one reading of the heap's spaces every STEER_MS. */
function steerHeap(v8, steers) {
  if (steers.length === 0) return;
  setInterval(() => {
    const spaces = v8.getHeapSpaceStatistics();
    for (const steer of steers) steer(spaces);
  }, STEER_MS).unref();
}

// V8's flags are the process's: an smtpd worker thread (smtpdWorkerThreads) finds them set
// and steered by the main thread.
const { isMainThread } = await import('node:worker_threads');
if (process.argv[2] === 'serve' && isMainThread) {
  // The daemon's garbage is short-lived per-message objects and its live heap is small,
  // yet V8 sizes its heap for throughput: semi-spaces growing from 1 to 16 MiB each and
  // an old generation let to grow up to 4x its live size before a full collection, some
  // 60 MiB of resident memory at 20 sessions that buys no throughput here. The heap's
  // sizes are fixed when it is made (--max-semi-space-size and the like), but these two
  // flags are read at each collection: the old generation is collected when it has
  // grown by half (or by V8's least step, 8 MiB, which is more while less than 16 MiB is
  // alive), and the semi-spaces are held at YOUNG_TARGET (above). A flag the operator
  // sets in NODE_OPTIONS or on node's command line is left as they set it.
  const own = `${process.env.NODE_OPTIONS ?? ''} ${process.execArgv.join(' ')}`;
  const v8 = await import('node:v8');
  const steers = [];
  if (!/semi[-_]space/.test(own)) steers.push(youngGenerationSteer(v8));
  if (!/heap[-_]growing[-_]percent/.test(own)) v8.setFlagsFromString('--heap-growing-percent=50');
  if (!/incremental[-_]marking[-_](hard|soft)[-_]trigger/.test(own))
    steers.push(markingStartSteer(v8));
  steerHeap(v8, steers);
  // One thread per scavenge: V8 splits each scavenge of the young generation over its
  // helper threads, which pays on idle cores; a mail server's cores are busy with its
  // own processes and the kernel's network work, so the helpers start late and the
  // split costs more than it saves (20 sessions over one smtpd worker: about a tenth
  // less CPU per message, and as much more mail per second). Read at each scavenge.
  if (!/parallel[-_]scavenge/.test(own)) v8.setFlagsFromString('--no-parallel-scavenge');
}
await import('../dist/cli/main.js');
