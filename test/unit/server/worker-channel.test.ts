/**
 * WorkerChannel's writes over a real UNIX socket pair: the frames of one turn go in one
 * write; small ones joined into one buffer, large content handed to the socket as it
 * is (a gathered write, no copy), and the primary reads the same byte stream either way.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { WorkerChannel } from '../../../src/server/worker-channel.js';
import { encodeFrame, Frame, FrameDecoder } from '../../../src/server/worker-frames.js';
import { unixSocketPair } from '../../helpers/unix-socket-pair.js';

interface Frames {
  readonly type: number;
  readonly id: number;
  readonly payload: Buffer;
}

interface Pair {
  readonly channel: WorkerChannel;
  /** The buffers of each `write()` on the worker's socket. */
  readonly writes: Buffer[];
  /** The chunks of each gathered write (`_writev`) the socket made. */
  readonly writevs: Buffer[][];
  /** Frames the primary's end has read, whole. */
  readonly received: Frames[];
  /** Answers a commit as the primary would. */
  answer(id: number): void;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function pair(): Promise<Pair> {
  const sockets = await unixSocketPair();
  cleanups.push(() => sockets.close());
  const { client: workerSocket, server: primarySocket } = sockets;
  const writes: Buffer[] = [];
  const writevs: Buffer[][] = [];
  const write = workerSocket.write.bind(workerSocket) as (chunk: Buffer) => boolean;
  workerSocket.write = ((chunk: Buffer) => {
    writes.push(chunk);
    return write(chunk);
  }) as typeof workerSocket.write;
  const socketWithWritev = workerSocket as unknown as {
    _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void;
  };
  const writev = socketWithWritev._writev.bind(workerSocket);
  socketWithWritev._writev = (chunks, cb) => {
    writevs.push(chunks.map((c) => c.chunk));
    writev(chunks, cb);
  };
  const received: Frames[] = [];
  const decoder = new FrameDecoder((type, id, payload) =>
    received.push({ type, id, payload: Buffer.from(payload) }),
  );
  primarySocket.on('data', (chunk: Buffer) => decoder.push(chunk));
  return {
    channel: new WorkerChannel(workerSocket),
    writes,
    writevs,
    received,
    answer: (id) => primarySocket.write(encodeFrame(Frame.committed, id)),
  };
}

const record = { queueId: 'q', sender: 'a@example.com' };

describe('WorkerChannel writes', () => {
  it('a small message crosses in one write of one buffer: its create, content and commit', async () => {
    const { channel, writes, writevs, received, answer } = await pair();
    const id = channel.open('4bXyQ1');
    const pieces = ['Received: from x\r\n', 'From: a@example.com\r\n', 'x'.repeat(4000)];
    for (const p of pieces) channel.send(Frame.data, id, Buffer.from(p));
    const committed = channel.commit(id, record);
    await expect.poll(() => received.length).toBe(3);
    expect(writes).toHaveLength(1);
    expect(writevs).toHaveLength(0);
    expect(received.map((f) => [f.type, f.id])).toEqual([
      [Frame.create, id],
      [Frame.data, id],
      [Frame.commit, id],
    ]);
    expect(received[1]!.payload.toString()).toBe(pieces.join(''));
    answer(id);
    await committed;
  });

  it('large content is handed to the socket as it is, with the small frames around it joined, in one gathered write', async () => {
    const { channel, writes, writevs, received, answer } = await pair();
    const a = channel.open('4bXyQ1');
    const b = channel.open('4bXyQ2');
    const bigA = Buffer.alloc(60_000, 0x61);
    const bigB = Buffer.alloc(50_000, 0x62);
    channel.send(Frame.data, a, bigA);
    channel.send(Frame.data, b, Buffer.from('Subject: b\r\n\r\n'));
    channel.send(Frame.data, a, Buffer.from('tail\r\n'));
    channel.send(Frame.data, b, bigB);
    const done = [channel.commit(a, record), channel.commit(b, record)];
    await expect.poll(() => received.length).toBe(8);
    // Not copied into a joined buffer: the very buffers written go to the socket.
    expect(writes.filter((w) => w === bigA || w === bigB)).toHaveLength(2);
    expect(writes.every((w) => w === bigA || w === bigB || w.length < 16 * 1024)).toBe(true);
    // The small frames between them joined: the creates and the header of bigA; b's
    // frame, a's and the header of bigB; the two commits.
    expect(writes.map((w) => w.length)).toEqual([
      2 * (9 + 6) + 9,
      60_000,
      9 + 14 + 9 + 6 + 9,
      50_000,
      2 * (9 + JSON.stringify(record).length),
    ]);
    // One system call for the turn's frames.
    expect(writevs).toHaveLength(1);
    expect(writevs[0]).toEqual(writes);
    expect(received.map((f) => [f.type, f.id, f.payload.length])).toEqual([
      [Frame.create, a, 6],
      [Frame.create, b, 6],
      [Frame.data, a, 60_000],
      [Frame.data, b, 14],
      [Frame.data, a, 6],
      [Frame.data, b, 50_000],
      [Frame.commit, a, JSON.stringify(record).length],
      [Frame.commit, b, JSON.stringify(record).length],
    ]);
    expect(received[2]!.payload.equals(bigA)).toBe(true);
    expect(received[5]!.payload.equals(bigB)).toBe(true);
    answer(a);
    answer(b);
    await Promise.all(done);
  });
});
