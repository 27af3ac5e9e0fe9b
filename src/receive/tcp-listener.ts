/**
 * TcpListeners: the listening sockets of one receiver (Postfix: a master.cf inet
 * service), with errors that say which address failed and why.
 *
 * @module
 */

import net from 'node:net';
import type { ComponentLogger } from '../log.js';

/**
 * Where to listen.
 *
 * @example
 * ```ts
 * const { port } = await receiver.listen({ host: '127.0.0.1', port: 0 } satisfies ListenOptions);
 * ```
 */
export interface ListenOptions {
  /** Numeric address or host name to bind, e.g. `127.0.0.1` or `::1`. */
  readonly host: string;
  /** TCP port; 0 picks a free one. */
  readonly port: number;
}

export class TcpListeners {
  readonly #servers = new Set<net.Server>();
  readonly #log: ComponentLogger;
  readonly #onConnection: (socket: net.Socket) => void;

  constructor(log: ComponentLogger, onConnection: (socket: net.Socket) => void) {
    this.#log = log;
    this.#onConnection = onConnection;
  }

  /** Binds one more address; resolves with the bound address (the real port for port 0). */
  listen(options: ListenOptions): Promise<{ host: string; port: number }> {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, this.#onConnection);
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        const hint =
          err.code === 'EADDRINUSE'
            ? '; another process uses that port: stop it or choose another "listen" port'
            : err.code === 'EACCES'
              ? '; ports below 1024 need privileges: choose a port above 1023'
              : '';
        reject(
          new Error(`cannot listen on ${options.host}:${options.port}: ${err.message}${hint}`, {
            cause: err,
          }),
        );
      };
      server.once('error', onError);
      server.once('listening', () => {
        server.off('error', onError);
        server.on('error', (err) =>
          this.#log.error(undefined, `listener ${options.host}:${options.port}: ${err.message}`),
        );
        this.#servers.add(server);
        const addr = server.address();
        resolve(
          addr && typeof addr === 'object'
            ? { host: addr.address, port: addr.port }
            : { ...options },
        );
      });
      server.listen({ host: options.host, port: options.port });
    });
  }

  /** Stops accepting; resolves when every listener is closed (open connections are the caller's). */
  async close(): Promise<void> {
    await Promise.all([...this.#servers].map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.#servers.clear();
  }
}
