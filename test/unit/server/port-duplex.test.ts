/**
 * portDuplex: the byte stream between the main thread and an smtpd worker thread, over
 * a real MessageChannel. What must hold: bytes cross in order and intact both ways,
 * and the writer's buffers stay intact; a writer is held back while the reader does
 * not read (no more than the window plus one chunk in flight) and goes on when it reads;
 * an end on one side ends and closes the other, and a write after that fails.
 *
 * @module
 */

import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { MessageChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { PORT_WINDOW, portDuplex } from '../../../src/server/port-duplex.js';

const pairs: Duplex[] = [];
afterEach(() => {
  for (const d of pairs.splice(0)) d.destroy();
});

function pair(): [Duplex, Duplex] {
  const { port1, port2 } = new MessageChannel();
  const ends: [Duplex, Duplex] = [portDuplex(port1), portDuplex(port2)];
  pairs.push(...ends);
  return ends;
}

/** Reads `bytes` bytes from `d`, then pauses it (the stream stays open). */
function take(d: Duplex, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    let n = 0;
    const onData = (chunk: Buffer): void => {
      got.push(chunk);
      n += chunk.length;
      if (n < bytes) return;
      d.off('data', onData);
      d.off('error', reject);
      d.pause();
      resolve(Buffer.concat(got));
    };
    d.on('data', onData);
    d.on('error', reject);
    d.resume();
  });
}

/** Bytes 0..n-1 of a repeating pattern, so that reordering or loss shows. */
function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('portDuplex', () => {
  it('carries bytes in order both ways, small chunks, large ones and gathered writes, and leaves the writer its buffers', async () => {
    const [a, b] = pair();
    const sent: Buffer[] = [];
    const small = Buffer.from('EHLO x\r\n'); // a view of Node's shared pool
    const whole = pattern(200_000, 7); // owns its memory
    const expectWhole = Buffer.from(whole);
    sent.push(Buffer.from(small), expectWhole);
    a.write(small);
    a.write(whole);
    a.cork();
    for (let i = 0; i < 5; i++) {
      const piece = pattern(1000 + i, i);
      sent.push(Buffer.from(piece));
      a.write(piece);
    }
    a.uncork();
    const expected = Buffer.concat(sent);
    const got = await take(b, expected.length);
    expect(got.equals(expected)).toBe(true);
    // Both were copied: the writer's buffers are whole and usable.
    expect(small.toString()).toBe('EHLO x\r\n');
    expect(whole.equals(expectWhole)).toBe(true);

    b.write('250 ok\r\n');
    expect((await take(a, 8)).toString()).toBe('250 ok\r\n');
  });

  it('holds the writer back while the reader does not read, and lets it go on when it reads', async () => {
    const [a, b] = pair();
    b.pause();
    const chunk = 64 * 1024;
    let accepted = 0;
    // Write until the stream says to wait, as a producer honouring backpressure does.
    let total = 0;
    for (let i = 0; i < 200; i++) {
      const piece = pattern(chunk, i);
      total += chunk;
      a.write(piece, () => {
        accepted += chunk;
      });
    }
    // Let every message the ports can deliver arrive: the writer stays held.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThanOrEqual(PORT_WINDOW + chunk);
    expect(a.writableLength).toBeGreaterThan(0);

    // The reader takes everything: every write completes, all bytes arrive in order.
    const expected = Buffer.concat(Array.from({ length: 200 }, (_, i) => pattern(chunk, i)));
    const got = await take(b, total);
    expect(got.equals(expected)).toBe(true);
    for (let i = 0; i < 20 && accepted < total; i++) await new Promise((r) => setImmediate(r));
    expect(accepted).toBe(total);
  });

  it('an end on one side ends and closes the other; a write after that fails', async () => {
    const [a, b] = pair();
    a.end(Buffer.from('last words'));
    expect((await take(b, 10)).toString()).toBe('last words');
    b.resume();
    await once(b, 'close');
    expect(b.destroyed).toBe(true);
    const err = await new Promise<Error | null | undefined>((resolve) => {
      b.on('error', () => undefined);
      b.write('too late', resolve);
    });
    expect(err).toBeInstanceOf(Error);
  });
});
