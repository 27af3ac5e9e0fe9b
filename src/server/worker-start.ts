/**
 * Starts one smtpd worker, as a process (node:cluster) or as a thread of this process
 * (node:worker_threads), behind one handle: its control messages, its content channel
 * (a byte stream carrying worker-frames) and its exit. SmtpdWorkers supervises either
 * kind alike.
 *
 * Postfix counterpart: master(8) forking an smtpd(8) process; a thread has none.
 *
 * Does not: restart anything (SmtpdWorkers does), or set up node:cluster (the caller
 * calls `cluster.setupPrimary` once before the first process).
 *
 * @module
 */

import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { MessageChannel, type ResourceLimits, Worker as Thread } from 'node:worker_threads';
import { builtin } from '../builtin.js';
import { portDuplex } from './port-duplex.js';
import {
  CHANNEL_FD,
  type FromWorker,
  QUEUE_ID_TAG_ENV,
  type ToWorker,
  WORKER_ENV,
  workerProcessEnv,
} from './worker-env.js';

/** How long a thread's exit waits for its port to close before it is reported anyway. */
const PORT_CLOSE_MS = 1000;

/** Whether workers are processes or threads of this process. */
export type WorkerKind = 'process' | 'thread';

/**
 * A started worker. Events: `message` (FromWorker), `exit` (code, signal name or null),
 * `error` (a message that could not reach it; its death comes as `exit`).
 */
export interface WorkerHandle extends EventEmitter {
  /** How log lines name it: `process postern/smtpd pid N` or `thread postern/smtpd N of pid P`. */
  readonly name: string;
  /** The byte stream the worker's frames cross. */
  readonly channel: Duplex;
  /** Sends a control message, unless the worker is gone. */
  send(message: ToWorker): void;
}

/** Starts worker number `n` with queue ID tag `tag`. */
export function startWorker(kind: WorkerKind, n: number, tag: string): WorkerHandle {
  return kind === 'thread' ? startThread(n, tag) : startProcess(n, tag);
}

function startProcess(n: number, tag: string): WorkerHandle {
  const worker = builtin('cluster').fork({
    ...workerProcessEnv(process.env),
    [WORKER_ENV]: String(n),
    [QUEUE_ID_TAG_ENV]: tag,
  });
  const channel = worker.process.stdio?.[CHANNEL_FD] as Socket | undefined;
  if (!channel) throw new Error('cannot open the socket pair to an smtpd worker process');
  const handle = Object.assign(new EventEmitter(), {
    name: `process postern/smtpd pid ${worker.process.pid}`,
    channel,
    send(message: ToWorker): void {
      if (worker.isConnected()) worker.send(message);
    },
  });
  worker.on('message', (m: FromWorker) => handle.emit('message', m));
  worker.on('error', (err: Error) => handle.emit('error', err));
  worker.on('exit', (code: number | null, signal: string | null) =>
    handle.emit('exit', code, signal),
  );
  return handle;
}

/**
 * Semi-spaces of the thread's young generation, in MiB: the size bin/postern.mjs holds
 * the main thread's at while SMTP runs there, for the same reason (each scavenge
 * costs what is alive, so the size sets how often that is paid; the thread leaves ~40 KB
 * of garbage per message). Half of it costs the process about 7% more CPU per message
 * at 20 sessions for at most 2 MiB less resident; twice it, 4 MiB more resident for no
 * measurable gain.
 */
const THREAD_SEMI_SPACE_MB = 2;

/**
 * The thread's young generation, fixed at THREAD_SEMI_SPACE_MB from its start: its
 * largest size through `resourceLimits` (V8's young generation is three semi-spaces:
 * two, and as much again for large new objects), its first through V8's
 * `--min-semi-space-size`, read when a heap is made (so only by heaps made from now on:
 * this thread's and those of the threads that replace it). Left to V8, it would start
 * at 1 MiB and grow by the process's growth factor, which the main thread steers by its
 * own young generation alone: the thread's size would depend on when it started. An
 * operator's semi-space flags (NODE_OPTIONS or node's command line) are left to apply.
 */
function threadHeap(): { resourceLimits?: ResourceLimits } {
  const own = `${process.env.NODE_OPTIONS ?? ''} ${process.execArgv.join(' ')}`;
  if (/semi[-_]space/.test(own)) return {};
  setFlagsFromString(`--min-semi-space-size=${THREAD_SEMI_SPACE_MB}`);
  return { resourceLimits: { maxYoungGenerationSizeMb: 3 * THREAD_SEMI_SPACE_MB } };
}

/**
 * The thread runs the same entry as this process (`process.argv[1]` with its arguments),
 * as a cluster worker would, and finds its role in WORKER_ENV.
 */
function startThread(n: number, tag: string): WorkerHandle {
  const { port1, port2 } = new MessageChannel();
  const thread = new Thread(process.argv[1]!, {
    ...threadHeap(),
    argv: process.argv.slice(2),
    env: { ...process.env, [WORKER_ENV]: String(n), [QUEUE_ID_TAG_ENV]: tag },
    workerData: { channel: port2 },
    transferList: [port2],
  });
  let running = true;
  const handle = Object.assign(new EventEmitter(), {
    name: `thread postern/smtpd ${n} of pid ${process.pid}`,
    channel: portDuplex(port1),
    send(message: ToWorker): void {
      if (running) thread.postMessage(message);
    },
  });
  thread.on('message', (m: FromWorker) => handle.emit('message', m));
  // An uncaught error ends the thread: its exit follows, with code 1.
  thread.on('error', (err: Error) => handle.emit('error', err));
  // The exit is reported once the port has closed, which it does by itself after its
  // last messages (a dying thread's log lines) are read: closing it here would drop them,
  // and reporting at once would log the death before them.
  let portOpen = true;
  port1.once('close', () => (portOpen = false));
  thread.on('exit', (code: number) => {
    running = false;
    if (!portOpen) return void handle.emit('exit', code, null);
    let reported = false;
    const report = (): void => {
      if (!reported) handle.emit('exit', code, null);
      reported = true;
    };
    port1.once('close', report);
    setTimeout(report, PORT_CLOSE_MS).unref();
  });
  return handle;
}
