/**
 * Where listeners are served: the ServiceNetwork an Mta binds its SMTP and QMQP
 * listeners on (TCP by default, an in-memory network in tests), the binding it gets
 * back, and the address a listener is bound to.
 *
 * Postfix counterpart: master(8)'s inet services, whose listening sockets master owns
 * and hands to the servers it starts.
 *
 * Does not: accept connections (mta/tcp-network.ts, testing/memory-network.ts do), or
 * open outgoing ones (connector.ts).
 *
 * @module
 */

import type { Duplex } from 'node:stream';
import type { ClientInfo } from './types.js';

/**
 * Somewhere other than TCP to serve listeners: `listen` registers `serve` for
 * `host:port` (port 0: any free one) and resolves with the address and a closer,
 * which the Mta calls when it stops.
 *
 * @example
 * ```ts
 * const network = new MemoryNetwork();
 * const mta = new Mta({ smtpd: [{ listen: 'mx.test:25' }] }, { network });
 * ```
 */
export interface ServiceNetwork {
  /**
   * Serves connections to `address` with `serve`; resolves with the bound address and a closer.
   */
  listen(
    address: { readonly host: string; readonly port: number },
    serve: (socket: Duplex, peer: ClientInfo) => void,
  ): Promise<NetworkBinding>;
}

/**
 * A listener bound on a ServiceNetwork.
 *
 * @example
 * ```ts
 * const binding: NetworkBinding = await network.listen({ host: 'mx.test', port: 25 }, serve);
 * await binding.close();
 * ```
 */
export interface NetworkBinding extends BoundListener {
  /** Stops serving the address. */
  close(): Promise<void>;
}

/**
 * An address a listener is bound to.
 *
 * @example
 * ```ts
 * await mta.start();
 * const [smtp]: readonly BoundListener[] = mta.listeners;
 * console.log(`SMTP on ${smtp?.host}:${smtp?.port}`);
 * ```
 */
export interface BoundListener {
  /** The bound address. */
  readonly host: string;
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
}
