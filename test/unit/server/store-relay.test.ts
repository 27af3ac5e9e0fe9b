/**
 * A worker's ForwardingQueueStore and the primary's StoreRelay over a real UNIX socket
 * pair, with a MemoryQueueStore as the primary's store: what a worker commits is
 * durable there before its commit resolves; abort, a worker that goes away and a primary
 * that goes away each leave nothing half-written; a slow store slows the writer instead
 * of filling memory.
 */

import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { QueueStoreError } from '../../../src/errors.js';
import { Logger } from '../../../src/log.js';
import { MemoryQueueStore } from '../../../src/queue/stores/memory-store.js';
import type { MessageWriter, NewMessageRecord, QueueStore } from '../../../src/queue/types.js';
import { QueueIdGenerator } from '../../../src/queue-id.js';
import { ForwardingQueueStore } from '../../../src/server/forwarding-store.js';
import { StoreRelay } from '../../../src/server/store-relay.js';
import { WorkerChannel } from '../../../src/server/worker-channel.js';
import { unixSocketPair } from '../../helpers/unix-socket-pair.js';
import { newRecord } from '../queue/stores/store-conformance.js';

interface Pair {
  readonly worker: ForwardingQueueStore;
  readonly channel: WorkerChannel;
  readonly relay: StoreRelay;
  readonly workerSocket: Socket;
  readonly primarySocket: Socket;
  readonly logged: Buffer[];
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function pair(store: QueueStore): Promise<Pair> {
  const sockets = await unixSocketPair();
  cleanups.push(() => sockets.close());
  const { client: workerSocket, server: primarySocket } = sockets;
  const logged: Buffer[] = [];
  const relay = new StoreRelay(primarySocket, store, new Logger().for('master'), (t) =>
    logged.push(t),
  );
  const channel = new WorkerChannel(workerSocket);
  return {
    worker: new ForwardingQueueStore(channel),
    channel,
    relay,
    workerSocket,
    primarySocket,
    logged,
  };
}

function record(queueId: string, size: number): NewMessageRecord {
  return newRecord(queueId, { sender: 'a@example.com', eightBit: true, size, headerSize: 15 });
}

async function contentOf(store: QueueStore, queueId: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of store.openContent(queueId)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A store whose writers' commits wait for `open()`, and which records aborts. */
function gatedStore(inner: MemoryQueueStore): {
  store: QueueStore;
  open(): void;
  committing: () => number;
  aborted: string[];
} {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let committing = 0;
  const aborted: string[] = [];
  const store = Object.create(inner) as QueueStore;
  store.create = async (queueId) => {
    const writer = await inner.create(queueId);
    const gated: MessageWriter = {
      queueId,
      content: writer.content,
      commit: async (r) => {
        committing++;
        await gate;
        await writer.commit(r);
      },
      abort: async () => {
        aborted.push(queueId);
        await writer.abort();
      },
    };
    return gated;
  };
  return { store, open: () => release(), committing: () => committing, aborted };
}

describe('ForwardingQueueStore and StoreRelay', () => {
  const ids = new QueueIdGenerator();

  it('commits through the primary: the content and record arrive whole, and the commit resolves only once the store has made the message durable', async () => {
    const memory = new MemoryQueueStore();
    await memory.open();
    const gated = gatedStore(memory);
    const { worker } = await pair(gated.store);
    const id = ids.next();
    const writer = await worker.create(id);
    const body = Buffer.from(`Subject: hi\r\n\r\n${'é body line\r\n'.repeat(5000)}`);
    for (let at = 0; at < body.length; at += 7000)
      writer.content.write(body.subarray(at, at + 7000));
    let settled = false;
    const committed = writer.commit(record(id, body.length)).then(() => (settled = true));
    await expect.poll(() => gated.committing()).toBe(1);
    expect(settled).toBe(false);
    expect((await memory.counts()).incoming).toBe(0);
    gated.open();
    await committed;
    expect((await memory.counts()).incoming).toBe(1);
    const [claimed] = await memory.claim({ owner: 't', limit: 1, now: Date.now(), leaseMs: 1000 });
    expect(claimed?.record).toMatchObject({
      queueId: id,
      sender: 'a@example.com',
      bodyType: '8BITMIME',
      source: { client: { address: '192.0.2.1' } },
    });
    expect((await contentOf(memory, id)).equals(body)).toBe(true);
  });

  it("a message's content written in pieces in a row reaches the primary's store joined, in writes of at most 64 KiB", async () => {
    const memory = new MemoryQueueStore();
    await memory.open();
    // The primary's writes to its store, per message.
    const writes = new Map<string, number[]>();
    const counting = Object.create(memory) as QueueStore;
    counting.create = async (queueId) => {
      const writer = await memory.create(queueId);
      const sizes: number[] = [];
      writes.set(queueId, sizes);
      const write = writer.content.write.bind(writer.content) as (c: Buffer) => boolean;
      writer.content.write = ((chunk: Buffer) => {
        sizes.push(chunk.length);
        return write(chunk);
      }) as typeof writer.content.write;
      return writer;
    };
    const { worker } = await pair(counting);
    const small = ids.next();
    const other = ids.next();
    const large = ids.next();
    const [a, b, c] = await Promise.all([small, other, large].map((id) => worker.create(id)));
    // As Cleanup writes a small message: the headers one by one, then the body.
    const headers = ['Received: from x\r\n', 'From: a@example.com\r\n', 'To: b@example.com\r\n'];
    const body = `Subject: hi\r\n\r\n${'body line\r\n'.repeat(300)}`;
    for (const h of headers) a!.content.write(h);
    a!.content.write(body);
    // Two messages' pieces interleaved: each keeps its own bytes.
    b!.content.write('one\r\n');
    a!.content.write('after\r\n');
    b!.content.write('two\r\n');
    // 100 KB in 10 KB pieces: frames of at most 64 KiB.
    const big = Buffer.alloc(100_000, 0x62);
    for (let at = 0; at < big.length; at += 10_000) c!.content.write(big.subarray(at, at + 10_000));
    const smallBytes = Buffer.from(`${headers.join('')}${body}after\r\n`);
    await Promise.all([
      a!.commit(record(small, smallBytes.length)),
      b!.commit(record(other, 10)),
      c!.commit(record(large, big.length)),
    ]);
    expect((await contentOf(memory, small)).equals(smallBytes)).toBe(true);
    expect((await contentOf(memory, other)).toString()).toBe('one\r\ntwo\r\n');
    expect((await contentOf(memory, large)).equals(big)).toBe(true);
    expect(writes.get(small)).toEqual([smallBytes.length - 'after\r\n'.length, 'after\r\n'.length]);
    expect(writes.get(other)).toEqual([5, 5]);
    // Frames of 60 000 and 40 000 bytes; the primary's reads may cut one of them, and
    // the pieces go to the store as they were read.
    const largeWrites = writes.get(large)!;
    expect(largeWrites.reduce((a, b) => a + b, 0)).toBe(big.length);
    expect(largeWrites.length).toBeLessThanOrEqual(4);
    expect(Math.max(...largeWrites)).toBeLessThanOrEqual(60_000);
  });

  it('abort() drops the message in the primary; nothing is queued', async () => {
    const memory = new MemoryQueueStore();
    await memory.open();
    const gated = gatedStore(memory);
    const { worker, relay } = await pair(gated.store);
    const id = ids.next();
    const writer = await worker.create(id);
    writer.content.write('Subject: x\r\n\r\nbody\r\n');
    await writer.abort();
    await expect.poll(() => gated.aborted).toEqual([id]);
    expect(relay.openWriters).toBe(0);
    expect(await memory.counts()).toMatchObject({ incoming: 0, hold: 0 });
  });

  it('a worker that goes away mid-message: the primary aborts what it had not committed', async () => {
    const memory = new MemoryQueueStore();
    await memory.open();
    const gated = gatedStore(memory);
    const { worker, relay, workerSocket } = await pair(gated.store);
    const a = ids.next();
    const b = ids.next();
    (await worker.create(a)).content.write('Subject: a\r\n\r\n');
    (await worker.create(b)).content.write('Subject: b\r\n\r\n');
    await expect.poll(() => relay.openWriters).toBe(2);
    workerSocket.destroy();
    await relay.closed;
    expect(gated.aborted.sort()).toEqual([a, b].sort());
    expect(relay.openWriters).toBe(0);
    expect((await memory.counts()).incoming).toBe(0);
  });

  it('a primary that goes away: the commit in flight rejects, and so does the next create()', async () => {
    const memory = new MemoryQueueStore();
    await memory.open();
    const gated = gatedStore(memory);
    const { worker, primarySocket } = await pair(gated.store);
    const id = ids.next();
    const writer = await worker.create(id);
    writer.content.end('Subject: x\r\n\r\nbody\r\n');
    const committed = writer.commit(record(id, 20));
    await expect.poll(() => gated.committing()).toBe(1);
    primarySocket.destroy();
    await expect(committed).rejects.toBeInstanceOf(QueueStoreError);
    await expect(worker.create(ids.next())).rejects.toThrow(/primary process/);
  });

  it("the store's refusal reaches the worker's commit with its reason", async () => {
    const memory = new MemoryQueueStore();
    await memory.open();
    const failing = Object.create(memory) as QueueStore;
    failing.create = async (queueId) => {
      const writer = await memory.create(queueId);
      return {
        queueId,
        content: writer.content,
        commit: () =>
          Promise.reject(new QueueStoreError('database unreachable', queueId, { outage: true })),
        abort: () => writer.abort(),
      };
    };
    const { worker } = await pair(failing);
    const id = ids.next();
    const writer = await worker.create(id);
    writer.content.end('Subject: x\r\n\r\n');
    const err = await writer.commit(record(id, 15)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueStoreError);
    expect((err as QueueStoreError).message).toMatch(/database unreachable/);
    expect((err as QueueStoreError).outage).toBe(true);
  });

  it('a slow store slows the writer: at most a few MiB are in flight between the processes', async () => {
    const memory = new MemoryQueueStore();
    await memory.open();
    let received = 0;
    const slow = Object.create(memory) as QueueStore;
    slow.create = async (queueId) => ({
      queueId,
      // Takes one 16 KB write per timer turn: far slower than the socket.
      content: new Writable({
        highWaterMark: 16 * 1024,
        write(chunk: Buffer, _enc, cb) {
          received += chunk.length;
          setTimeout(cb, 1);
        },
      }),
      commit: async () => undefined,
      abort: async () => undefined,
    });
    const { worker } = await pair(slow);
    const id = ids.next();
    const writer = await worker.create(id);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let accepted = 0;
    let most = 0;
    for (let i = 0; i < 32 * 16; i++) {
      const more = writer.content.write(chunk, () => {
        accepted += chunk.length;
        most = Math.max(most, accepted - received);
      });
      if (!more) await new Promise((r) => writer.content.once('drain', r));
    }
    await writer.commit(record(id, 32 * 1024 * 1024));
    expect(received).toBe(32 * 1024 * 1024);
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThan(6 * 1024 * 1024);
  });

  it('hands log lines to the log writer whole, as UTF-8 bytes, those of one turn together', async () => {
    const { channel, logged } = await pair(new MemoryQueueStore());
    channel.log('line one\n');
    channel.log('line two: <usér@exämple.org>\n');
    await expect.poll(() => logged.length).toBe(1);
    channel.log('line three\n');
    await expect.poll(() => logged.length).toBe(2);
    // The worker's bytes go to the writer as they came: not decoded to a string first.
    expect(logged.every((b) => Buffer.isBuffer(b))).toBe(true);
    expect(logged.map((b) => b.toString('utf8'))).toEqual([
      'line one\nline two: <usér@exämple.org>\n',
      'line three\n',
    ]);
  });
});
