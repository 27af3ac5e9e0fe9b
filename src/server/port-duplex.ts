/**
 * portDuplex: a byte stream over a MessagePort, the smtpd worker thread's link to the
 * main thread (the socket pair of a worker process). What is written (one chunk, or the
 * chunks of a gathered write) is copied once into memory of its own, and that memory is
 * transferred to the other thread, not cloned again: the writer's buffers stay its own,
 * as a socket write leaves them. The reader acknowledges the bytes it has taken (in steps
 * of a quarter window), and a writer waits while more than PORT_WINDOW bytes are
 * unacknowledged, so a slow reader holds the writer back as a full socket buffer would.
 *
 * Postfix counterpart: none (smtpd(8) and cleanup(8) talk over a UNIX socket).
 *
 * Does not: keep a half-open stream: when either end closes the port, the other side's
 * reading ends and the stream closes.
 *
 * @module
 */

import { Duplex } from 'node:stream';
import type { MessagePort } from 'node:worker_threads';

/** Bytes a writer may have posted that the reader has not acknowledged yet. */
export const PORT_WINDOW = 1024 * 1024;

/**
 * The reader acknowledges what it has taken in steps of this many bytes, not each
 * message: a message wakes the other thread. A writer held back has more than
 * PORT_WINDOW unacknowledged, so once the reader has taken it all, a step is due.
 */
const ACK_STEP = PORT_WINDOW / 4;

/**
 * A Duplex over `port`; the other end of the port's channel must be a portDuplex too.
 *
 * @example
 * ```ts
 * const { port1, port2 } = new MessageChannel();
 * const a = portDuplex(port1); // here
 * new Worker(file, { workerData: { channel: port2 }, transferList: [port2] }); // portDuplex(workerData.channel) there
 * ```
 */
export function portDuplex(port: MessagePort): Duplex {
  /** Bytes posted and not acknowledged yet. */
  let unacked = 0;
  /** The callback of a write held back by the window. */
  let waiting: ((err?: Error | null) => void) | undefined;
  /** Bytes pushed to the reader while it was full: taken when it reads again. */
  let held = 0;
  /** Bytes taken by the reader and not acknowledged yet. */
  let taken = 0;
  let closed = false;

  const post = (chunks: readonly Buffer[], cb: (err?: Error | null) => void): void => {
    if (closed) {
      cb(new Error('the port to the other thread is closed'));
      return;
    }
    let bytes = 0;
    for (const c of chunks) bytes += c.length;
    if (bytes === 0) {
      cb();
      return;
    }
    const copy = new Uint8Array(bytes);
    let at = 0;
    for (const c of chunks) {
      copy.set(c, at);
      at += c.length;
    }
    port.postMessage(copy, [copy.buffer]);
    unacked += bytes;
    if (unacked <= PORT_WINDOW) cb();
    else waiting = cb;
  };

  const stream = new Duplex({
    allowHalfOpen: false,
    write(chunk: Buffer, _encoding, cb) {
      post([chunk], cb);
    },
    writev(chunks, cb) {
      post(
        chunks.map((c) => c.chunk as Buffer),
        cb,
      );
    },
    read() {
      take(held);
      held = 0;
    },
    final(cb) {
      port.close();
      cb();
    },
    destroy(err, cb) {
      port.close();
      release(err ?? new Error('the stream to the other thread is destroyed'));
      cb(err);
    },
  });

  const take = (bytes: number): void => {
    taken += bytes;
    if (taken < ACK_STEP || closed) return;
    port.postMessage(taken);
    taken = 0;
  };

  const release = (err?: Error): void => {
    const cb = waiting;
    waiting = undefined;
    cb?.(err ?? null);
  };

  port.on('message', (m: Uint8Array | number) => {
    if (typeof m === 'number') {
      unacked -= m;
      if (unacked <= PORT_WINDOW) release();
      return;
    }
    const bytes = m.byteLength;
    if (stream.push(Buffer.from(m.buffer, m.byteOffset, bytes))) take(bytes);
    else held += bytes;
  });
  port.on('close', () => {
    closed = true;
    release(new Error('the port to the other thread is closed'));
    stream.push(null);
  });
  return stream;
}
