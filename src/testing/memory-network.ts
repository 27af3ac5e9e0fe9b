/**
 * MemoryNetwork: an in-memory network for tests — listeners registered by host:port
 * and a Connector that reaches them through in-memory duplex pairs, so a whole mail
 * flow (client → SmtpReceiver → queue → SMTP client → another MTA) runs with no socket.
 *
 * Postfix counterpart: none; it stands where the kernel's TCP stack stands, the way
 * Postfix's tests replace the network with `smtp-sink` on a loopback port.
 *
 * A connection is a pair of Duplex streams: what one side writes the other reads, with
 * backpressure (a write completes when the reader has room), half-close (`end()` is
 * the peer's EOF) and reset (`destroy()` ends the peer and discards what it writes
 * next).
 *
 * Does not: resolve names (give addresses, or use a Resolver that maps names to the
 * addresses registered here), emulate latency or loss (wrap the connector for that).
 *
 * @module
 */

import { Duplex } from 'node:stream';
import type { NetworkBinding, ServiceNetwork } from '../service-network.js';
import type { ClientInfo, Connector, ConnectTarget } from '../types.js';

/**
 * The address and port of one end of a MemorySocket.
 *
 * @example
 * ```ts
 * const client: MemoryAddress = { address: '192.0.2.1', port: 40000 };
 * ```
 */
export interface MemoryAddress {
  /** Any address text; an IP address where a receiver checks networks. */
  readonly address: string;
  /** The port. */
  readonly port: number;
}

function networkError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * One end of an in-memory connection, with a socket's address properties.
 *
 * @example
 * ```ts
 * const [client, server] = MemorySocket.pair(
 *   { address: '192.0.2.1', port: 40000 },
 *   { address: '192.0.2.2', port: 25 },
 * );
 * receiver.handle(server, { address: server.remoteAddress, port: server.remotePort });
 * client.write('EHLO client.test\r\n');
 * ```
 */
export class MemorySocket extends Duplex {
  /** This end's address. */
  readonly localAddress: string;
  /** This end's port. */
  readonly localPort: number;
  /** The other end's address (the client's, on the server side). */
  readonly remoteAddress: string;
  /** The other end's port. */
  readonly remotePort: number;
  #peer: MemorySocket | undefined;
  /** The peer's write callback, waiting until this side reads again (backpressure). */
  #writerWaiting: ((error?: Error | null) => void) | undefined;

  /** An unconnected end; use `MemorySocket.pair()`. */
  constructor(local: MemoryAddress, remote: MemoryAddress) {
    super({ allowHalfOpen: true });
    this.localAddress = local.address;
    this.localPort = local.port;
    this.remoteAddress = remote.address;
    this.remotePort = remote.port;
  }

  /** Two connected ends: `[client, server]`. */
  static pair(client: MemoryAddress, server: MemoryAddress): [MemorySocket, MemorySocket] {
    const a = new MemorySocket(client, server);
    const b = new MemorySocket(server, client);
    a.#peer = b;
    b.#peer = a;
    return [a, b];
  }

  /** As `net.Socket`'s; nothing to do in memory. */
  setNoDelay(): this {
    return this;
  }

  /** As `net.Socket`'s; nothing to do in memory. */
  setKeepAlive(): this {
    return this;
  }

  /** @internal Duplex: hands a chunk to the peer; completes when the peer has room. */
  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    const peer = this.#peer;
    // Writing into a connection the peer has reset: the bytes are lost, as with TCP.
    if (!peer || peer.destroyed || peer.readableEnded) {
      callback();
      return;
    }
    if (peer.push(chunk)) callback();
    else peer.#writerWaiting = callback;
  }

  /** @internal Duplex: the reader has room again; releases a waiting writer. */
  override _read(): void {
    const waiting = this.#writerWaiting;
    this.#writerWaiting = undefined;
    waiting?.();
  }

  /** @internal Duplex: `end()` — the peer reads EOF. */
  override _final(callback: (error?: Error | null) => void): void {
    const peer = this.#peer;
    if (peer && !peer.destroyed) peer.push(null);
    callback();
  }

  /** @internal Duplex: a reset — the peer reads EOF and a blocked writer is released. */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const peer = this.#peer;
    this.#peer = undefined;
    // Release a writer blocked on us; and the peer sees EOF, as after a FIN or RST.
    const waiting = this.#writerWaiting;
    this.#writerWaiting = undefined;
    waiting?.();
    if (peer && !peer.destroyed && !peer.readableEnded) peer.push(null);
    callback(error);
  }
}

/**
 * Listeners by `host:port`, and the Connector that reaches them. Give it to an Mta as
 * `{ network }` (its listeners are served here, not on TCP) and `{ connector:
 * network.connector }` (its SMTP/LMTP client connects here).
 *
 * @example
 * ```ts
 * const network = new MemoryNetwork();
 * const b = new Mta(
 *   { mydestination: ['b.test'], smtpd: [{ listen: '192.0.2.2:25' }], queueStore: { type: 'memory' } },
 *   { network },
 * );
 * const a = new Mta(
 *   { relayhost: '[192.0.2.2]:25', smtpd: [], queueStore: { type: 'memory' } },
 *   { connector: network.connector },
 * );
 * await b.start();
 * await a.start();
 * await a.submit({ from: 'me@a.test', to: ['you@b.test'], content: 'Subject: hi\n\nhello\n' });
 * ```
 */
export class MemoryNetwork implements ServiceNetwork {
  readonly #listeners = new Map<string, (socket: Duplex, peer: ClientInfo) => void>();
  readonly #clientAddress: string;
  #nextPort = 40_000;

  /** `clientAddress`: the address connections come from (the SMTP server's client address). @default '127.0.0.1' */
  constructor(options: { clientAddress?: string } = {}) {
    this.#clientAddress = options.clientAddress ?? '127.0.0.1';
  }

  /** The Connector: connects to listeners registered here; ECONNREFUSED when there is none. */
  readonly connector: Connector = {
    connect: (target, options) => this.connect(target, options),
  };

  /** Registers `serve` at `host:port` (port 0: a free one). */
  async listen(
    address: { readonly host: string; readonly port: number },
    serve: (socket: Duplex, peer: ClientInfo) => void,
  ): Promise<NetworkBinding> {
    let port = address.port;
    if (port === 0) {
      while (this.#listeners.has(`${address.host}:${this.#nextPort}`)) this.#nextPort++;
      port = this.#nextPort++;
    }
    const key = `${address.host}:${port}`;
    if (this.#listeners.has(key))
      throw networkError(`${key} is already in use on this MemoryNetwork`, 'EADDRINUSE');
    this.#listeners.set(key, serve);
    return {
      host: address.host,
      port,
      close: async () => {
        if (this.#listeners.get(key) === serve) this.#listeners.delete(key);
      },
    };
  }

  /** The addresses listened on now (`host:port`). */
  get addresses(): readonly string[] {
    return [...this.#listeners.keys()];
  }

  /** Opens an in-memory connection to a registered listener. */
  async connect(
    target: ConnectTarget,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<Duplex> {
    if (options.signal?.aborted) throw networkError('connection aborted', 'ABORT_ERR');
    const where = 'path' in target ? target.path : `${target.host}:${target.port}`;
    const serve = this.#listeners.get(where);
    if (!serve)
      throw networkError(
        `connect ECONNREFUSED ${where} (nothing listens there on this MemoryNetwork)`,
        'ECONNREFUSED',
      );
    const from = 'path' in target ? '' : (target.localAddress ?? this.#clientAddress);
    const clientPort = this.#nextPort++;
    const server =
      'path' in target
        ? { address: target.path, port: 0 }
        : { address: target.host, port: target.port };
    const [client, accepted] = MemorySocket.pair({ address: from, port: clientPort }, server);
    serve(accepted, { address: from, port: clientPort, name: 'unknown' });
    return client;
  }
}
