/**
 * TcpNetwork: the Mta's default ServiceNetwork — each listener is a TCP socket the Mta
 * owns, so that a reload can hand new connections to new receivers while the
 * listening socket stays open.
 *
 * Postfix counterpart: master(8), which holds every inet service's listening socket
 * across `postfix reload` and gives connections to freshly started smtpd processes.
 *
 * Does not: serve connections itself; `serve` is called with each accepted socket and
 * the client's address (IPv4-mapped IPv6 addresses unmapped, as Postfix logs them).
 *
 * @module
 */

import { isIPv4 } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ComponentLogger } from '../log.js';
import { TcpListeners } from '../receive/tcp-listener.js';
import type { NetworkBinding, ServiceNetwork } from '../service-network.js';
import type { ClientInfo } from '../types.js';

/**
 * Listens on TCP for the Mta (the default when no `network` is injected).
 *
 * @example
 * ```ts
 * const network = new TcpNetwork(logger.for('master'));
 * const binding = await network.listen({ host: '127.0.0.1', port: 0 }, (socket, peer) => receiver.handle(socket, peer));
 * await binding.close();
 * ```
 */
export class TcpNetwork implements ServiceNetwork {
  readonly #log: ComponentLogger;

  constructor(log: ComponentLogger) {
    this.#log = log;
  }

  async listen(
    address: { readonly host: string; readonly port: number },
    serve: (socket: Duplex, peer: ClientInfo) => void,
  ): Promise<NetworkBinding> {
    const listeners = new TcpListeners(this.#log, (socket) => {
      const remote = socket.remoteAddress;
      if (remote === undefined) {
        // Already gone before we could look at it.
        socket.destroy();
        return;
      }
      serve(socket, { address: unmapIPv4(remote), port: socket.remotePort, name: 'unknown' });
    });
    const bound = await listeners.listen(address);
    return { ...bound, close: () => listeners.close() };
  }
}

/** `::ffff:192.0.2.1` → `192.0.2.1`. */
function unmapIPv4(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}
