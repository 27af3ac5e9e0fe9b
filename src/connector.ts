/**
 * NetConnector: the default Connector — TCP through `node:net`, UNIX-domain sockets by
 * path.
 *
 * Postfix counterpart: smtp_connect.c (smtp_connect_sock, smtp_connect_unix): a
 * non-blocking connect bounded by `smtp_connect_timeout`, bound to
 * `smtp_bind_address` when one is set.
 *
 * Does not: resolve names (callers connect to addresses they resolved through the
 * Resolver; a host name given here goes to getaddrinfo, which the SMTP client never
 * does), or speak TLS (STARTTLS upgrades the returned socket).
 *
 * @module
 */

import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Connector, ConnectTarget } from './types.js';

/** An error from connecting, with a `code` such as ECONNREFUSED or ETIMEDOUT. */
function connectError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * TCP and UNIX-socket connections; a timeout of 0 leaves it to the kernel.
 *
 * @example
 * ```ts
 * const socket = await new NetConnector().connect({ path: '/var/run/lmtp.sock' }, { timeoutMs: 5000 });
 * ```
 */
export class NetConnector implements Connector {
  connect(
    target: ConnectTarget,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<Duplex> {
    return new Promise<Duplex>((resolve, reject) => {
      if (options.signal?.aborted) {
        reject(connectError('connection aborted', 'ABORT_ERR'));
        return;
      }
      const socket: Socket =
        'path' in target
          ? connect({ path: target.path })
          : connect({
              host: target.host,
              port: target.port,
              ...(target.localAddress ? { localAddress: target.localAddress } : {}),
              noDelay: true,
            });
      let timer: NodeJS.Timeout | undefined;
      const cleanup = (): void => {
        if (timer) clearTimeout(timer);
        socket.off('connect', onConnect);
        socket.off('error', onError);
        options.signal?.removeEventListener('abort', onAbort);
      };
      const onConnect = (): void => {
        cleanup();
        resolve(socket);
      };
      const onError = (err: Error): void => {
        cleanup();
        socket.destroy();
        reject(err);
      };
      const onAbort = (): void => {
        onError(connectError('connection aborted', 'ABORT_ERR'));
      };
      socket.once('connect', onConnect);
      socket.once('error', onError);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (options.timeoutMs !== undefined && options.timeoutMs > 0) {
        timer = setTimeout(
          () => onError(connectError('connection timed out', 'ETIMEDOUT')),
          options.timeoutMs,
        );
      }
    });
  }
}
