/**
 * SessionLimit: at most `limit` sessions of one listener at a time; the connections
 * beyond it wait, unread and without a greeting, until a session ends.
 *
 * Postfix counterpart: master(8)'s process limit (`default_process_limit` 100, the
 * `maxproc` column of master.cf). When every smtpd process of a service is busy, master
 * stops accepting: new clients wait in the kernel's listen backlog, which holds
 * max(maxproc, default_process_limit) connections, and get their `220` once a process
 * is free; master warns that `new clients may experience noticeable delays`.
 *
 * Node cannot stop accepting on a listening socket, so Postern accepts and leaves the
 * connection waiting, paused, which the client cannot tell from Postfix's backlog: a
 * burst of connections is served a little later instead of being deferred for a whole
 * retry interval, which is what a 421 would cost a sending MTA. The wait is bounded like
 * the backlog — `limit` connections more (at least `defaultProcessLimit`) — and a
 * connection beyond that is refused at once — SMTP: `421 4.3.2 All server ports are
 * busy` (postscreen's reply when its queue is full); QMQP: a `Z` reply — where a full
 * kernel backlog would drop the SYN.
 *
 * A client that closes while it waits, having sent nothing, leaves the queue at once;
 * one that sent something first is served (and finds its connection closed) at its turn.
 *
 * Does not: time a waiting connection out (its client does, as with a backlog), count
 * it for anvil's per-client limits (the session does, once it starts).
 *
 * SECURITY: memory stays bounded: a waiting socket is paused, so at most one stream
 * buffer of input (16 KiB) is read from it, and there are at most `backlog` of them.
 *
 * @module
 */

import type { Duplex } from 'node:stream';
import type { ComponentLogger } from '../log.js';
import type { Clock } from '../types.js';

/** How often the "reached its process limit" warning may repeat (Postfix: 1000 s). */
const WARN_INTERVAL_MS = 1_000_000;

interface Waiting {
  readonly socket: Duplex;
  readonly start: () => void;
  readonly onError: () => void;
  /** The client went away (FIN with nothing sent, or a reset): it leaves the queue. */
  readonly onGone: () => void;
}

/**
 * Options for SessionLimit.
 *
 * @example
 * ```ts
 * const limit = new SessionLimit({ service: 'smtp', limit: 100, backlog: 100, log, clock } satisfies SessionLimitOptions);
 * ```
 */
export interface SessionLimitOptions {
  /** The service named in warnings (`smtp`, `qmqp`). */
  readonly service: string;
  /** Most sessions at once; 0 = no limit (master.cf `maxproc` 0). */
  readonly limit: number;
  /** Most connections waiting for a session. */
  readonly backlog: number;
  readonly log: ComponentLogger;
  readonly clock: Clock;
}

/**
 * Admits sessions up to a limit and queues the rest (see the module comment).
 *
 * @example
 * ```ts
 * const limit = new SessionLimit({ service: 'smtp', limit: 2, backlog: 2, log, clock });
 * limit.enter(socket, () => startSession(socket), () => socket.end('421 4.3.2 All server ports are busy\r\n'));
 * // when that session is over:
 * limit.leave();
 * ```
 */
export class SessionLimit {
  readonly #o: SessionLimitOptions;
  #running = 0;
  readonly #queue: Waiting[] = [];
  #warnedAt: number | undefined;

  constructor(options: SessionLimitOptions) {
    this.#o = options;
  }

  /** Sessions running. */
  get running(): number {
    return this.#running;
  }

  /** Connections waiting for a session. */
  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * Starts a session for `socket` now (`start`), or queues it paused until one ends, or
   * refuses it (`refuse`) when the queue is full too.
   */
  enter(socket: Duplex, start: () => void, refuse: () => void): void {
    const { limit, backlog } = this.#o;
    if (limit === 0 || this.#running < limit) {
      this.#running++;
      start();
      return;
    }
    this.#warn();
    if (this.#queue.length >= backlog) {
      refuse();
      return;
    }
    socket.pause();
    const entry: Waiting = {
      socket,
      start,
      // A reset while waiting must not become an unhandled 'error'.
      onError: () => {},
      onGone: () => {
        const i = this.#queue.indexOf(entry);
        if (i < 0) return;
        this.#queue.splice(i, 1);
        this.#release(entry);
        socket.destroy();
      },
    };
    socket.on('error', entry.onError);
    // A paused stream still ends when the client closes having sent nothing.
    socket.once('end', entry.onGone);
    socket.once('close', entry.onGone);
    this.#queue.push(entry);
  }

  /** A session is over: the longest-waiting connection gets its place. */
  leave(): void {
    this.#running--;
    while (this.#queue.length > 0 && (this.#o.limit === 0 || this.#running < this.#o.limit)) {
      const next = this.#queue.shift()!;
      this.#release(next);
      if (next.socket.destroyed) continue;
      this.#running++;
      // The session listens first; then the input read while waiting flows to it.
      next.start();
      next.socket.resume();
    }
  }

  /** Takes every waiting connection out of the queue (the listener is closing). */
  drain(): Duplex[] {
    return this.#queue.splice(0).map((w) => {
      this.#release(w);
      return w.socket;
    });
  }

  #release(w: Waiting): void {
    w.socket.off('error', w.onError);
    w.socket.off('end', w.onGone);
    w.socket.off('close', w.onGone);
  }

  #warn(): void {
    const now = this.#o.clock.now();
    if (this.#warnedAt !== undefined && now - this.#warnedAt < WARN_INTERVAL_MS) return;
    this.#warnedAt = now;
    this.#o.log.warning(
      undefined,
      `service "${this.#o.service}" has reached its process limit "${this.#o.limit}": new clients may experience noticeable delays`,
    );
    this.#o.log.warning(
      undefined,
      'to avoid this condition, increase the listener\'s "maxproc" (or defaultProcessLimit) or reduce the service time per client',
    );
  }
}

/**
 * Sends one last reply on a connection no session serves, and closes it. Its input is
 * read and dropped, so that the client's FIN is seen and the socket closes.
 *
 * @example
 * ```ts
 * hangUp(socket, '421 4.3.2 All server ports are busy\r\n');
 * ```
 */
export function hangUp(socket: Duplex, reply: string | Buffer): void {
  socket.on('error', () => {});
  socket.resume();
  socket.end(reply);
}
