/**
 * A connected pair of UNIX stream sockets in a temporary directory, as the socket pair
 * between an smtpd worker process and the primary: real kernel buffers and reads, no
 * child process. `close()` destroys both ends and removes the directory.
 *
 * @module
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface UnixSocketPair {
  /** The end that connected (the worker's in the server's tests). */
  readonly client: Socket;
  /** The end the listener accepted (the primary's). */
  readonly server: Socket;
  close(): Promise<void>;
}

export async function unixSocketPair(): Promise<UnixSocketPair> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-pair-'));
  const path = join(dir, 'socket');
  const listener = createServer();
  const accepted = new Promise<Socket>((resolve) => listener.once('connection', resolve));
  await new Promise<void>((resolve) => listener.listen(path, resolve));
  const client = new Socket();
  await new Promise<void>((resolve) => client.connect(path, resolve));
  const server = await accepted;
  return {
    client,
    server,
    async close() {
      client.destroy();
      server.destroy();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
