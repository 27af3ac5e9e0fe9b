/**
 * QmqpReceiver: the QMQP server — listens on TCP, or serves any duplex stream, one
 * QmqpSession per connection.
 *
 * Postfix counterpart: qmqpd(8) (see qmqpd-session.ts for the protocol). Mail leaves
 * only through the Submission port.
 *
 * @example
 * const qmqp = new QmqpReceiver({ params, submission: cleanup });
 * await qmqp.listen({ host: '127.0.0.1', port: 6028 });
 *
 * @module
 */

import type { Duplex } from 'node:stream';
import { delay, systemClock } from '../clock.js';
import { type ComponentLogger, type Logger, silentLogger } from '../log.js';
import { CidrList } from '../tables/cidr.js';
import type { ClientInfo, Clock, SubmissionPort } from '../types.js';
import { netstring } from './netstring.js';
import type { QmqpdParameters } from './qmqpd-parameters.js';
import { type QmqpContext, QmqpSession } from './qmqpd-session.js';
import { hangUp, SessionLimit } from './session-limit.js';
import { type ListenOptions, TcpListeners } from './tcp-listener.js';

/**
 * What a QmqpReceiver is built from.
 *
 * @example
 * ```ts
 * const options: QmqpReceiverOptions = { params, submission: cleanup, processLimit: 20 };
 * ```
 */
export interface QmqpReceiverOptions {
  /** The parameters it reads: `qmqpdAuthorizedClients`, `qmqpdTimeout`, `qmqpdErrorDelay`, ... */
  readonly params: QmqpdParameters;
  /** Where each received message goes (Cleanup, or the Mta's Submission port). */
  readonly submission: SubmissionPort;
  /** Events carry component `qmqpd`. @default a silent logger */
  readonly logger?: Logger;
  /** Times sessions out and delays error replies. @default systemClock */
  readonly clock?: Clock;
  /**
   * Most sessions at once (master.cf `maxproc`; 0 = no limit); more connections wait
   * (session-limit.ts). @default params.defaultProcessLimit
   */
  readonly processLimit?: number;
}

/**
 * The QMQP server (qmqpd(8)): one session per connection, one message per session,
 * handed to the Submission port.
 *
 * @example
 * ```ts
 * const qmqp = new QmqpReceiver({ params, submission: cleanup });
 * const { port } = await qmqp.listen({ host: '127.0.0.1', port: 6028 });
 * // ...
 * await qmqp.close({ graceful: true });
 * ```
 */
export class QmqpReceiver {
  readonly #ctx: QmqpContext;
  readonly #log: ComponentLogger;
  readonly #listeners: TcpListeners;
  readonly #sessions = new Set<QmqpSession>();
  readonly #limit: SessionLimit;
  #closing = false;

  /** @throws ConfigError when qmqpdAuthorizedClients holds something that is not an address or network */
  constructor(options: QmqpReceiverOptions) {
    this.#log = (options.logger ?? silentLogger).for('qmqpd');
    this.#ctx = {
      params: options.params,
      submission: options.submission,
      authorizedClients: new CidrList(options.params.qmqpdAuthorizedClients),
      log: this.#log,
      clock: options.clock ?? systemClock,
    };
    const limit = options.processLimit ?? options.params.defaultProcessLimit;
    this.#limit = new SessionLimit({
      service: 'qmqp',
      limit,
      backlog: Math.max(limit, options.params.defaultProcessLimit),
      log: this.#log,
      clock: this.#ctx.clock,
    });
    this.#listeners = new TcpListeners(this.#log, (socket) =>
      this.handle(socket, {
        address: (socket.remoteAddress ?? '').replace(/^::ffff:/, ''),
        port: socket.remotePort ?? 0,
        name: 'unknown',
      }),
    );
  }

  /** Sessions running now. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Connections waiting for a session because `processLimit` sessions are running. */
  get waitingCount(): number {
    return this.#limit.waiting;
  }

  /** Listens on TCP; resolves with the address bound (a `port` of 0 picks a free one). */
  listen(options: ListenOptions): Promise<{ host: string; port: number }> {
    if (this.#closing) return Promise.reject(new Error('QmqpReceiver.listen() after close()'));
    return this.#listeners.listen(options);
  }

  /** Serves one connection given as any duplex stream, once fewer than `processLimit` run. */
  handle(socket: Duplex, peer: ClientInfo): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    this.#limit.enter(
      socket,
      () => {
        const session = new QmqpSession(this.#ctx, socket, peer);
        this.#sessions.add(session);
        void session.done.then(() => {
          this.#sessions.delete(session);
          this.#limit.leave();
        });
        session.start();
      },
      () => hangUp(socket, netstring('ZError: all server ports are busy, try again later')),
    );
  }

  /**
   * Stops accepting. `graceful` waits up to `graceMs` for sessions to finish their one
   * message; the rest are dropped (their messages aborted, never half-queued).
   */
  async close(options: { graceful?: boolean; graceMs?: number } = {}): Promise<void> {
    this.#closing = true;
    const listenersClosed = this.#listeners.close();
    for (const waiting of this.#limit.drain()) waiting.destroy();
    if (options.graceful) {
      const all = Promise.all([...this.#sessions].map((s) => s.done));
      const grace = delay(this.#ctx.clock, options.graceMs ?? 10_000);
      await Promise.race([all, grace.done]);
      grace.cancel();
    }
    for (const s of this.#sessions) s.destroy();
    await Promise.all([...this.#sessions].map((s) => s.done));
    await listenersClosed;
  }
}
