/**
 * A large message from an smtpd worker thread: the worker's ForwardingQueueStore and the
 * primary's StoreRelay over a real MessageChannel (the thread's link), with a real
 * FileQueueStore in a temp directory. What must hold: past DIRECT_AFTER bytes the worker
 * writes the rest of the content into the store's own file, so only the first part
 * crosses the channel; the message is whole and durable once the commit resolves (a
 * reopened store reads it back), with or without the queue journal; an abort after the
 * hand-over leaves no file and nothing queued; a store with no file of its own (memory)
 * takes the whole message in frames.
 *
 * @module
 */

import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { MessageChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { Logger } from '../../../src/log.js';
import { FileQueueStore } from '../../../src/queue/stores/file-store.js';
import { MemoryQueueStore } from '../../../src/queue/stores/memory-store.js';
import type { NewMessageRecord, QueueStore } from '../../../src/queue/types.js';
import { QueueIdGenerator } from '../../../src/queue-id.js';
import { ForwardingQueueStore } from '../../../src/server/forwarding-store.js';
import { DIRECT_AFTER } from '../../../src/server/forwarding-writer.js';
import { portDuplex } from '../../../src/server/port-duplex.js';
import { StoreRelay } from '../../../src/server/store-relay.js';
import { WorkerChannel } from '../../../src/server/worker-channel.js';
import { newRecord } from '../queue/stores/store-conformance.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'postern-direct-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function fileStore(directory: string, journal: boolean): Promise<FileQueueStore> {
  const store = new FileQueueStore({ directory, ...(journal ? {} : { journal: false }) });
  await store.open();
  return store;
}

/** A worker's store linked to `store` through a MessageChannel; `crossed()` counts the bytes. */
function link(store: QueueStore): { worker: ForwardingQueueStore; crossed: () => number } {
  const { port1, port2 } = new MessageChannel();
  const primaryEnd: Duplex = portDuplex(port1);
  const workerEnd: Duplex = portDuplex(port2);
  let crossed = 0;
  primaryEnd.on('data', (chunk: Buffer) => (crossed += chunk.length));
  const relay = new StoreRelay(primaryEnd, store, new Logger().for('master'), () => undefined);
  cleanups.push(async () => {
    workerEnd.destroy();
    primaryEnd.destroy();
    await relay.closed;
  });
  return { worker: new ForwardingQueueStore(new WorkerChannel(workerEnd)), crossed: () => crossed };
}

function record(queueId: string, size: number): NewMessageRecord {
  return newRecord(queueId, { size, headerSize: 15 });
}

/** `bytes` of content whose every 64 KiB piece differs, so a piece out of place shows. */
function content(bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  for (let at = 0; at < bytes; at += 16)
    out.write(`${(at >>> 4).toString(36).padStart(14, '.')}\r\n`, at, 'latin1');
  return out;
}

/** Writes `body` in socket-sized pieces, respecting backpressure. */
async function writeAll(w: { content: NodeJS.WritableStream }, body: Buffer): Promise<void> {
  for (let at = 0; at < body.length; at += 65_536) {
    if (!w.content.write(body.subarray(at, at + 65_536)))
      await new Promise((r) => w.content.once('drain', r));
  }
}

async function contentOf(store: QueueStore, queueId: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of store.openContent(queueId)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('a large message written by the worker into the store file', () => {
  const ids = new QueueIdGenerator();

  for (const journal of [true, false]) {
    it(`past DIRECT_AFTER only the first part crosses the channel; the message is whole and durable at commit (journal ${journal ? 'on' : 'off'})`, async () => {
      const dir = tempDir();
      const store = await fileStore(dir, journal);
      const { worker, crossed } = link(store);
      const id = ids.next();
      const body = content(3 * 1024 * 1024 + 1234);
      const writer = await worker.create(id);
      await writeAll(writer, body);
      await writer.commit(record(id, body.length));

      expect(crossed()).toBeGreaterThanOrEqual(DIRECT_AFTER);
      expect(crossed()).toBeLessThan(DIRECT_AFTER + 256 * 1024);
      expect((await contentOf(store, id)).equals(body)).toBe(true);
      // Durable as committed: a store opened anew on the directory reads it back.
      await store.close();
      const again = await fileStore(dir, journal);
      cleanups.push(() => again.close());
      expect((await again.counts()).incoming).toBe(1);
      expect((await contentOf(again, id)).equals(body)).toBe(true);
    });
  }

  it('an abort after the hand-over leaves no file and nothing queued', async () => {
    const dir = tempDir();
    const store = await fileStore(dir, true);
    cleanups.push(() => store.close());
    const { worker, crossed } = link(store);
    const id = ids.next();
    const writer = await worker.create(id);
    await writeAll(writer, content(DIRECT_AFTER + 512 * 1024));
    // The last writes went to the file: its temp file is there.
    await new Promise<void>((resolve) =>
      writer.content.write(Buffer.from('more\r\n'), () => resolve()),
    );
    expect(crossed()).toBeLessThan(DIRECT_AFTER + 256 * 1024);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([id]);

    await writer.abort();
    await expect.poll(() => readdirSync(join(dir, 'tmp'))).toEqual([]);
    expect(await store.counts()).toMatchObject({ incoming: 0, active: 0, deferred: 0, hold: 0 });
  });

  it('a store with no file of its own takes the whole message in frames', async () => {
    const store = new MemoryQueueStore();
    await store.open();
    const { worker, crossed } = link(store);
    const id = ids.next();
    const body = content(DIRECT_AFTER * 3);
    const writer = await worker.create(id);
    await writeAll(writer, body);
    await writer.commit(record(id, body.length));
    expect(crossed()).toBeGreaterThan(body.length);
    expect((await contentOf(store, id)).equals(body)).toBe(true);
  });
});
