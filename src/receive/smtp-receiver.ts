/**
 * SmtpReceiver: the SMTP server — listens on TCP, or serves any duplex stream, and runs
 * one SmtpSession per connection.
 *
 * Postfix counterpart: smtpd(8) as master(8) runs it: the listener and the process
 * pool are one Node server here, each connection an SmtpSession. Mail leaves only
 * through the Submission port (Postfix: the cleanup(8) service), so the receiver never
 * touches the queue.
 *
 * Does not: TLS, AUTH, connection or rate limits (anvil), reverse DNS (client names are
 * `unknown`), add headers (Cleanup does). See smtp-session.ts for the protocol.
 *
 * SECURITY: the relay policy is checked when the receiver is built, and a list that
 * would make an open relay is refused (ConfigError). Sockets are half-open aware so
 * that pipelined input followed by a FIN is still answered, and every session is
 * bounded by smtpd_timeout.
 *
 * STANDARDS: RFC 5321.
 *
 * @module
 */

import net from 'node:net';
import type { Duplex } from 'node:stream';
import { systemClock } from '../clock.js';
import type { Parameters } from '../config/parameters.js';
import { type ComponentLogger, type Logger, silentLogger } from '../log.js';
import type { Rewriter } from '../rewrite/rewriter.js';
import type { ClientInfo, Clock, SubmissionPort } from '../types.js';
import { RelayPolicy } from './relay-policy.js';
import { buildSessionReplies, type SessionContext, SmtpSession } from './smtp-session.js';

/** What a receiver needs. */
export interface SmtpReceiverOptions {
  /** Main parameters (`resolveParameters()`). */
  readonly params: Parameters;
  /** The way into the queue (Cleanup in a full MTA). */
  readonly submission: SubmissionPort;
  /** Address resolution for relay control (trivial-rewrite). */
  readonly rewriter: Rewriter;
  /** Log sink; events carry component `smtpd`. @default a silent logger */
  readonly logger?: Logger;
  /** Time source for timeouts and error delays. @default the system clock */
  readonly clock?: Clock;
}

/** Where to listen. */
export interface ListenOptions {
  /** Numeric address or host name to bind, e.g. `127.0.0.1` or `::1`. */
  readonly host: string;
  /** TCP port; 0 picks a free one. */
  readonly port: number;
}

/** The SMTP server. */
export class SmtpReceiver {
  readonly #ctx: SessionContext;
  readonly #log: ComponentLogger;
  readonly #servers = new Set<net.Server>();
  readonly #sessions = new Set<SmtpSession>();
  #closing = false;

  /** @throws ConfigError when the relay restrictions are unusable or would make an open relay */
  constructor(options: SmtpReceiverOptions) {
    const params = options.params;
    const log = (options.logger ?? silentLogger).for('smtpd');
    this.#log = log;
    this.#ctx = {
      params,
      submission: options.submission,
      rewriter: options.rewriter,
      relayPolicy: new RelayPolicy(params),
      log,
      clock: options.clock ?? systemClock,
      replies: buildSessionReplies(params),
    };
  }

  /** Sessions currently running. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /**
   * Starts listening; may be called several times for several addresses. Resolves with
   * the bound address (the real port when `port` is 0).
   */
  listen(options: ListenOptions): Promise<{ host: string; port: number }> {
    if (this.#closing) return Promise.reject(new Error('SmtpReceiver.listen() after close()'));
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) =>
      this.#accept(socket),
    );
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        server.off('listening', onListening);
        reject(
          Object.assign(
            new Error(`cannot listen on ${options.host}:${options.port}: ${err.message}`),
            {
              cause: err,
            },
          ),
        );
      };
      const onListening = (): void => {
        server.off('error', onError);
        server.on('error', (err) =>
          this.#log.error(undefined, `listener ${options.host}:${options.port}: ${err.message}`),
        );
        this.#servers.add(server);
        const addr = server.address();
        if (addr && typeof addr === 'object') resolve({ host: addr.address, port: addr.port });
        else resolve({ host: options.host, port: options.port });
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen({ host: options.host, port: options.port });
    });
  }

  /** Serves one connection given as any duplex stream (a socket, an in-memory pair). */
  handle(socket: Duplex, peer: ClientInfo): void {
    if (this.#closing) {
      socket.on('error', () => {});
      socket.end(this.#ctx.replies.shutdown.toWire());
      return;
    }
    const session = new SmtpSession(this.#ctx, socket, peer);
    this.#sessions.add(session);
    session.done.then(() => this.#sessions.delete(session));
    session.start();
  }

  /**
   * Stops accepting connections. `graceful` lets sessions that are receiving or
   * committing a message finish and answer it, and ends idle sessions with
   * `421 4.3.2`; otherwise every connection is dropped at once and open transactions
   * are aborted. Resolves when every session and listener is closed.
   */
  async close(options: { graceful?: boolean } = {}): Promise<void> {
    this.#closing = true;
    const graceful = options.graceful ?? false;
    const closed = [...this.#servers].map(
      (server) =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
        }),
    );
    this.#servers.clear();
    const sessions = [...this.#sessions];
    for (const s of sessions) s.shutdown(graceful);
    await Promise.all(sessions.map((s) => s.done));
    await Promise.all(closed);
  }

  #accept(socket: net.Socket): void {
    const address = socket.remoteAddress;
    if (address === undefined) {
      // Already gone before we could look at it.
      socket.destroy();
      return;
    }
    this.handle(socket, { address: unmapIPv4(address), port: socket.remotePort, name: 'unknown' });
  }
}

/** `::ffff:192.0.2.1` → `192.0.2.1`, as Postfix logs IPv4 clients on a dual-stack socket. */
function unmapIPv4(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}
