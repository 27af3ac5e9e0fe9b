/**
 * Small stream helpers shared by Cleanup's files.
 *
 * @module
 */

import { Readable, type Writable } from 'node:stream';

/** Resolves on `drain`, or when the stream errors or closes (the error is handled elsewhere). */
export function waitForDrain(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('error', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('error', done);
    stream.on('close', done);
  });
}

/** `stream` without its first `n` bytes. */
export function skipBytes(stream: Readable, n: number): Readable {
  let left = n;
  async function* gen(): AsyncGenerator<Buffer> {
    for await (const chunk of stream) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      if (left >= b.length) {
        left -= b.length;
        continue;
      }
      yield left > 0 ? b.subarray(left) : b;
      left = 0;
    }
  }
  return Readable.from(gen(), { objectMode: false });
}
