/**
 * Loopback ports for peers started by tests and benchmarks: a port free on 127.0.0.1
 * right now, and waiting until something accepts connections on one.
 *
 * Does not do: reserve a port. Between `freePort()` and the peer binding it another
 * process may take it; the peer then fails to start and says so.
 *
 * @module
 */

import { connect, createServer } from 'node:net';

/** A TCP port free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** True when a TCP connection to 127.0.0.1:`port` succeeds now. */
export function accepts(port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Resolves once something accepts connections on 127.0.0.1:`port`; rejects after
 * `timeoutMs`, or as soon as `gaveUp()` returns a reason (e.g. the peer exited).
 */
export async function waitForPort(port, timeoutMs = 15_000, gaveUp = () => undefined) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await accepts(port)) return;
    const reason = gaveUp();
    if (reason) throw new Error(`nothing listens on 127.0.0.1:${port}: ${reason}`);
    if (Date.now() > end) {
      throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
