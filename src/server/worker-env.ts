/**
 * What the primary tells an smtpd worker process at its start: the environment
 * variables that mark it, name its queue ID tag and size its thread pool and malloc
 * arenas, its node flags, and the descriptor of its socket pair to the primary.
 *
 * @module
 */

import { isMainThread } from 'node:worker_threads';
import { builtin } from '../builtin.js';

/** Set (to the worker's number) in each smtpd worker process. */
export const WORKER_ENV = 'POSTERN_SMTPD_WORKER';

/**
 * Whether this process (or thread) is an smtpd worker started by `postern serve`. A
 * worker process is a cluster worker, whose node has loaded node:cluster before any
 * code of ours; node:cluster is asked only when the variable is set, as loading it
 * elsewhere would cost every process that is not a worker (node's own test, the
 * NODE_UNIQUE_ID variable, is gone from the environment once the worker has started).
 */
export function isSmtpdWorker(): boolean {
  return process.env[WORKER_ENV] !== undefined && (!isMainThread || builtin('cluster').isWorker);
}

/** The 5-character queue ID node tag the worker uses, distinct from every other process's. */
export const QUEUE_ID_TAG_ENV = 'POSTERN_QUEUE_ID_TAG';

/** libuv's own default: a worker reads its config and tables, and no disk per message. */
const WORKER_THREADPOOL_SIZE = '4';

/** glibc malloc arenas of a worker, unless MALLOC_ARENA_MAX says otherwise. */
const WORKER_MALLOC_ARENAS = '2';

/**
 * What a worker's environment adds to the primary's, to keep its memory small: libuv's
 * default thread pool of 4 whatever UV_THREADPOOL_SIZE the primary was given for its
 * fsyncs, as each thread would touch a stack and a malloc arena of its own; and at most
 * MALLOC_ARENA_MAX glibc malloc arenas (2, unless the operator set the variable), as the
 * few threads that allocate need no arena each.
 */
export function workerProcessEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return {
    UV_THREADPOOL_SIZE: WORKER_THREADPOOL_SIZE,
    MALLOC_ARENA_MAX: env.MALLOC_ARENA_MAX ?? WORKER_MALLOC_ARENAS,
  };
}

/** The V8 flag a worker adds to the primary's own (below). */
const NO_MEMORY_REDUCER = '--no-memory-reducer';

/**
 * The node flags a worker starts with: the primary's own, and no memory reducer unless
 * the operator named it. After some seconds without mail V8's memory reducer runs full
 * collections that shrink the heap, and the next burst then runs 20-30% slower for its
 * first seconds (4000 messages over 20 sessions after 15 s idle: 1780-2000 msg/s with
 * it, 2250-2580 without). The worker's peak memory is that of its busiest moment either
 * way. The primary cannot do the same for itself: V8 reads the flag when it makes the
 * heap, before any code of ours runs (`node --no-memory-reducer` does it there).
 */
export function workerExecArgv(execArgv: readonly string[]): string[] {
  return execArgv.some((a) => /memory[-_]reducer/.test(a))
    ? [...execArgv]
    : [...execArgv, NO_MEMORY_REDUCER];
}

/** The worker's end of the socket pair to the primary (stdio slot after the IPC channel). */
export const CHANNEL_FD = 4;

/** Messages from the primary to a worker on the IPC channel. */
export type ToWorker = { readonly type: 'reload' } | { readonly type: 'stop' };

/** Messages from a worker to the primary on the IPC channel. */
export type FromWorker =
  | {
      readonly type: 'ready';
      readonly bound: readonly { readonly host: string; readonly port: number }[];
    }
  | { readonly type: 'failed'; readonly message: string }
  /** The reload asked for is applied (or failed and was logged); the listeners now. */
  | {
      readonly type: 'reloaded';
      readonly bound: readonly { readonly host: string; readonly port: number }[];
    }
  /** Sessions open on each listener, sent when the numbers change (at most once a SESSIONS_MS). */
  | { readonly type: 'sessions'; readonly counts: readonly number[] };

/** How often a worker reports its session counts when they change. */
export const SESSIONS_MS = 1000;
