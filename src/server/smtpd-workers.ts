/**
 * SmtpdWorkers: the SMTP listeners of `postern serve` served by worker processes
 * (`smtpdWorkerProcesses` of them) or by a worker thread (`smtpdWorkerThreads`). With
 * processes the kernel spreads the connections: the listening sockets are shared with
 * every worker (node:cluster, SCHED_NONE), each accepts for itself, and this process
 * never touches a client's socket; a thread listens itself. Each worker gets a byte
 * stream to this process (a socket pair, or a MessagePort for a thread), over which a
 * StoreRelay applies its messages to the real store, and a queue ID tag no other worker
 * uses.
 *
 * Postfix counterpart: master(8) running `maxproc` smtpd(8) processes of an inet
 * service: it restarts a process that dies and logs `warning: process ... pid N killed
 * by signal 9` once for it, throttles a service whose processes die at start, and
 * passes `postfix reload` and `postfix stop` on.
 *
 * Does not: share anvil's per-client counters or `maxproc` between workers (each
 * counts its own sessions), or let DKIM or a content filter re-read a message (serve
 * refuses those with workers).
 *
 * @module
 */

import { constants } from 'node:os';
import { builtin } from '../builtin.js';
import type { ComponentLogger } from '../log.js';
import type { SmtpdService } from '../mta/smtpd-service.js';
import type { NewMessageRecord, QueueStore } from '../queue/types.js';
import { QueueIdGenerator } from '../queue-id.js';
import type { BoundListener } from '../service-network.js';
import { StoreRelay } from './store-relay.js';
import { type FromWorker, workerExecArgv } from './worker-env.js';
import { MOST_PROCESSES, MOST_THREADS } from './worker-layout.js';
import { startWorker, type WorkerHandle, type WorkerKind } from './worker-start.js';

/**
 * A worker that dies before it is ready (a bad start: a config it cannot load, a port it
 * cannot bind) is started again only after this pause, as master(8) throttles such a
 * service for service_throttle_time (60s; shorter here, as there is one service).
 */
const THROTTLE_MS = 10_000;

/** How long a worker that exited normally is left unreplaced, in case this process is stopping too. */
const REPLACE_MS = 1000;

/** Options of SmtpdWorkers. */
export interface SmtpdWorkersOptions {
  /** How many workers. */
  readonly count: number;
  /** Processes (the default) or threads of this process. */
  readonly kind?: WorkerKind;
  /** Where `master` events go (restarts, throttling). */
  readonly log: ComponentLogger;
  /** Writes log lines a worker rendered (whole lines, each ending in a newline, UTF-8). */
  readonly logLines: (lines: Buffer) => void;
  /** Called for each message a worker queued, once it is durable (the metrics count it). */
  readonly onQueued?: (record: NewMessageRecord) => void;
  /** Queue ID tags already in use (this process's own): workers get others. */
  readonly takenTags?: readonly string[];
}

interface Running {
  readonly worker: WorkerHandle;
  readonly relay: StoreRelay;
  ready: boolean;
  /** Resolves the reload the worker was asked for (on its answer, or when it exits). */
  reloaded: (() => void) | undefined;
  /** Its sessions per listener, as it last reported them. */
  sessions: readonly number[];
}

/**
 * Runs and supervises the smtpd worker processes.
 *
 * @example
 * ```ts
 * const workers = new SmtpdWorkers({ count: 2, log: logger.for('master'), logLines: (b) => writer.writeBytes(b) });
 * const mta = new Mta(config, { logger, smtpdService: workers });
 * ```
 */
export class SmtpdWorkers implements SmtpdService {
  readonly #options: SmtpdWorkersOptions;
  readonly #running = new Set<Running>();
  readonly #tags = new Set<string>();
  /** Relays whose worker's socket has not closed yet (those of exited workers too). */
  readonly #relays = new Set<StoreRelay>();
  #store: QueueStore | undefined;
  #bound: readonly BoundListener[] = [];
  #closing = false;
  #exited: (() => void) | undefined;

  constructor(options: SmtpdWorkersOptions) {
    const [key, most] =
      options.kind === 'thread'
        ? ['smtpdWorkerThreads', MOST_THREADS]
        : ['smtpdWorkerProcesses', MOST_PROCESSES];
    if (!Number.isInteger(options.count) || options.count < 1 || options.count > most)
      throw new RangeError(`${key} ${options.count}: run 1 to ${most} workers, or 0 for none`);
    this.#options = options;
    for (const t of options.takenTags ?? []) this.#tags.add(t);
  }

  async start(store: QueueStore): Promise<readonly BoundListener[]> {
    this.#store = store;
    // The kernel hands each connection to whichever worker accepts first; the primary
    // does not accept and pass every connection on (round robin).
    if (this.#options.kind !== 'thread') {
      const cluster = builtin('cluster');
      cluster.schedulingPolicy = cluster.SCHED_NONE;
      cluster.setupPrimary({
        stdio: ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'],
        execArgv: workerExecArgv(process.execArgv),
      });
    }
    const started = Array.from({ length: this.#options.count }, (_, i) => this.#fork(i + 1));
    try {
      const bound = await Promise.all(started);
      this.#bound = bound[0] ?? [];
    } catch (err) {
      await this.close();
      throw err;
    }
    return this.#bound;
  }

  /** Sessions open on listener `index` in every worker, as they last reported (each second). */
  sessionCount(index: number): number {
    let n = 0;
    for (const r of this.#running.values()) n += r.sessions[index] ?? 0;
    return n;
  }

  /** Tells every worker to read the config again; resolves once each has applied it. */
  async reload(): Promise<readonly BoundListener[]> {
    await Promise.all(
      [...this.#running.values()].map(
        (r) =>
          new Promise<void>((resolve) => {
            const before = r.reloaded;
            r.reloaded = () => {
              before?.();
              resolve();
            };
            if (r.ready) r.worker.send({ type: 'reload' });
            else r.reloaded();
          }),
      ),
    );
    return this.#bound;
  }

  /** Stops every worker (their sessions finish first); resolves once their relays have closed. */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#running.size > 0) {
      const gone = new Promise<void>((resolve) => (this.#exited = resolve));
      for (const r of this.#running) r.worker.send({ type: 'stop' });
      await gone;
    }
    // What a dead worker left open is aborted before the store closes.
    await Promise.all([...this.#relays].map((r) => r.closed));
  }

  /** A queue ID tag no other process of this server uses. */
  #newTag(): string {
    for (;;) {
      const tag = new QueueIdGenerator().nodeTag;
      if (!this.#tags.has(tag)) {
        this.#tags.add(tag);
        return tag;
      }
    }
  }

  /** Starts worker `n`; resolves with its bound listeners once it is ready. */
  #fork(n: number): Promise<readonly BoundListener[]> {
    const worker = startWorker(this.#options.kind ?? 'process', n, this.#newTag());
    const log = this.#options.log;
    const relay = new StoreRelay(
      worker.channel,
      this.#store!,
      log,
      this.#options.logLines,
      this.#options.onQueued,
    );
    this.#relays.add(relay);
    void relay.closed.then(() => this.#relays.delete(relay));
    const running: Running = { worker, relay, ready: false, reloaded: undefined, sessions: [] };
    this.#running.add(running);
    return new Promise((resolve, reject) => {
      let failure: string | undefined;
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'ready') {
          running.ready = true;
          resolve(m.bound);
        } else if (m.type === 'failed') failure = m.message;
        else if (m.type === 'reloaded') {
          this.#bound = m.bound;
          this.#reloaded(running);
        } else if (m.type === 'sessions') running.sessions = m.counts;
      });
      // A message to a worker that has just died (ours, or cluster's own reply to its
      // listen request) fails with EPIPE; the death itself is handled at 'exit'.
      worker.on('error', () => undefined);
      worker.on('exit', (code, signal) => {
        this.#running.delete(running);
        this.#reloaded(running);
        if (this.#closing) {
          if (this.#running.size === 0) this.#exited?.();
          if (!running.ready) reject(new Error('postern serve is stopping'));
          return;
        }
        const how = signal ? `killed by signal ${signalNumber(signal)}` : `exit status ${code}`;
        if (!running.ready) {
          reject(new Error(failure ?? `smtpd worker ${worker.name} ${how} before it was ready`));
          return;
        }
        if (code === 0 && !signal) {
          // It was told to stop by a signal of its own (SIGTERM or SIGINT to the whole
          // process group, which reaches this process too): start another only if this
          // one is not stopping after all.
          setTimeout(() => this.#restart(n), REPLACE_MS).unref();
          return;
        }
        log.warning(undefined, `${worker.name} ${how}`);
        this.#restart(n);
      });
    });
  }

  #reloaded(running: Running): void {
    const done = running.reloaded;
    running.reloaded = undefined;
    done?.();
  }

  /** Starts worker `n` again; a start that fails is retried every THROTTLE_MS. */
  #restart(n: number): void {
    if (this.#closing) return;
    this.#fork(n).catch((err: unknown) => {
      if (this.#closing) return;
      this.#options.log.warning(
        undefined,
        `postern/smtpd: bad command startup -- throttling: ${(err as Error).message}; trying again in ${THROTTLE_MS / 1000}s`,
      );
      setTimeout(() => this.#restart(n), THROTTLE_MS).unref();
    });
  }
}

/** `SIGKILL` → 9, as Postfix's master logs it. */
function signalNumber(signal: string): string {
  const n = constants.signals[signal as NodeJS.Signals];
  return n === undefined ? signal : String(n);
}
